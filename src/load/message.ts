/**
 * The bytes a load run sends. Datagrams start with a 16-byte header that an echo server sends
 * back unchanged and a source copies into its answer:
 *
 * ```
 * 0  u32  sequence number (low 32 bits), per session
 * 4  u32  reply size: how large a source's answer should be (0: as large as this datagram)
 * 8  f64  send time, the sender's performance.now() ms (the scheduled time in open loop)
 * ```
 *
 * Big-endian. Stream messages are `size` bytes of text ending in a newline, so a line-oriented
 * echo (`openssl s_server -rev`, which reverses each line) answers each with as many bytes.
 */
import { DATAGRAM_HEADER_BYTES } from './spec.js';

const scratch = new Float64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Largest UDP payload over IPv4. */
export const MAX_UDP_PAYLOAD = 65_507;

/** Writes the header into `datagram` (at least 16 bytes). */
export function writeHeader(datagram: Buffer, seq: number, replySize: number, time: number): void {
  datagram.writeUInt32BE(seq % 2 ** 32, 0);
  datagram.writeUInt32BE(replySize, 4);
  datagram.writeDoubleBE(time, 8);
}

/** The sequence number (low 32 bits) of a datagram, or -1 if it is too short for a header. */
export function headerSeq(datagram: Uint8Array): number {
  if (datagram.byteLength < DATAGRAM_HEADER_BYTES) return -1;
  return ((datagram[0]! << 24) | (datagram[1]! << 16) | (datagram[2]! << 8) | datagram[3]!) >>> 0;
}

/** The reply size a datagram asks for (0 when it asks for none, or has no header). */
export function headerReplySize(datagram: Uint8Array): number {
  if (datagram.byteLength < DATAGRAM_HEADER_BYTES) return 0;
  return ((datagram[4]! << 24) | (datagram[5]! << 16) | (datagram[6]! << 8) | datagram[7]!) >>> 0;
}

/** The send time a datagram carries (NaN if it is too short for a header). */
export function headerTime(datagram: Uint8Array): number {
  if (datagram.byteLength < DATAGRAM_HEADER_BYTES) return Number.NaN;
  // through a scratch float, not a DataView per datagram (hot path: nothing allocated)
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) scratchBytes[i] = datagram[15 - i]!;
  else for (let i = 0; i < 8; i++) scratchBytes[i] = datagram[8 + i]!;
  return scratch[0]!;
}

/** A stream message: `size` bytes of `x`, the last a newline. */
export function streamMessage(size: number): Buffer {
  const message = Buffer.alloc(size, 0x78);
  message[size - 1] = 0x0a;
  return message;
}

/** A datagram of `size` bytes whose payload after the header is `x`s. */
export function datagramTemplate(size: number): Buffer {
  const datagram = Buffer.alloc(size, 0x78);
  datagram.fill(0, 0, Math.min(size, DATAGRAM_HEADER_BYTES));
  return datagram;
}
