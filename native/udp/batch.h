// What one receive turn hands to JavaScript: the datagrams of every ready socket back to
// back in one buffer, a row of layout.h per datagram; and the errors of a turn or a flush.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "address.h"
#include "layout.h"

namespace wirelayer::udp {

class ReceiveBatch {
 public:
  // Datagrams one recvmmsg call takes at most, and the room each has (a GRO train or the
  // largest UDP payload). The slots are virtual memory mostly: the kernel touches what it writes.
  static constexpr size_t kSlots = 64;
  static constexpr size_t kSlotBytes = 65536;
  static constexpr size_t kControlBytes = 256;
  // A turn reads no further socket past this many datagrams or bytes (the rest wait for the
  // next turn); the socket being read may still add its share (GRO trains split).
  static constexpr size_t kTurnRows = 1024;
  static constexpr size_t kTurnBytes = 4 << 20;

  // the scratch is left uninitialised: its pages are touched only by what the kernel writes
  ReceiveBatch() : scratch_(new uint8_t[kSlots * kSlotBytes]) { staging_.reserve(256 * 1024); }

  void Attach(int32_t* meta) { meta_ = meta; }
  bool attached() const { return meta_ != nullptr; }

  void Reset() {
    rows_ = 0;
    staging_.clear();
  }
  size_t rows() const { return rows_; }
  size_t room() const { return kRecvRows - rows_; }
  bool turn_full() const { return rows_ >= kTurnRows || staging_.size() >= kTurnBytes; }
  const uint8_t* data() const { return staging_.data(); }
  size_t bytes() const { return staging_.size(); }

  // A row for `len` bytes of socket `id`, its bytes copied; the caller fills the rest.
  int32_t* Add(uint32_t id, const uint8_t* bytes, size_t len) {
    int32_t* row = meta_ + rows_ * kRecvWords;
    std::memset(row, 0, kRecvWords * sizeof(int32_t));
    row[kRecvId] = static_cast<int32_t>(id);
    row[kRecvOffset] = static_cast<int32_t>(staging_.size());
    row[kRecvLength] = static_cast<int32_t>(len);
    staging_.insert(staging_.end(), bytes, bytes + len);
    rows_++;
    return row;
  }

  uint8_t* slot(size_t i) { return scratch_.get() + i * kSlotBytes; }
  mmsghdr* messages() { return messages_; }
  iovec* iovs() { return iovs_; }
  sockaddr_storage* names() { return names_; }
  uint8_t* control(size_t i) { return controls_[i]; }

 private:
  int32_t* meta_ = nullptr;
  size_t rows_ = 0;
  std::vector<uint8_t> staging_;
  std::unique_ptr<uint8_t[]> scratch_;
  mmsghdr messages_[kSlots];
  iovec iovs_[kSlots];
  sockaddr_storage names_[kSlots];
  alignas(8) uint8_t controls_[kSlots][kControlBytes];
};

class ErrorList {
 public:
  ErrorList() { rows_.reserve(kErrorRows * kErrorWords); }

  size_t count() const { return rows_.size() / kErrorWords; }
  bool full() const { return count() >= kErrorRows; }
  const int32_t* rows() const { return rows_.data(); }
  void Clear() { rows_.clear(); }
  // Errors beyond the capacity, dropped (an ICMP storm is counted, never queued without bound).
  uint64_t overflow = 0;

  void Add(uint32_t id, ErrorKind kind, int err, const sockaddr_storage* peer, int origin = 0, int type = 0,
           int code = 0) {
    if (full()) {
      overflow++;
      return;
    }
    size_t at = rows_.size();
    rows_.resize(at + kErrorWords, 0);
    int32_t* row = rows_.data() + at;
    row[kErrorId] = static_cast<int32_t>(id);
    row[kErrorKind] = kind;
    row[kErrorErrno] = err;
    if (peer != nullptr) {
      int32_t scope = 0;
      row[kErrorFlags] = SockaddrToWords(*peer, row + kErrorAddr0, &row[kErrorPort], &scope) ? 1 : 0;
    }
    row[kErrorOrigin] = origin;
    row[kErrorType] = type;
    row[kErrorCode] = code;
  }

 private:
  std::vector<int32_t> rows_;
};

}  // namespace wirelayer::udp
