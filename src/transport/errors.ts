import { getSystemErrorMap } from 'node:util';
import type { Client, Server } from '../connection/index.js';

/**
 * A connect (or its handshake) failed. `code` is the OS or engine code (`ECONNREFUSED`,
 * `ETIMEDOUT`, `ERR_SSL_...`, ...); `conn` is the Server model, its `error` set to `message`.
 */
export class ConnectError extends Error {
  override readonly name: string = 'ConnectError';
  constructor(
    readonly code: string,
    message: string,
    readonly conn: Server,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A connect its `signal` aborted. Shaped as Node's own AbortError (what `net.connect` and
 * `events.once` reject with): `name` 'AbortError', `code` 'ABORT_ERR', `cause` the signal's
 * `reason`; and a ConnectError, its `conn` CLOSED with `error` "Connect aborted".
 */
export class ConnectAbortError extends ConnectError {
  override readonly name: string = 'AbortError';
  constructor(conn: Server, reason: unknown) {
    super('ABORT_ERR', conn.error ?? 'Connect aborted', conn, { cause: reason });
  }
}

/**
 * A session of a listener failed before it was up: the error of the `sessionError` event.
 * `code` is the engine's or the OS's (`ERR_SSL_...`, `ERR_DTLS_CERT_VERIFY`, `ECONNRESET`,
 * `ETIMEDOUT`, `ERR_CLIENT_HELLO_HOOK`, ...), `message` the model's `error`, `cause` what
 * failed underneath (the engine's error, or the value a ClientHello hook threw).
 */
export class SessionError extends Error {
  override readonly name = 'SessionError';
  constructor(
    readonly code: string,
    message: string,
    readonly conn: Client,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The `code` of a session a ClientHello hook failed by throwing (or rejecting). */
export const ERR_CLIENT_HELLO_HOOK = 'ERR_CLIENT_HELLO_HOOK';

/** "ClientHello hook failed: <what the hook threw>", the model's `error` for ERR_CLIENT_HELLO_HOOK. */
export function describeHookFailure(thrown: unknown): string {
  return `ClientHello hook failed: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
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
