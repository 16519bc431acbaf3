/**
 * The worker's side: who this process is (read once, at load, from the environment its primary
 * set), and the IPC link that reports to the primary (ready, failed, model records) and closes
 * what the worker serves when the primary asks or goes away.
 */
import {
  isCloseMessage,
  parseWorkerEnvironment,
  WORKER_ENV,
  type WorkerEnvironment,
  type WorkerMessage,
} from './protocol.js';

/** A failure of workers: `code` says which (ERR_WORKERS_*). */
export class WorkersError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WorkersError';
  }
}

/**
 * This process's environment as a worker: only with an IPC channel to the primary that set it
 * (a process the worker starts in turn inherits the variable, not the parent).
 */
const environment: WorkerEnvironment | null = (() => {
  const parsed = parseWorkerEnvironment(process.env[WORKER_ENV]);
  return parsed !== null && typeof process.send === 'function' && process.ppid === parsed.primary
    ? parsed
    : null;
})();

let claimed = false;

/** How long a worker's model records wait to go to the primary together, ms. */
const RECORD_DELAY_MS = 25;

/** Which worker this process is (`index` of `count`), or null in a primary or any other process. */
export function currentWorker(): { readonly index: number; readonly count: number } | null {
  return environment === null ? null : { index: environment.index, count: environment.count };
}

/**
 * Takes this worker's inherited sockets: the first call to `listenWorkers` or `proxyWorkers` in a
 * worker does; null outside a worker. A second call throws ERR_WORKERS_STARTED.
 */
export function claimWorker(): WorkerEnvironment | null {
  if (environment === null) return null;
  if (claimed)
    throw new WorkersError(
      'ERR_WORKERS_STARTED',
      'a worker serves one listenWorkers or proxyWorkers call (a proxy carries several modes)',
    );
  claimed = true;
  return environment;
}

/** Something a worker serves: a listener or a proxy. */
interface Served {
  close(): Promise<void>;
  once(event: 'close', listener: () => void): unknown;
}

/** The worker's end of the IPC channel. */
export class WorkerLink {
  #left = false;
  /** Records of the last RECORD_DELAY_MS, sent together. */
  #records: Record<string, unknown>[] = [];
  #timer: NodeJS.Timeout | null = null;

  #send(message: WorkerMessage, then?: () => void): void {
    if (this.#left || !process.connected || process.send === undefined) {
      then?.();
      return;
    }
    process.send(message, undefined, undefined, () => then?.());
  }

  /**
   * A model record for the primary (it adds nothing: `worker` is in the record already). Records
   * go in one message per RECORD_DELAY_MS: each message costs a write here and a wake-up there,
   * which per record made the primary spend a third as much CPU as a QUIC handshake.
   */
  record(record: Record<string, unknown>): void {
    this.#records.push(record);
    this.#timer ??= setTimeout(this.#flush, RECORD_DELAY_MS);
  }

  readonly #flush = (): void => {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#records.length === 0) return;
    const records = this.#records;
    this.#records = [];
    this.#send({ wirelayer: 'records', records });
  };

  /** Listening: the primary counts this worker as up. */
  ready(): void {
    this.#send({ wirelayer: 'ready' });
  }

  /** Could not start: the primary's start fails with this. */
  failed(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const code =
      typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : null;
    this.#send({ wirelayer: 'failed', message, code });
  }

  /**
   * Closes `served` when the primary asks (or its channel goes: the primary died), and once it
   * has closed, leaves the channel (after the records queued before), so the worker can exit.
   */
  serve(served: Served): void {
    const onMessage = (message: unknown): void => {
      if (isCloseMessage(message)) void served.close();
    };
    const onDisconnect = (): void => void served.close();
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
    served.once('close', () => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      this.leave();
    });
  }

  /** Leaves the channel once what was sent before is written. */
  leave(): void {
    if (this.#left) return;
    if (!process.connected) {
      this.#left = true;
      return;
    }
    this.#flush();
    // the callback of this last send says everything before it was written
    this.#send({ wirelayer: 'leaving' }, () => {
      this.#left = true;
      if (process.connected) process.disconnect();
    });
  }
}
