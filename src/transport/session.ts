import { EventEmitter } from 'node:events';
import { type Connection, ConnectionState, now } from '../connection/index.js';
import type { Scheme, Session } from './types.js';

/**
 * What every session shares: the `up` and `close` events and the model updates that go with
 * them. Drivers call `markUp()` once established and `markClosed()` exactly when the transport
 * is gone.
 */
export abstract class BaseSession<C extends Connection> extends EventEmitter implements Session<C> {
  #established = false;
  #closed = false;
  readonly #whenClosed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(
    readonly scheme: Scheme,
    readonly conn: C,
  ) {
    super();
    this.#whenClosed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get established(): boolean {
    return this.#established;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once the session has closed. */
  whenClosed(): Promise<void> {
    return this.#whenClosed;
  }

  protected markUp(): void {
    if (this.#established || this.#closed) return;
    this.#established = true;
    this.emit('up', this);
  }

  /** Records the end: CLOSED, `timestampEnd`, and `error` unless one is already set. */
  protected markClosed(error?: string | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.state = ConnectionState.CLOSED;
    this.conn.timestampEnd ??= now();
    if (error && !this.conn.error) this.conn.error = error;
    this.emit('close', this.conn.error !== null);
    this.#resolveClosed();
  }

  abstract close(): Promise<void>;
  abstract destroy(error?: Error): void;

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A peer that failed before its session could exist (QUIC: the engine is made only once the
 * ClientHello hook has answered, so a hook that throws leaves none). Closed from the start, it
 * carries the Client model (`error` set) so that `start` and `sessionError` report the failure
 * as they report any other; it has no data channel.
 */
export class FailedSession<C extends Connection> extends BaseSession<C> {
  constructor(scheme: Scheme, conn: C) {
    super(scheme, conn);
  }

  /** @internal Ends it: CLOSED, `timestampEnd`, `close`. */
  end(): void {
    this.markClosed();
  }

  close(): Promise<void> {
    this.markClosed();
    return this.whenClosed();
  }

  destroy(error?: Error): void {
    if (error) this.conn.error ??= error.message;
    this.markClosed();
  }
}
