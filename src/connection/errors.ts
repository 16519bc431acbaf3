/** Why a state could not be loaded. */
export type StateErrorCode =
  | 'ERR_STATE_UNKNOWN_KEY'
  | 'ERR_STATE_MISSING_KEY'
  | 'ERR_STATE_INVALID_VALUE'
  | 'ERR_STATE_NOT_OBJECT';

/** Raised by `fromState()` when a state does not match the schema; `key` names the offending key. */
export class ConnectionStateError extends Error {
  override readonly name = 'ConnectionStateError';
  constructor(
    readonly code: StateErrorCode,
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/** Raised when `address` or `via` is changed on an open Server (mitmproxy raises RuntimeError). */
export class ConnectionGuardError extends Error {
  override readonly name = 'ConnectionGuardError';
  readonly code = 'ERR_CONNECTION_OPEN';
  constructor(readonly field: 'address' | 'via') {
    super(`Cannot change server.${field} on open connection.`);
  }
}
