/**
 * The one error type the handshake layer produces. Parsers return it inside a result
 * (never throw anything else); `code` is a stable string, `offset` the byte offset in
 * the input where parsing failed, `excerpt` the hex of the bytes around it.
 */
export class HandshakeParseError extends Error {
  override readonly name = 'HandshakeParseError';
  constructor(
    readonly code: string,
    message: string,
    readonly offset: number,
    readonly excerpt: string,
  ) {
    super(`${message} at offset ${offset}${excerpt ? ` (${excerpt})` : ''}`);
  }

  /** Builds the error with a hex excerpt of `bytes` around `offset` (16 bytes either side). */
  static at(code: string, message: string, bytes: Uint8Array, offset: number): HandshakeParseError {
    const from = Math.max(0, offset - 16);
    const to = Math.min(bytes.length, offset + 16);
    return new HandshakeParseError(
      code,
      message,
      offset,
      Buffer.from(bytes.subarray(from, to)).toString('hex'),
    );
  }
}

/** The outcome of a parse: a value, a request for more bytes, or a typed error. */
export type ParseResult<T> =
  | { readonly status: 'done'; readonly value: T; readonly consumed: number }
  | { readonly status: 'need-more'; readonly needed?: number }
  | { readonly status: 'error'; readonly error: HandshakeParseError };

export const needMore = (needed?: number): ParseResult<never> =>
  needed === undefined ? { status: 'need-more' } : { status: 'need-more', needed };
export const done = <T>(value: T, consumed: number): ParseResult<T> => ({ status: 'done', value, consumed });
export const failed = (error: HandshakeParseError): ParseResult<never> => ({ status: 'error', error });
