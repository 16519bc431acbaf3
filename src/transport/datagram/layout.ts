/**
 * The rows the addon and `native-socket.ts` exchange through shared Int32Arrays (native/udp/layout.h
 * has the same numbers; `layout()` of the addon is checked against these at load).
 */

/** A received datagram: words of its row. */
export const Recv = {
  id: 0,
  offset: 1,
  length: 2,
  flags: 3,
  port: 4,
  addr: 5,
  scope: 9,
  local: 10,
  ifindex: 14,
  segment: 15,
  orig: 16,
  origPort: 20,
  words: 24,
} as const;

/** Bits of a received row's flags (ECN in bits 2-3). */
export const RecvFlag = { v6: 1, local: 2, ecnShift: 2, localV6: 16, orig: 32, origV6: 64 } as const;

/** A datagram to send: words of its row. */
export const Send = {
  id: 0,
  offset: 1,
  length: 2,
  flags: 3,
  port: 4,
  addr: 5,
  scope: 9,
  from: 10,
  ecn: 14,
  words: 16,
} as const;

/** Bits of a send row's flags. */
export const SendFlag = { dest: 1, destV6: 2, from: 4, fromV6: 8, withEcn: 16 } as const;

/** An error: words of its row. */
export const ErrorRow = {
  id: 0,
  kind: 1,
  errno: 2,
  port: 3,
  flags: 4,
  addr: 5,
  origin: 9,
  type: 10,
  code: 11,
  words: 12,
} as const;

/** What failed: a receive (node:dgram's syscall 'recvmsg'), a send, or an ICMP error came back. */
export const ErrorKind = { recv: 0, send: 1, icmp: 2 } as const;

/** Capacities of the shared arrays (rows) and of the send slab (bytes). */
export const Capacity = { recvRows: 8192, sendRows: 1024, errorRows: 256, slabBytes: 1 << 20 } as const;

/** Socket options of the addon's `setOption` / `getOption`. */
export const SocketOption = {
  recvBuffer: 1,
  sendBuffer: 2,
  packetInfo: 3,
  recvEcn: 4,
  gro: 5,
  gso: 6,
  maxDatagram: 7,
  ttl: 8,
  originalDestination: 9,
} as const;

/** Bits of the addon's `bind` flags. */
export const BindFlag = { reuseAddr: 1, ipv6Only: 2, reusePort: 4, transparent: 8 } as const;

/** The counters `stats()` writes, in its order. */
export const STATS_FIELDS = [
  'received',
  'receivedBytes',
  'truncated',
  'groSegments',
  'sent',
  'sentBytes',
  'gsoSends',
  'sendErrors',
  'sendDrops',
  'icmpErrors',
  'receiveErrors',
  'sendQueued',
  'batchDrops',
  'kernelDrops',
] as const;
