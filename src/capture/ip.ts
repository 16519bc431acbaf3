import { viewOf } from './packet.js';
import { type Skipped, skipped } from './skip.js';

/** The parts of an IPv4 or IPv6 datagram the flow layer needs. */
export interface IpDatagram {
  readonly kind: 'ip';
  readonly version: 4 | 6;
  /** 4 or 16 bytes: views into the packet. */
  readonly source: Uint8Array;
  readonly destination: Uint8Array;
  /** The upper-layer protocol number (6 TCP, 17 UDP, ...), after IPv6 extension headers. */
  readonly protocol: number;
  /** The upper-layer bytes, without link-layer padding. */
  readonly payload: Uint8Array;
  /** The capture cut the datagram short of its header's length (snapshot length). */
  readonly truncated: boolean;
  /** Set when this is one fragment of a datagram; `payload` is then the fragment's part. */
  readonly fragment: IpFragmentInfo | null;
}

export interface IpFragmentInfo {
  readonly id: number;
  /** Byte offset of this fragment's data in the whole payload. */
  readonly offset: number;
  readonly more: boolean;
}

export const IP_PROTOCOL_TCP = 6;
export const IP_PROTOCOL_UDP = 17;

const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_AUTHENTICATION = 51;
const IPV6_DESTINATION_OPTIONS = 60;

/** Parses an IPv4 or IPv6 header (as the link layer said, checked against the version nibble). */
export function decodeIp(version: 4 | 6, data: Uint8Array): IpDatagram | Skipped {
  return version === 4 ? decodeIpv4(data) : decodeIpv6(data);
}

export function decodeIpv4(data: Uint8Array): IpDatagram | Skipped {
  if (data.length < 20) return skipped('truncated');
  const view = viewOf(data);
  if (data[0]! >> 4 !== 4) return skipped('malformed');
  const headerLength = (data[0]! & 0x0f) * 4;
  if (headerLength < 20) return skipped('malformed');
  if (data.length < headerLength) return skipped('truncated');
  let totalLength = view.getUint16(2, false);
  // Zero is what Linux records for segmentation-offloaded packets: the capture holds the real length.
  if (totalLength === 0) totalLength = data.length;
  if (totalLength < headerLength) return skipped('malformed');
  const end = Math.min(totalLength, data.length);
  const flagsAndOffset = view.getUint16(6, false);
  const more = (flagsAndOffset & 0x2000) !== 0;
  const fragmentOffset = (flagsAndOffset & 0x1fff) * 8;
  return {
    kind: 'ip',
    version: 4,
    source: data.subarray(12, 16),
    destination: data.subarray(16, 20),
    protocol: data[9]!,
    payload: data.subarray(headerLength, end),
    truncated: data.length < totalLength,
    fragment:
      more || fragmentOffset > 0 ? { id: view.getUint16(4, false), offset: fragmentOffset, more } : null,
  };
}

export function decodeIpv6(data: Uint8Array): IpDatagram | Skipped {
  if (data.length < 40) return skipped('truncated');
  if (data[0]! >> 4 !== 6) return skipped('malformed');
  const payloadLength = viewOf(data).getUint16(4, false);
  // Zero means a jumbogram or an offloaded segment: take what was captured.
  const end = payloadLength === 0 ? data.length : Math.min(40 + payloadLength, data.length);
  const truncated = payloadLength !== 0 && data.length < 40 + payloadLength;
  const walked = walkIpv6Extensions(data[6]!, data.subarray(40, end));
  if (walked.kind === 'skipped') return walked;
  return {
    kind: 'ip',
    version: 6,
    source: data.subarray(8, 24),
    destination: data.subarray(24, 40),
    protocol: walked.protocol,
    payload: walked.payload,
    truncated,
    fragment: walked.fragment,
  };
}

interface WalkedExtensions {
  readonly kind: 'walked';
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly fragment: IpFragmentInfo | null;
}

/**
 * Steps over IPv6 extension headers (hop-by-hop, routing, destination options, authentication)
 * to the upper-layer protocol. At a fragment header it stops: what follows is the fragmentable
 * part, which only makes sense once the fragments are put together (then walk it again).
 */
export function walkIpv6Extensions(nextHeader: number, bytes: Uint8Array): WalkedExtensions | Skipped {
  let at = 0;
  for (;;) {
    switch (nextHeader) {
      case IPV6_HOP_BY_HOP:
      case IPV6_ROUTING:
      case IPV6_DESTINATION_OPTIONS:
      case IPV6_AUTHENTICATION: {
        if (bytes.length < at + 2) return skipped('truncated');
        const length =
          nextHeader === IPV6_AUTHENTICATION ? (bytes[at + 1]! + 2) * 4 : (bytes[at + 1]! + 1) * 8;
        if (bytes.length < at + length) return skipped('truncated');
        nextHeader = bytes[at]!;
        at += length;
        break;
      }
      case IPV6_FRAGMENT: {
        if (bytes.length < at + 8) return skipped('truncated');
        const view = viewOf(bytes);
        const offsetAndFlags = view.getUint16(at + 2, false);
        const offset = offsetAndFlags & 0xfff8;
        const more = (offsetAndFlags & 1) !== 0;
        const fragment = offset > 0 || more ? { id: view.getUint32(at + 4, false), offset, more } : null;
        // An "atomic" fragment (offset 0, no more) is a whole datagram: keep walking.
        if (fragment === null) {
          nextHeader = bytes[at]!;
          at += 8;
          break;
        }
        return { kind: 'walked', protocol: bytes[at]!, payload: bytes.subarray(at + 8), fragment };
      }
      default:
        return { kind: 'walked', protocol: nextHeader, payload: bytes.subarray(at), fragment: null };
    }
  }
}
