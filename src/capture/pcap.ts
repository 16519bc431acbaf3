import { CaptureError } from './errors.js';
import { type CapturedPacket, viewOf } from './packet.js';

const FILE_HEADER_LENGTH = 24;
/** Larger than any real record; a length beyond it means the framing is lost. */
const MAX_RECORD_LENGTH = 256 * 1024 * 1024;

const MAGIC_MICROSECONDS = 0xa1b2c3d4;
const MAGIC_NANOSECONDS = 0xa1b23c4d;
/** Alexey Kuznetzov's patched format: 8 more bytes (ifindex, protocol, pkt_type) per record. */
const MAGIC_KUZNETZOV = 0xa1b2cd34;

/** True when `bytes` starts with a classic pcap magic number, in either byte order. */
export function isPcap(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const view = viewOf(bytes);
  return pcapMagic(view.getUint32(0, false)) !== null || pcapMagic(view.getUint32(0, true)) !== null;
}

function pcapMagic(value: number): 'us' | 'ns' | 'kuznetzov' | null {
  if (value === MAGIC_MICROSECONDS) return 'us';
  if (value === MAGIC_NANOSECONDS) return 'ns';
  if (value === MAGIC_KUZNETZOV) return 'kuznetzov';
  return null;
}

/**
 * Reads a classic pcap file (either byte order, micro- or nanosecond timestamps). Yields each
 * packet, then returns the error that stopped it, or null at a clean end of file.
 */
export function* readPcap(bytes: Uint8Array): Generator<CapturedPacket, CaptureError | null, void> {
  const view = viewOf(bytes);
  if (bytes.length < 4) return new CaptureError('truncated', 'pcap file header cut short', 0);
  const big = pcapMagic(view.getUint32(0, false));
  const little = pcapMagic(view.getUint32(0, true));
  const kind = big ?? little;
  if (kind === null) return new CaptureError('unknown-format', 'not a pcap magic number', 0);
  const le = big === null;
  if (bytes.length < FILE_HEADER_LENGTH)
    return new CaptureError('truncated', 'pcap file header cut short', 0);
  // Bits 16-31 of the link type field carry FCS information, not the link type.
  const linkType = view.getUint32(20, le) & 0xffff;
  const fractionScale = kind === 'ns' ? 1e-9 : 1e-6;
  const recordHeaderLength = kind === 'kuznetzov' ? 24 : 16;

  let offset = FILE_HEADER_LENGTH;
  while (offset < bytes.length) {
    if (bytes.length - offset < recordHeaderLength) {
      return new CaptureError('truncated', 'pcap record header cut short', offset);
    }
    const seconds = view.getUint32(offset, le);
    const fraction = view.getUint32(offset + 4, le);
    const capturedLength = view.getUint32(offset + 8, le);
    const originalLength = view.getUint32(offset + 12, le);
    if (capturedLength > MAX_RECORD_LENGTH) {
      return new CaptureError('bad-length', `pcap record length ${capturedLength} is implausible`, offset);
    }
    const dataStart = offset + recordHeaderLength;
    if (bytes.length - dataStart < capturedLength) {
      return new CaptureError('truncated', 'pcap record data cut short', offset);
    }
    yield {
      timestamp: seconds + fraction * fractionScale,
      linkType,
      data: bytes.subarray(dataStart, dataStart + capturedLength),
      originalLength: Math.max(originalLength, capturedLength),
      interfaceId: 0,
      offset,
    };
    offset = dataStart + capturedLength;
  }
  return null;
}
