import { EventEmitter } from 'node:events';
import type { Address, Client } from '../connection/index.js';
import { BoundedQueue } from './queue.js';
import type { Listener, Scheme, Session } from './types.js';

/** Sessions waiting for a slow iterator; beyond this, new ones are refused (destroyed). */
const ITERATOR_BACKLOG = 1024;

/**
 * What every listener shares: tracking live sessions, the `start`/`session`/`sessionError`
 * events, the async iterator, and closing everything on `close()` or abort.
 */
export abstract class BaseListener<S extends Session<Client>> extends EventEmitter implements Listener<S> {
  readonly #sessions = new Set<S>();
  #queue: BoundedQueue<S> | null = null;
  #closing: Promise<void> | null = null;

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

  /** A Client model was made for a new peer. */
  protected sessionStarted(session: S): void {
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    this.emit('start', session);
  }

  /** The session is established and ready for the user. */
  protected sessionUp(session: S): void {
    this.emit('session', session);
    if (this.#queue && !this.#queue.push(session)) session.destroy(new Error('listener backlog full'));
  }

  /** The session failed before it was up (handshake error, garbage). */
  protected sessionFailed(session: S, error: Error): void {
    this.emit('sessionError', session, error);
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

  [Symbol.asyncIterator](): AsyncIterator<S> {
    this.#queue ??= new BoundedQueue<S>(ITERATOR_BACKLOG);
    if (this.#closing) this.#queue.end();
    return this.#queue[Symbol.asyncIterator]();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
