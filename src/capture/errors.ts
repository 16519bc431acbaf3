/** Why a capture file could not be read further. Stable strings: tools may match on them. */
export type CaptureErrorCode =
  /** The file starts with neither a pcap magic number nor a pcapng Section Header Block. */
  | 'unknown-format'
  /** The file ends inside a file header, record header or block. */
  | 'truncated'
  /** A pcap record or pcapng block declares a length that cannot be right. */
  | 'bad-length'
  /** A pcapng block's trailing length differs from its leading one. */
  | 'length-mismatch'
  /** A pcapng Section Header Block has an unknown byte-order magic or major version. */
  | 'bad-section-header'
  /** A pcapng packet block names an interface that no Interface Description Block declared. */
  | 'unknown-interface'
  /** The file could not be opened or read (only from `readCapture`). */
  | 'io';

/**
 * The one error type of the capture layer. Readers return it beside the packets they could
 * read, never throw it: `code` is stable, `offset` the byte offset in the file where reading
 * stopped (the start of the record or block that was bad).
 */
export class CaptureError extends Error {
  override readonly name = 'CaptureError';
  constructor(
    readonly code: CaptureErrorCode,
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}
