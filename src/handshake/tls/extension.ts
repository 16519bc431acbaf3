/**
 * One hello extension, kept raw: its type and a lazily made view of its bytes.
 */
export class TlsExtension {
  constructor(
    /** ExtensionType code. */
    readonly type: number,
    private readonly source: Uint8Array,
    /** Offset of the extension data in the message body. */
    readonly offset: number,
    /** Length of the extension data. */
    readonly length: number,
  ) {}

  /** The extension data (a view into the parsed message, not a copy). */
  get data(): Uint8Array {
    return this.source.subarray(this.offset, this.offset + this.length);
  }
}

/** 'tls' for TLS and QUIC hellos; 'dtls' adds the cookie field to the ClientHello. */
export type HelloVariant = 'tls' | 'dtls';
