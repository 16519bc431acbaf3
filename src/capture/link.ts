import { viewOf } from './packet.js';
import { type Skipped, skipped } from './skip.js';

/** LINKTYPE_* values (tcpdump.org/linktypes.html) the decoder understands. */
export const LinkType = {
  /** BSD loopback: a 4-byte address family in the capturing host's byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** DLT_RAW as some BSDs number it; raw IPv4 or IPv6. */
  RAW_BSD_12: 12,
  RAW_BSD_14: 14,
  RAW: 101,
  /** OpenBSD loopback: like NULL, but the family is big-endian. */
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** The network-layer packet a frame carries. */
export interface NetworkPacket {
  readonly kind: 'ip';
  readonly version: 4 | 6;
  /** From the IP header on: a view, not a copy. */
  readonly data: Uint8Array;
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
const ARPHRD_NETLINK = 824;

/** BSD AF_INET6 values differ per OS (Linux 10, Windows 23, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30). */
const AF_INET = 2;
const AF_INET6_VALUES = new Set([10, 23, 24, 28, 30]);

/** Strips the link-layer header of a frame captured with `linkType`, down to the IP header. */
export function decodeLinkLayer(linkType: number, frame: Uint8Array): NetworkPacket | Skipped {
  switch (linkType) {
    case LinkType.ETHERNET:
      return decodeEthernet(frame);
    case LinkType.LINUX_SLL:
      return decodeSll(frame);
    case LinkType.LINUX_SLL2:
      return decodeSll2(frame);
    case LinkType.NULL:
      return decodeLoopback(frame, 'host');
    case LinkType.LOOP:
      return decodeLoopback(frame, 'big');
    case LinkType.RAW:
    case LinkType.RAW_BSD_12:
    case LinkType.RAW_BSD_14:
      return decodeRawIp(frame);
    case LinkType.IPV4:
      return frame.length > 0 && frame[0]! >> 4 === 4 ? ip(4, frame) : skipped('malformed');
    case LinkType.IPV6:
      return frame.length > 0 && frame[0]! >> 4 === 6 ? ip(6, frame) : skipped('malformed');
    default:
      return skipped('unsupported-link-type');
  }
}

function ip(version: 4 | 6, data: Uint8Array): NetworkPacket {
  return { kind: 'ip', version, data };
}

function decodeEthernet(frame: Uint8Array): NetworkPacket | Skipped {
  if (frame.length < 14) return skipped('truncated');
  return byEthertype(frame, 12);
}

/**
 * Dispatches on the EtherType at `at`, first stepping over any 802.1Q / 802.1ad tags
 * (each 4 bytes: tag control, then the next EtherType).
 */
function byEthertype(frame: Uint8Array, at: number): NetworkPacket | Skipped {
  const view = viewOf(frame);
  for (;;) {
    if (frame.length < at + 2) return skipped('truncated');
    const ethertype = view.getUint16(at, false);
    const payload = at + 2;
    if (ethertype === ETHERTYPE_IPV4) return ip(4, frame.subarray(payload));
    if (ethertype === ETHERTYPE_IPV6) return ip(6, frame.subarray(payload));
    if (ethertype !== ETHERTYPE_VLAN && ethertype !== ETHERTYPE_QINQ && ethertype !== ETHERTYPE_QINQ_OLD) {
      return skipped('not-ip');
    }
    at = payload + 2;
  }
}

/** Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol. */
function decodeSll(frame: Uint8Array): NetworkPacket | Skipped {
  if (frame.length < 16) return skipped('truncated');
  if (viewOf(frame).getUint16(2, false) === ARPHRD_NETLINK) return skipped('not-ip');
  return byEthertype(frame, 14);
}

/** Linux cooked v2: protocol, reserved, interface index, ARPHRD type, packet type, address length, 8 address bytes. */
function decodeSll2(frame: Uint8Array): NetworkPacket | Skipped {
  if (frame.length < 20) return skipped('truncated');
  const view = viewOf(frame);
  if (view.getUint16(8, false) === ARPHRD_NETLINK) return skipped('not-ip');
  const protocol = view.getUint16(0, false);
  if (protocol === ETHERTYPE_IPV4) return ip(4, frame.subarray(20));
  if (protocol === ETHERTYPE_IPV6) return ip(6, frame.subarray(20));
  if (protocol === ETHERTYPE_VLAN || protocol === ETHERTYPE_QINQ || protocol === ETHERTYPE_QINQ_OLD) {
    return byEthertype(frame, 22);
  }
  return skipped('not-ip');
}

function decodeLoopback(frame: Uint8Array, order: 'host' | 'big'): NetworkPacket | Skipped {
  if (frame.length < 4) return skipped('truncated');
  const view = viewOf(frame);
  // DLT_LOOP is big-endian. DLT_NULL is in the capturing host's order: try little-endian first; a
  // family never needs the upper 16 bits, so a value there means the other order (libpcap's reasoning).
  let family = view.getUint32(0, order === 'host');
  if (order === 'host' && family > 0xffff) family = view.getUint32(0, false);
  if (family === AF_INET) return ip(4, frame.subarray(4));
  if (AF_INET6_VALUES.has(family)) return ip(6, frame.subarray(4));
  return skipped('not-ip');
}

function decodeRawIp(frame: Uint8Array): NetworkPacket | Skipped {
  if (frame.length < 1) return skipped('truncated');
  const version = frame[0]! >> 4;
  if (version === 4) return ip(4, frame);
  if (version === 6) return ip(6, frame);
  return skipped('malformed');
}
