import { EventEmitter } from 'node:events';
import type { Address, Client } from '../connection/index.js';
import { errorCode, SessionError } from './errors.js';
import { BoundedQueue } from './queue.js';
import { FailedSession } from './session.js';
import type { Listener, ListenerStats, Scheme, Session } from './types.js';

/** Sessions waiting for a slow iterator; beyond this, new ones are refused (destroyed). */
const ITERATOR_BACKLOG = 1024;

/** One count per code. */
function count(counts: Map<string, number>, code: string): void {
  counts.set(code, (counts.get(code) ?? 0) + 1);
}

/**
 * What every listener shares: tracking live sessions, the `start`/`session`/`sessionError`/
 * `error` events and their counters, the async iterator, and closing everything on `close()`
 * or abort.
 */
export abstract class BaseListener<S extends Session<Client>> extends EventEmitter implements Listener<S> {
  readonly #sessions = new Set<S>();
  /** The queue of the iteration running now; null while nobody iterates. */
  #queue: BoundedQueue<S> | null = null;
  #closing: Promise<void> | null = null;
  readonly #sessionErrors = new Map<string, number>();
  readonly #socketErrors = new Map<string, number>();

  constructor(
    readonly scheme: Scheme,
    signal?: AbortSignal,
  ) {
    super();
    if (signal) {
      if (signal.aborted) queueMicrotask(() => void this.close());
      else signal.addEventListener('abort', () => void this.close(), { once: true });
    }
  }

  abstract get address(): Address;

  /** Live sessions (started and not yet closed). */
  get sessions(): ReadonlySet<S> {
    return this.#sessions;
  }

  get closing(): boolean {
    return this.#closing !== null;
  }

  /** A snapshot of the counters every listener keeps (drivers add theirs: see their `stats`). */
  get stats(): ListenerStats {
    return this.listenerStats();
  }

  /** The shared counters, for a driver's own `stats`. */
  protected listenerStats(): ListenerStats {
    return {
      sessionErrors: Object.fromEntries(this.#sessionErrors),
      socketErrors: Object.fromEntries(this.#socketErrors),
    };
  }

  /** A Client model was made for a new peer. */
  protected sessionStarted(session: S): void {
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    this.emit('start', session);
  }

  /** The session is established and ready for the user. */
  protected sessionUp(session: S): void {
    this.emit('session', session);
    const queue = this.#queue;
    if (queue !== null && !queue.push(session)) session.destroy(new Error('listener backlog full'));
  }

  /**
   * The session failed before it was up (handshake error, garbage, a hook that threw): counted
   * by `code` and reported as a SessionError whose message is the model's `error`.
   */
  protected sessionFailed(session: S, code: string, cause?: unknown): void {
    this.#reportFailure(session, code, cause);
  }

  /**
   * A peer failed before a session could be made for it (QUIC: a ClientHello hook that threw):
   * `start` and `sessionError` report it with a closed FailedSession carrying `conn`.
   */
  protected failedBeforeSession(conn: Client, code: string, message: string, cause?: unknown): void {
    conn.error ??= message;
    const session = new FailedSession(this.scheme, conn);
    this.emit('start', session);
    session.end();
    this.#reportFailure(session, code, cause);
  }

  #reportFailure(session: Session<Client>, code: string, cause: unknown): void {
    count(this.#sessionErrors, code);
    const message = session.conn.error ?? 'The session failed before it was up';
    this.emit('sessionError', session, new SessionError(code, message, session.conn, { cause }));
  }

  /** The listening socket reported an error: counted by code, then `error` (as net.Server). */
  protected socketError(err: Error): void {
    count(this.#socketErrors, errorCode(err, 'ERR_SOCKET'));
    this.emit('error', err);
  }

  /** Stops the transport from accepting; sessions are closed by `close()` afterwards. */
  protected abstract stopAccepting(): Promise<void>;

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // sessions first, while the transport can still carry their goodbyes (FIN, close_notify,
      // CONNECTION_CLOSE); new peers are refused meanwhile (`closing`); then any that slipped in
      const closeAll = () => Promise.all([...this.#sessions].map((s) => s.close()));
      await closeAll();
      await this.stopAccepting();
      await closeAll();
      this.#queue?.end();
      this.emit('close');
    })();
    return this.#closing;
  }

  /**
   * Iterates the sessions that come up from now on. Ending the iteration (`break`, `return()`)
   * leaves the listener as it was: the sessions it queued and never yielded are closed, and a
   * later iteration starts afresh.
   */
  [Symbol.asyncIterator](): AsyncIterator<S> {
    this.#queue ??= new BoundedQueue<S>(ITERATOR_BACKLOG);
    const queue = this.#queue;
    if (this.#closing) queue.end();
    return {
      next: () => queue.next(),
      return: () => {
        this.#stopIterating(queue);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #stopIterating(queue: BoundedQueue<S>): void {
    if (this.#queue === queue) this.#queue = null;
    queue.end();
    for (let session = queue.shift(); session !== undefined; session = queue.shift()) void session.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
