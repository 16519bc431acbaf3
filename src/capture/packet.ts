/** One packet as a capture file stores it, before any protocol decoding. */
export interface CapturedPacket {
  /** Capture time in seconds since the Unix epoch (fractional). */
  readonly timestamp: number;
  /** LINKTYPE_* value of the interface that captured it (1 Ethernet, 113 SLL, 276 SLL2, ...). */
  readonly linkType: number;
  /** The captured bytes: a view into the file's buffer, not a copy. */
  readonly data: Uint8Array;
  /** Length of the packet on the wire; larger than `data.length` when the snapshot length cut it. */
  readonly originalLength: number;
  /** Index of the interface in its pcapng section (always 0 for pcap). */
  readonly interfaceId: number;
  /** Byte offset in the file of the record or block that holds the packet. */
  readonly offset: number;
}

/** Which container a capture file uses. */
export type CaptureFormat = 'pcap' | 'pcapng';

/** A DataView over exactly the bytes of `bytes`, whatever its offset in its buffer. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
