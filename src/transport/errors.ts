import { getSystemErrorMap } from 'node:util';
import type { Server } from '../connection/index.js';

/**
 * A connect (or its handshake) failed. `code` is the OS or engine code (`ECONNREFUSED`,
 * `ETIMEDOUT`, `ABORT_ERR`, ...); `conn` is the Server model, its `error` set to `message`.
 */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  constructor(
    readonly code: string,
    message: string,
    readonly conn: Server,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const systemErrors = getSystemErrorMap();

/**
 * The OS message of a socket error, capitalised, with Node's own message kept:
 * "Connection refused (connect ECONNREFUSED 127.0.0.1:1)".
 */
export function describeSocketError(err: Error & { errno?: number; code?: string }): string {
  const known = typeof err.errno === 'number' ? systemErrors.get(err.errno) : undefined;
  if (!known) return err.message;
  const text = known[1];
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (${err.message})`;
}

/** The `code` of an error if it has a string one, else a fallback. */
export function errorCode(err: unknown, fallback = 'ERR_TRANSPORT'): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : fallback;
}
