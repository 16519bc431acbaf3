/**
 * The dial guard every driver's `connect` runs in: one deadline (`connectTimeout`), the abort
 * signal, a settle-once outcome, and one failure path that fills the Server model (`error`,
 * `state` CLOSED, `timestampEnd`) and rejects with a ConnectError keeping the code. After
 * success, a late abort closes the session.
 */
import { type Address, ConnectionState, now, Server, type TransportProtocol } from '../connection/index.js';
import { ConnectAbortError, ConnectError, errorCode } from './errors.js';
import type { ConnectOptions, Session } from './types.js';

/** What a driver knows of the Server before it dials. Fields left out are not touched. */
export interface ServerIntent {
  transportProtocol: TransportProtocol;
  tls?: boolean;
  sni?: string | null;
  alpnOffers?: readonly string[];
}

/**
 * The Server model of a dial: `options.conn` or a new one for `host:port`, filled at once with
 * what the driver knows before dialing, so a `start` record already says what is meant.
 */
export function serverModel(
  options: Pick<ConnectOptions, 'host' | 'port' | 'conn'>,
  intent: ServerIntent,
): Server {
  const address: Address = [options.host, options.port];
  const conn = options.conn ?? new Server({ address });
  conn.transportProtocol = intent.transportProtocol;
  if (intent.tls !== undefined) conn.tls = intent.tls;
  if (intent.sni !== undefined) conn.sni = intent.sni;
  if (intent.alpnOffers !== undefined) conn.alpnOffers = [...intent.alpnOffers];
  return conn;
}

export interface DialOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds for the whole dial (connect and handshake); undefined or 0: none. */
  connectTimeout?: number | undefined;
  /** The model's `error` when the deadline passes (read then, so it can name the phase). */
  timeoutMessage: (ms: number) => string;
}

type Teardown = () => unknown;

/** A failed dial rejects once its sockets are closed, or after this long if one lingers. */
const UNDO_WAIT_MS = 1000;

/**
 * One dial in flight. Steps register what to undo (`onFail`: a socket, a session, an endpoint)
 * and report failures with `fail`, which settles once: the first failure wins, later ones
 * (the socket error that a teardown causes) change nothing.
 */
export class Dial {
  readonly conn: Server;
  readonly #options: DialOptions;
  readonly #failed = new AbortController();
  readonly #teardowns: Teardown[] = [];
  #timer: NodeJS.Timeout | undefined;
  #settled = false;
  #error: ConnectError | null = null;
  #resolve!: (session: Session<Server>) => void;
  #reject!: (error: ConnectError) => void;
  readonly #outcome: Promise<Session<Server>>;
  readonly #onAbort = (): void => {
    this.#settleFailure(
      new ConnectAbortError(this.#prepareFailure('Connect aborted'), this.#options.signal?.reason),
    );
  };

  constructor(conn: Server, options: DialOptions) {
    this.conn = conn;
    this.#options = options;
    this.#outcome = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Aborted once the dial has failed: steps still in flight (a lookup, a bind) stop. */
  get signal(): AbortSignal {
    return this.#failed.signal;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Registers what to undo if the dial fails; undone in reverse order, awaited before the rejection. */
  onFail(teardown: Teardown): void {
    if (this.#error !== null) void this.#undo([teardown]);
    else if (!this.#settled) this.#teardowns.push(teardown);
  }

  /** Fails the dial (once) and returns its error, for a step to throw. */
  fail(code: string, message: string, cause?: unknown): ConnectError {
    if (this.#settled) return this.#error ?? new ConnectError(code, message, this.conn, { cause });
    this.#prepareFailure(message);
    return this.#settleFailure(new ConnectError(code, message, this.conn, { cause }));
  }

  /** Waits for `step`, unless the dial fails first (then rejects with the dial's error). */
  step<T>(step: Promise<T>): Promise<T> {
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise<T>((resolve, reject) => {
      const onFailed = (): void => reject(this.#error);
      this.signal.addEventListener('abort', onFailed, { once: true });
      step.then(resolve, reject).finally(() => this.signal.removeEventListener('abort', onFailed));
    });
  }

  /** Runs the driver's steps within the guard; resolves with the session they make. */
  run<S extends Session<Server>>(steps: (dial: Dial) => Promise<S>): Promise<S> {
    const { signal, connectTimeout } = this.#options;
    this.conn.timestampStart = now();
    if (signal?.aborted) {
      this.#onAbort();
      return this.#outcome as Promise<S>;
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (connectTimeout !== undefined && connectTimeout > 0) {
      this.#timer = setTimeout(
        () => this.fail('ETIMEDOUT', this.#options.timeoutMessage(connectTimeout)),
        connectTimeout,
      );
    }
    let made: Promise<S>;
    try {
      made = steps(this);
    } catch (err) {
      made = Promise.reject(err);
    }
    made.then(
      (session) => this.#succeed(session),
      (err: unknown) => {
        if (!this.#settled)
          this.fail(errorCode(err, 'ERR_CONNECT'), err instanceof Error ? err.message : String(err), err);
      },
    );
    return this.#outcome as Promise<S>;
  }

  #succeed(session: Session<Server>): void {
    if (this.#settled) {
      // made after the dial failed (a step that did not stop in time): not wanted any more
      session.destroy();
      return;
    }
    this.#settled = true;
    this.#stopWatching();
    this.#teardowns.length = 0;
    const signal = this.#options.signal;
    if (signal) {
      const onLateAbort = (): void => session.destroy(new Error('Aborted'));
      signal.addEventListener('abort', onLateAbort, { once: true });
      session.once('close', () => signal.removeEventListener('abort', onLateAbort));
    }
    this.#resolve(session);
  }

  /** The model as a failed dial leaves it. */
  #prepareFailure(message: string): Server {
    const conn = this.conn;
    conn.error = message;
    conn.state = ConnectionState.CLOSED;
    conn.timestampEnd ??= now();
    return conn;
  }

  #settleFailure(error: ConnectError): ConnectError {
    this.#settled = true;
    this.#error = error;
    this.#stopWatching();
    this.#failed.abort(error);
    const teardowns = this.#teardowns.splice(0).reverse();
    void this.#undo(teardowns).then(() => this.#reject(error));
    return error;
  }

  /** Runs teardowns in order; waits for what they return, at most UNDO_WAIT_MS in all. */
  async #undo(teardowns: Teardown[]): Promise<void> {
    const waits: unknown[] = [];
    for (const teardown of teardowns) {
      try {
        waits.push(teardown());
      } catch {
        // already gone: nothing to undo
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, UNDO_WAIT_MS);
    });
    await Promise.race([Promise.allSettled(waits), bound]);
    clearTimeout(timer);
  }

  #stopWatching(): void {
    clearTimeout(this.#timer);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
  }
}

/** Dials within a guard: `steps` make the session; see Dial. */
export function dial<S extends Session<Server>>(
  conn: Server,
  options: DialOptions,
  steps: (dial: Dial) => Promise<S>,
): Promise<S> {
  return new Dial(conn, options).run(steps);
}
