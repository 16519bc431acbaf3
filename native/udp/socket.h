// One datagram socket: its fd, its options, and the syscalls that move its datagrams
// (recvmmsg into a receive batch; sendmmsg, with UDP GSO for runs, from the send slab).
// Single-threaded: everything runs on the JavaScript thread of the env that opened it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace wirelayer::udp {

class ReceiveBatch;
class ErrorList;
struct SendScratch;

// Counters of one socket, in the order stats() writes them.
struct SocketStats {
  double received = 0;       // datagrams delivered
  double received_bytes = 0;
  double truncated = 0;      // datagrams larger than maxDatagramSize: dropped, never delivered
  double gro_segments = 0;   // datagrams that arrived coalesced by GRO (and were split)
  double sent = 0;           // datagrams the kernel took
  double sent_bytes = 0;
  double gso_sends = 0;      // sendmmsg messages that carried a GSO run
  double send_errors = 0;    // datagrams a send failed for (reported)
  double send_drops = 0;     // datagrams dropped: the socket's send queue was over its bound
  double icmp_errors = 0;    // errors from the error queue (IP_RECVERR)
  double receive_errors = 0; // receive calls that failed (reported)
  double send_queued = 0;    // datagrams that waited for the socket to be writable
  double batch_drops = 0;    // datagrams dropped: the turn's batch had no row left (never in practice)
  double kernel_drops = 0;   // datagrams the kernel dropped for a full receive buffer (SO_RXQ_OVFL)
  static constexpr size_t kCount = 14;
};

// A datagram that waits for the socket to be writable again (EAGAIN), with its own copy.
struct PendingDatagram {
  std::vector<uint8_t> data;
  sockaddr_storage dest;
  socklen_t dest_len = 0;  // 0: connected
  bool has_from = false;
  in6_addr from6;          // the source address (IPv4 sockets: the first 4 bytes)
};

class Socket {
 public:
  static constexpr uint32_t kMaxDatagram = 65535;
  // Bytes held for a socket that cannot send right now; beyond, datagrams are dropped
  // (counted), as a full socket buffer drops them.
  static constexpr size_t kPendingBytes = 1 << 20;

  Socket(uint32_t id, int fd, int family) : id_(id), fd_(fd), family_(family) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  uint32_t id() const { return id_; }
  int fd() const { return fd_; }
  int family() const { return family_; }
  bool connected() const { return connected_; }
  void set_connected(bool c) { connected_ = c; }
  bool referenced() const { return referenced_; }
  void set_referenced(bool r) { referenced_ = r; }
  uint32_t max_datagram() const { return max_datagram_; }
  void set_max_datagram(uint32_t n) { max_datagram_ = n; }
  bool gro() const { return gro_; }
  void set_gro(bool on) { gro_ = on; }
  bool gso() const { return gso_; }
  void set_gso(bool on) { gso_ = on; }
  bool recverr() const { return recverr_; }
  void set_recverr(bool on) { recverr_ = on; }
  bool wants_write() const { return !pending_.empty(); }
  const SocketStats& stats() const { return stats_; }

  // The last receive turn that served this socket, and whether it waits in the carry list.
  uint64_t served_turn = 0;
  bool carried = false;
  // Whether epoll watches it for writability (its send queue is not empty).
  bool out_armed = false;

  // Receives up to `messages` datagrams or GRO trains (split into their datagrams) into the
  // batch; returns how many rows it added. Failures go to `errors`.
  size_t Receive(ReceiveBatch& batch, size_t messages, ErrorList& errors);
  // Reads the error queue (IP_RECVERR), at most `max` entries, and clears SO_ERROR.
  void DrainErrors(ErrorList& errors, size_t max);
  // Sends `count` rows of the send layout whose bytes are in `slab`: runs of equal-size
  // datagrams to one peer as one GSO message; what the kernel cannot take now waits (copied)
  // for the socket to be writable.
  void Send(const uint8_t* slab, const int32_t* rows, size_t count, ErrorList& errors, SendScratch& scratch);
  // Sends what waited for writability; returns whether the queue is now empty.
  bool SendPending(ErrorList& errors);
  void Close();

 private:
  // Rows from `first` on wait for writability (copied out of the slab).
  void Queue(const uint8_t* slab, const int32_t* rows, size_t first, size_t count);
  // The rows of a GSO run starting at `first` (1: no run).
  size_t GsoRun(const int32_t* rows, size_t first, size_t count, size_t no_gso_before) const;

  uint32_t id_;
  int fd_;
  int family_;
  bool connected_ = false;
  bool referenced_ = true;
  bool gro_ = false;
  bool gso_ = true;
  bool recverr_ = false;
  // Segment sizes at or above this failed with GSO (EINVAL: beyond the path's MTU): sent plainly.
  uint32_t gso_limit_ = 65536;
  uint32_t max_datagram_ = kMaxDatagram;
  SocketStats stats_;
  std::deque<PendingDatagram> pending_;
  size_t pending_bytes_ = 0;
};

}  // namespace wirelayer::udp
