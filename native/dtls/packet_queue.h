// A FIFO of byte strings (datagrams, records) stored back to back in one growable buffer, so
// that steady traffic allocates nothing and a batch can be handed to JavaScript in one copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace wirelayer {

class PacketQueue {
 public:
  PacketQueue() = default;
  PacketQueue(const PacketQueue&) = delete;
  PacketQueue& operator=(const PacketQueue&) = delete;
  ~PacketQueue() { std::free(data_); }

  size_t count() const { return sizes_.size() - head_; }
  size_t bytes() const { return size_ - head_offset_; }
  bool empty() const { return count() == 0; }

  // Room for a packet of up to `max` bytes at the tail (nullptr if memory ran out);
  // Commit(n) then makes the first n bytes of it a packet.
  uint8_t* Reserve(size_t max) {
    if (size_ + max > capacity_) {
      if (head_offset_ > 0) {  // slide the live packets to the front first
        std::memmove(data_, data_ + head_offset_, size_ - head_offset_);
        size_ -= head_offset_;
        head_offset_ = 0;
        sizes_.erase(sizes_.begin(), sizes_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
      }
      if (size_ + max > capacity_) {
        size_t capacity = capacity_ == 0 ? 4096 : capacity_;
        while (capacity < size_ + max) capacity *= 2;
        auto* grown = static_cast<uint8_t*>(std::realloc(data_, capacity));
        if (grown == nullptr) return nullptr;
        data_ = grown;
        capacity_ = capacity;
      }
    }
    return data_ + size_;
  }

  void Commit(size_t n) {
    sizes_.push_back(static_cast<uint32_t>(n));
    size_ += n;
  }

  bool Push(const uint8_t* data, size_t n) {
    uint8_t* dst = Reserve(n);
    if (dst == nullptr) return false;
    if (n > 0) std::memcpy(dst, data, n);
    Commit(n);
    return true;
  }

  // The oldest packets are contiguous from Front(); Size(i) is the i-th one's length.
  const uint8_t* Front() const { return data_ + head_offset_; }
  size_t Size(size_t i) const { return sizes_[head_ + i]; }

  // Drops the `k` oldest packets, which together hold `total` bytes.
  void Pop(size_t k, size_t total) {
    head_ += k;
    head_offset_ += total;
    if (head_ == sizes_.size()) Clear();
  }

  void Clear() {
    sizes_.clear();
    head_ = 0;
    size_ = 0;
    head_offset_ = 0;
    // Do not let one burst pin memory for the life of the session.
    if (capacity_ > kKeepCapacity) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
    }
  }

 private:
  static constexpr size_t kKeepCapacity = 256 * 1024;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t head_offset_ = 0;
  std::vector<uint32_t> sizes_;
  size_t head_ = 0;
};

}  // namespace wirelayer
