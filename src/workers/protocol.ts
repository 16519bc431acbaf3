/**
 * What a primary and its workers tell each other: the environment a worker starts with (its
 * index and the file descriptors of its sockets) and the messages on the IPC channel. Every
 * message of ours carries `wirelayer`; anything else on the channel is the user's.
 */
import { availableParallelism } from 'node:os';

/** The environment variable that makes a process a worker (JSON: `WorkerEnvironment`). */
export const WORKER_ENV = 'WIRELAYER_WORKER';

/** How many workers: a count, or `auto` (the cores this process may use, `os.availableParallelism()`). */
export type WorkerCount = number | 'auto';

/** The most workers a group takes. */
export const MAX_WORKERS = 1024;

/** A WorkerCount as a number, checked (1 to 1024). */
export function resolveWorkerCount(count: WorkerCount | undefined): number {
  if (count === undefined) return 1;
  const n = count === 'auto' ? availableParallelism() : count;
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS)
    throw new RangeError(`workers: an integer from 1 to ${MAX_WORKERS} or 'auto', not ${String(count)}`);
  return Math.min(n, MAX_WORKERS);
}

/** A socket a worker inherits: its fd in the worker, and what it is. */
export interface InheritedSocket {
  readonly fd: number;
  readonly kind: 'udp' | 'tcp';
}

/** What a worker is told at its start. */
export interface WorkerEnvironment {
  readonly index: number;
  readonly count: number;
  /** The primary's pid (a grandchild that inherited the environment is no worker). */
  readonly primary: number;
  readonly sockets: readonly InheritedSocket[];
  /** Whether to forward model records (`WorkerOptions.records`). */
  readonly records: boolean;
}

/** Messages of a worker to its primary. */
export type WorkerMessage =
  | { readonly wirelayer: 'ready' }
  | { readonly wirelayer: 'failed'; readonly message: string; readonly code: string | null }
  /** Model records, those of one event-loop turn in one message (a message costs a write and a wake-up). */
  | { readonly wirelayer: 'records'; readonly records: readonly Record<string, unknown>[] }
  /** What it served has closed; it leaves the channel and exits. */
  | { readonly wirelayer: 'leaving' };

/** Messages of a primary to a worker. */
export type PrimaryMessage = { readonly wirelayer: 'close' };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** A message of ours from a worker, or null (the user's own, or malformed). */
export function workerMessage(value: unknown): WorkerMessage | null {
  if (!isObject(value)) return null;
  switch (value.wirelayer) {
    case 'ready':
      return { wirelayer: 'ready' };
    case 'failed':
      return {
        wirelayer: 'failed',
        message: typeof value.message === 'string' ? value.message : 'the worker failed',
        code: typeof value.code === 'string' ? value.code : null,
      };
    case 'records':
      return Array.isArray(value.records) && value.records.every(isObject)
        ? { wirelayer: 'records', records: value.records }
        : null;
    case 'leaving':
      return { wirelayer: 'leaving' };
    default:
      return null;
  }
}

/** Whether a message from the primary asks this worker to close. */
export function isCloseMessage(value: unknown): boolean {
  return isObject(value) && value.wirelayer === 'close';
}

/** The environment of a worker, read from `text` (the variable); null when it is not one of ours. */
export function parseWorkerEnvironment(text: string | undefined): WorkerEnvironment | null {
  if (text === undefined || text === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  const { index, count, primary, sockets } = value;
  if (
    typeof index !== 'number' ||
    typeof count !== 'number' ||
    typeof primary !== 'number' ||
    !Number.isInteger(index) ||
    !Number.isInteger(count) ||
    index < 0 ||
    index >= count ||
    !Array.isArray(sockets)
  )
    return null;
  const list: InheritedSocket[] = [];
  for (const s of sockets) {
    if (!isObject(s) || typeof s.fd !== 'number' || (s.kind !== 'udp' && s.kind !== 'tcp')) return null;
    list.push({ fd: s.fd, kind: s.kind });
  }
  return { index, count, primary, sockets: list, records: value.records !== false };
}
