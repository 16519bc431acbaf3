import { CaptureError } from './errors.js';
import { type CapturedPacket, viewOf } from './packet.js';

const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 0x00000001;
const BLOCK_OPB = 0x00000002; // obsolete Packet Block
const BLOCK_SPB = 0x00000003;
const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPTION_END = 0;
const OPTION_IF_TSRESOL = 9;
const OPTION_IF_TSOFFSET = 14;

interface InterfaceDescription {
  readonly linkType: number;
  readonly snapLength: number;
  /** Timestamp units per second (if_tsresol; 10^6 by default). */
  readonly unitsPerSecond: number;
  /** Seconds added to every timestamp (if_tsoffset). */
  readonly offsetSeconds: number;
}

/** True when `bytes` starts with a pcapng Section Header Block. */
export function isPcapng(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && viewOf(bytes).getUint32(0, false) === BLOCK_SHB;
}

/**
 * Reads a pcapng file: every section (each in its own byte order), its interfaces with their
 * link types and timestamp resolutions, and the packets of Enhanced, Simple and obsolete Packet
 * Blocks. Other blocks are skipped. Yields each packet, then returns the error that stopped it,
 * or null at a clean end of file.
 */
export function* readPcapng(bytes: Uint8Array): Generator<CapturedPacket, CaptureError | null, void> {
  const view = viewOf(bytes);
  let le = true;
  let interfaces: InterfaceDescription[] = [];
  let offset = 0;
  let first = true;
  // Simple Packet Blocks carry no timestamp; they take the previous packet's so time never goes back.
  let lastTimestamp = 0;

  while (offset < bytes.length) {
    const remaining = bytes.length - offset;
    if (remaining < 12) return new CaptureError('truncated', 'pcapng block header cut short', offset);
    const type = view.getUint32(offset, le);
    if (type === BLOCK_SHB) {
      // The section's byte order comes from its own magic, before its length can be read.
      const magic = view.getUint32(offset + 8, false);
      if (magic === BYTE_ORDER_MAGIC) le = false;
      else if (magic === 0x4d3c2b1a) le = true;
      else return new CaptureError('bad-section-header', 'unknown pcapng byte-order magic', offset);
      interfaces = [];
    } else if (first) {
      return new CaptureError('unknown-format', 'pcapng file does not start with a section header', offset);
    }
    first = false;

    const length = view.getUint32(offset + 4, le);
    if (length < 12 || length % 4 !== 0) {
      return new CaptureError('bad-length', `pcapng block length ${length} is invalid`, offset);
    }
    if (length > remaining) return new CaptureError('truncated', 'pcapng block cut short', offset);
    if (view.getUint32(offset + length - 4, le) !== length) {
      return new CaptureError('length-mismatch', 'pcapng block trailing length differs', offset);
    }
    const body = bytes.subarray(offset + 8, offset + length - 4);
    const bodyView = viewOf(body);

    switch (type) {
      case BLOCK_SHB: {
        if (body.length < 16 || bodyView.getUint16(4, le) !== 1) {
          return new CaptureError('bad-section-header', 'unsupported pcapng section version', offset);
        }
        break;
      }
      case BLOCK_IDB: {
        if (body.length < 8)
          return new CaptureError('bad-length', 'pcapng interface block too short', offset);
        interfaces.push(describeInterface(body, le));
        break;
      }
      case BLOCK_EPB:
      case BLOCK_OPB: {
        if (body.length < 20) return new CaptureError('bad-length', 'pcapng packet block too short', offset);
        const obsolete = type === BLOCK_OPB;
        const interfaceId = obsolete ? bodyView.getUint16(0, le) : bodyView.getUint32(0, le);
        const description = interfaces[interfaceId];
        if (description === undefined) {
          return new CaptureError(
            'unknown-interface',
            `pcapng packet names interface ${interfaceId}`,
            offset,
          );
        }
        const capturedLength = bodyView.getUint32(12, le);
        const originalLength = bodyView.getUint32(16, le);
        if (capturedLength > body.length - 20) {
          return new CaptureError('bad-length', 'pcapng packet data longer than its block', offset);
        }
        const units = bodyView.getUint32(4, le) * 0x1_0000_0000 + bodyView.getUint32(8, le);
        lastTimestamp = units / description.unitsPerSecond + description.offsetSeconds;
        yield {
          timestamp: lastTimestamp,
          linkType: description.linkType,
          data: body.subarray(20, 20 + capturedLength),
          originalLength: Math.max(originalLength, capturedLength),
          interfaceId,
          offset,
        };
        break;
      }
      case BLOCK_SPB: {
        if (body.length < 4)
          return new CaptureError('bad-length', 'pcapng simple packet block too short', offset);
        const description = interfaces[0];
        if (description === undefined) {
          return new CaptureError('unknown-interface', 'pcapng simple packet before any interface', offset);
        }
        const originalLength = bodyView.getUint32(0, le);
        // A Simple Packet Block stores min(original length, snap length) bytes, then padding.
        let capturedLength = Math.min(originalLength, body.length - 4);
        if (description.snapLength > 0) capturedLength = Math.min(capturedLength, description.snapLength);
        yield {
          timestamp: lastTimestamp,
          linkType: description.linkType,
          data: body.subarray(4, 4 + capturedLength),
          originalLength: Math.max(originalLength, capturedLength),
          interfaceId: 0,
          offset,
        };
        break;
      }
      default:
        // Name resolution, statistics, decryption secrets, custom blocks: not packets.
        break;
    }
    offset += length;
  }
  return null;
}

/** Reads an IDB body; malformed options are ignored rather than fatal (they only tune timestamps). */
function describeInterface(body: Uint8Array, le: boolean): InterfaceDescription {
  const view = viewOf(body);
  const linkType = view.getUint16(0, le);
  const snapLength = view.getUint32(4, le);
  let unitsPerSecond = 1e6;
  let offsetSeconds = 0;
  let at = 8;
  while (at + 4 <= body.length) {
    const code = view.getUint16(at, le);
    const length = view.getUint16(at + 2, le);
    const valueAt = at + 4;
    if (code === OPTION_END || valueAt + length > body.length) break;
    if (code === OPTION_IF_TSRESOL && length >= 1) {
      const resolution = body[valueAt]!;
      const exponent = resolution & 0x7f;
      // Beyond 2^-63 or 10^-18 seconds no capture tool writes; treat it as corrupt, keep the default.
      if (resolution & 0x80) {
        if (exponent <= 63) unitsPerSecond = 2 ** exponent;
      } else if (exponent <= 18) {
        unitsPerSecond = 10 ** exponent;
      }
    } else if (code === OPTION_IF_TSOFFSET && length >= 8) {
      offsetSeconds = Number(view.getBigInt64(valueAt, le));
    }
    at = valueAt + ((length + 3) & ~3);
  }
  return { linkType, snapLength, unitsPerSecond, offsetSeconds };
}
