// A BIO that carries whole datagrams both ways, so OpenSSL's DTLS runs sans-IO: every
// BIO_write is one outgoing datagram, every BIO_read returns one incoming datagram.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "packet_queue.h"

namespace wirelayer {

// The queues behind one BIO. Owned by the session (or the context's stateless listener),
// which outlives the BIO: SSL_free frees the BIO first.
struct DatagramQueue {
  // Incoming. The datagram of the current call is borrowed from the JS buffer (no copy);
  // only if OpenSSL did not read it during that call is it copied into `pending_in`.
  std::deque<std::vector<uint8_t>> pending_in;
  const uint8_t* borrowed = nullptr;
  size_t borrowed_len = 0;
  bool borrowed_taken = false;

  // Outgoing datagrams, back to back.
  PacketQueue out;
  uint64_t out_dropped = 0;
  uint64_t in_dropped = 0;

  // Peer address as the driver names it ("203.0.113.5:4433"): the cookie is bound to it.
  std::string peer;
  // Per-datagram IP + UDP overhead, for DTLS_set_link_mtu and OpenSSL's minimum MTU.
  long mtu_overhead = 28;
  long mtu = 0;
  // Set whenever OpenSSL (re)arms or stops its retransmission timer.
  bool timer_changed = false;

  static constexpr size_t kMaxPendingIn = 64;
  static constexpr size_t kMaxOut = 4096;
  static constexpr size_t kMaxOutBytes = 16 * 1024 * 1024;

  void Borrow(const uint8_t* data, size_t len) {
    borrowed = data;
    borrowed_len = len;
    borrowed_taken = false;
  }
  // Ends the borrow: keeps a copy of the datagram if OpenSSL has not read it yet.
  void EndBorrow();
  bool HasInput() const { return !pending_in.empty() || (borrowed != nullptr && !borrowed_taken); }
  void ClearInput() {
    pending_in.clear();
    borrowed = nullptr;
    borrowed_len = 0;
  }
  void PushOut(const uint8_t* data, size_t len);
  void ClearOut() { out.Clear(); }
};

// A new BIO over `queue` (one reference, for SSL_set_bio(ssl, bio, bio)).
BIO* NewDatagramBio(DatagramQueue* queue);
DatagramQueue* QueueOf(BIO* bio);

}  // namespace wirelayer
