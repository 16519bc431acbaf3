#include "datagram_bio.h"

#include <openssl/bio.h>

#include <cstring>
#include <mutex>

namespace wirelayer {

void DatagramQueue::EndBorrow() {
  if (borrowed != nullptr && !borrowed_taken) {
    if (pending_in.size() < kMaxPendingIn) {
      pending_in.emplace_back(borrowed, borrowed + borrowed_len);
    } else {
      in_dropped++;
    }
  }
  borrowed = nullptr;
  borrowed_len = 0;
  borrowed_taken = false;
}

void DatagramQueue::PushOut(const uint8_t* data, size_t len) {
  // A full queue behaves like a full socket buffer: the datagram is lost, DTLS recovers.
  if (out.count() >= kMaxOut || out.bytes() + len > kMaxOutBytes || !out.Push(data, len)) out_dropped++;
}

namespace {

int DgramWrite(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  DatagramQueue* q = QueueOf(bio);
  if (q == nullptr || len < 0) return -1;
  q->PushOut(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len));
  return len;
}

int DgramRead(BIO* bio, char* out, int outl) {
  BIO_clear_retry_flags(bio);
  DatagramQueue* q = QueueOf(bio);
  if (q == nullptr || out == nullptr || outl < 0) return -1;
  const uint8_t* src = nullptr;
  size_t len = 0;
  std::vector<uint8_t> front;
  if (!q->pending_in.empty()) {
    front = std::move(q->pending_in.front());
    q->pending_in.pop_front();
    src = front.data();
    len = front.size();
  } else if (q->borrowed != nullptr && !q->borrowed_taken) {
    q->borrowed_taken = true;
    src = q->borrowed;
    len = q->borrowed_len;
  } else {
    // Nothing queued: "try again later", which DTLS reads as "wait for the next datagram".
    BIO_set_retry_read(bio);
    return -1;
  }
  // Datagram semantics: what does not fit in the reader's buffer is discarded.
  size_t n = len < static_cast<size_t>(outl) ? len : static_cast<size_t>(outl);
  if (n > 0) std::memcpy(out, src, n);
  return static_cast<int>(n);
}

int DgramPuts(BIO* bio, const char* str) { return DgramWrite(bio, str, static_cast<int>(std::strlen(str))); }

long DgramCtrl(BIO* bio, int cmd, long num, void* ptr) {
  DatagramQueue* q = QueueOf(bio);
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // every write is already a complete datagram
    case BIO_CTRL_PENDING: {
      if (q == nullptr) return 0;
      if (!q->pending_in.empty()) return static_cast<long>(q->pending_in.front().size());
      if (q->borrowed != nullptr && !q->borrowed_taken) return static_cast<long>(q->borrowed_len);
      return 0;
    }
    case BIO_CTRL_WPENDING:
      return 0;  // nothing is ever held back on the write side
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_MTU:
      return q != nullptr ? q->mtu : 0;
    case BIO_CTRL_DGRAM_SET_MTU:
      if (q != nullptr) q->mtu = num;
      return num;
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
      return 0;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
      return q != nullptr ? q->mtu_overhead : 28;
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
      return 0;  // writes never fail for size: the driver's socket decides
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
      if (q != nullptr) q->timer_changed = true;
      return 0;
    case BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP:
    case BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP:
      return 0;
    case BIO_CTRL_DGRAM_GET_PEER:
      // The peer is a string of the driver's; OpenSSL only uses this to echo it back.
      return 0;
    case BIO_CTRL_DGRAM_SET_PEER:
    case BIO_CTRL_DGRAM_SET_CONNECTED:
    case BIO_CTRL_DGRAM_CONNECT:
    case BIO_CTRL_DGRAM_SET_DONT_FRAG:
#ifdef BIO_CTRL_DGRAM_SET_PEEK_MODE
    case BIO_CTRL_DGRAM_SET_PEEK_MODE:
#endif
      return 1;
    case BIO_CTRL_EOF:
      return 0;
    case BIO_CTRL_GET_CLOSE:
      return BIO_get_shutdown(bio);
    case BIO_CTRL_SET_CLOSE:
      BIO_set_shutdown(bio, static_cast<int>(num));
      return 1;
    default:
      return 0;
  }
}

int DgramCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  BIO_set_data(bio, nullptr);
  return 1;
}

int DgramDestroy(BIO* bio) {
  if (bio == nullptr) return 0;
  BIO_set_data(bio, nullptr);  // the queue belongs to the session
  BIO_set_init(bio, 0);
  return 1;
}

BIO_METHOD* method = nullptr;
std::once_flag method_once;

// Created once per process and never freed: BIO_METHODs are shared by every worker.
BIO_METHOD* Method() {
  std::call_once(method_once, [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wirelayer datagram queue");
    if (m == nullptr) return;
    BIO_meth_set_write(m, DgramWrite);
    BIO_meth_set_read(m, DgramRead);
    BIO_meth_set_puts(m, DgramPuts);
    BIO_meth_set_ctrl(m, DgramCtrl);
    BIO_meth_set_create(m, DgramCreate);
    BIO_meth_set_destroy(m, DgramDestroy);
    method = m;
  });
  return method;
}

}  // namespace

BIO* NewDatagramBio(DatagramQueue* queue) {
  BIO_METHOD* m = Method();
  if (m == nullptr) return nullptr;
  BIO* bio = BIO_new(m);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, queue);
  return bio;
}

DatagramQueue* QueueOf(BIO* bio) {
  if (bio == nullptr) return nullptr;
  return static_cast<DatagramQueue*>(BIO_get_data(bio));
}

}  // namespace wirelayer
