// The rows the addon and src/transport/datagram/native-socket.ts exchange through shared
// Int32Arrays: one row per datagram received, per datagram to send, per error. Both sides
// must agree on these numbers; the TypeScript side repeats them (layout.ts) and checks the
// row sizes against `layout()` at load.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wirelayer::udp {

// An address is four big-endian 32-bit words (an IPv4 address: the first word only).

// A received datagram.
enum RecvField : size_t {
  kRecvId = 0,      // the socket's id
  kRecvOffset,      // where its bytes start in the batch buffer
  kRecvLength,      // how many
  kRecvFlags,       // RecvFlag bits, ECN in bits 2-3
  kRecvPort,        // the sender's port
  kRecvAddr0,       // the sender's address (4 words)
  kRecvScope = kRecvAddr0 + 4,  // its IPv6 scope id
  kRecvLocal0,      // the local address it arrived on (IP_PKTINFO / IPV6_PKTINFO; 4 words)
  kRecvIfindex = kRecvLocal0 + 4,
  kRecvSegment,     // the GRO segment size it was split from (0: not coalesced)
  kRecvOrig0,       // its original destination (IP_ORIGDSTADDR, TPROXY; 4 words)
  kRecvOrigPort = kRecvOrig0 + 4,
  kRecvWords = 24
};

enum RecvFlag : int32_t {
  kRecvV6 = 1,       // the sender's address is IPv6 (maybe v4-mapped)
  kRecvLocal = 2,    // kRecvLocal0.. hold the local address
  kRecvEcnShift = 2, // (flags >> 2) & 3: the ECN bits of the IP header
  kRecvLocalV6 = 16, // the local address is IPv6
  kRecvOrig = 32,    // kRecvOrig0.. and kRecvOrigPort hold the original destination
  kRecvOrigV6 = 64,  // which is IPv6
};

// A datagram to send (written by JavaScript, read by Flush).
enum SendField : size_t {
  kSendId = 0,
  kSendOffset,      // where its bytes start in the send slab
  kSendLength,
  kSendFlags,       // SendFlag bits
  kSendPort,        // the destination port (with kSendDest)
  kSendAddr0,       // the destination address (4 words)
  kSendScope = kSendAddr0 + 4,
  kSendFrom0,       // the source address to send from (with kSendFrom; 4 words)
  kSendEcn = kSendFrom0 + 4,  // ECN bits to set (with kSendWithEcn)
  kSendReserved,
  kSendWords        // 16
};

enum SendFlag : int32_t {
  kSendDest = 1,      // unconnected: kSendPort / kSendAddr0.. name the destination
  kSendDestV6 = 2,
  kSendFrom = 4,      // kSendFrom0.. name the source address (IP_PKTINFO / IPV6_PKTINFO)
  kSendFromV6 = 8,
  kSendWithEcn = 16,  // reserved for QUIC's ECN marking
};

// An error the socket reported (a failed send, an ICMP error, a failed receive).
enum ErrorField : size_t {
  kErrorId = 0,
  kErrorKind,       // ErrorKind
  kErrorErrno,      // positive errno
  kErrorPort,       // the peer's port (0: none)
  kErrorFlags,      // 1: IPv6 address
  kErrorAddr0,      // the peer's address (4 words)
  kErrorOrigin = kErrorAddr0 + 4,  // SO_EE_ORIGIN_* of an ICMP error, else 0
  kErrorType,       // ICMP type, code
  kErrorCode,
  kErrorWords = 12
};

enum ErrorKind : int32_t {
  kErrorRecv = 0,   // recvmmsg failed (syscall 'recvmsg', as node:dgram reports)
  kErrorSend = 1,   // a send failed (syscall 'send')
  kErrorIcmp = 2,   // an ICMP error came back for a datagram we sent (IP_RECVERR)
};

// Capacities of the shared arrays, in rows, and of the send slab, in bytes.
// (kRecvRows: a turn takes about 1024 datagrams, but the last socket read may bring GRO trains
// that split into up to 64 x 64 more)
constexpr size_t kRecvRows = 8192;
constexpr size_t kSendRows = 1024;
constexpr size_t kErrorRows = 256;
constexpr size_t kSendSlabBytes = 1 << 20;

}  // namespace wirelayer::udp
