import { viewOf } from './packet.js';
import { type Skipped, skipped } from './skip.js';

/** TCP header flag bits. */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
} as const;

export interface TcpSegment {
  readonly kind: 'tcp';
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** Sequence and acknowledgement numbers, unsigned 32-bit. */
  readonly seq: number;
  readonly ack: number;
  /** The low 8 flag bits (`TcpFlag`). */
  readonly flags: number;
  readonly payload: Uint8Array;
}

export interface UdpDatagram {
  readonly kind: 'udp';
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly payload: Uint8Array;
}

/** Parses a TCP header; the payload runs to the end of `bytes` (the IP layer already trimmed it). */
export function decodeTcp(bytes: Uint8Array): TcpSegment | Skipped {
  if (bytes.length < 20) return skipped('truncated');
  const view = viewOf(bytes);
  const headerLength = (bytes[12]! >> 4) * 4;
  if (headerLength < 20) return skipped('malformed');
  if (bytes.length < headerLength) return skipped('truncated');
  return {
    kind: 'tcp',
    sourcePort: view.getUint16(0, false),
    destinationPort: view.getUint16(2, false),
    seq: view.getUint32(4, false),
    ack: view.getUint32(8, false),
    flags: bytes[13]!,
    payload: bytes.subarray(headerLength),
  };
}

/**
 * Parses a UDP header. The payload is what the length field says, or less if the capture cut it
 * (the caller knows from the IP layer); a length of 0 (IPv6 jumbogram) means "to the end".
 */
export function decodeUdp(bytes: Uint8Array): UdpDatagram | Skipped {
  if (bytes.length < 8) return skipped('truncated');
  const view = viewOf(bytes);
  const length = view.getUint16(4, false);
  if (length !== 0 && length < 8) return skipped('malformed');
  const end = length === 0 ? bytes.length : Math.min(length, bytes.length);
  return {
    kind: 'udp',
    sourcePort: view.getUint16(0, false),
    destinationPort: view.getUint16(2, false),
    payload: bytes.subarray(8, end),
  };
}
