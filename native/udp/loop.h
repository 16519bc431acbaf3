// The sockets of one env (the main thread or a worker) and their place on libuv's loop: one
// epoll set of every socket, watched by one uv_poll. A turn reads every ready socket (a bounded
// share each) into one batch and hands it to JavaScript in one call; a flush sends what
// JavaScript queued in the send slab in one call.
#pragma once

#include <node_api.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "batch.h"
#include "send_scratch.h"
#include "socket.h"

namespace wirelayer::udp {

class Loop {
 public:
  // Datagrams one socket may deliver per turn (more wait for the next turn, after the others).
  static constexpr size_t kPerSocket = 64;
  // Error-queue entries read per socket and turn (an ICMP storm waits, bounded by the kernel).
  static constexpr size_t kErrorsPerSocket = 32;

  // The env's loop, made on first use (null, with an exception pending, if that failed).
  static Loop* Of(napi_env env);

  // Where JavaScript gets batches and errors, and the arrays both sides share.
  bool Init(napi_value on_batch, napi_value on_errors, int32_t* recv_meta, napi_value recv_meta_value,
            uint8_t* send_slab, napi_value send_slab_value, int32_t* send_meta, napi_value send_meta_value,
            int32_t* error_meta, napi_value error_meta_value);
  bool initialized() const { return on_batch_ != nullptr; }

  // A new socket's id, or a negative errno.
  int64_t Open(int family);
  // Takes a UDP socket made elsewhere (a worker's, inherited from the process that bound it):
  // its id, or a negative errno (the fd is closed on failure, as Open's own).
  int64_t Adopt(int fd, int family);
  Socket* Find(uint32_t id) const;
  void Close(uint32_t id);
  void SetReferenced(Socket* socket, bool referenced);

  // Sends `rows` rows of the shared send arrays; returns the error rows it wrote.
  size_t Flush(size_t rows);

 private:
  explicit Loop(napi_env env);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void Cleanup(napi_async_cleanup_hook_handle handle, void* data);
  void Turn();
  void Deliver();
  size_t WriteErrors(ErrorList& list);
  void CallJs(napi_ref fn, size_t argc, napi_value* argv);
  void UpdateInterest(Socket* socket);
  void UpdateRef();

  napi_env env_;
  int epfd_ = -1;
  uv_poll_t poll_;
  bool polling_ = false;
  size_t referenced_ = 0;
  uint32_t next_id_ = 1;
  uint64_t turn_ = 0;
  std::unordered_map<uint32_t, std::unique_ptr<Socket>> sockets_;
  std::vector<Socket*> ready_;
  // Ready sockets a full batch left unread: served first in the next turn.
  std::vector<Socket*> carry_;
  std::unique_ptr<ReceiveBatch> batch_;
  std::unique_ptr<SendScratch> send_;
  ErrorList turn_errors_;
  ErrorList flush_errors_;

  napi_ref on_batch_ = nullptr;
  napi_ref on_errors_ = nullptr;
  napi_ref resource_ = nullptr;
  napi_async_context async_context_ = nullptr;
  napi_ref arrays_[4] = {nullptr, nullptr, nullptr, nullptr};
  uint8_t* send_slab_ = nullptr;
  int32_t* send_meta_ = nullptr;
  int32_t* error_meta_ = nullptr;
  napi_async_cleanup_hook_handle cleanup_ = nullptr;
};

}  // namespace wirelayer::udp
