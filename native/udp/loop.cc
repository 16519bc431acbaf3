#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "layout.h"

namespace wirelayer::udp {
namespace {

constexpr size_t kEvents = 256;

bool SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0;
}

}  // namespace

Loop::Loop(napi_env env)
    : env_(env), batch_(std::make_unique<ReceiveBatch>()), send_(std::make_unique<SendScratch>()) {
  std::memset(&poll_, 0, sizeof poll_);
}

Loop* Loop::Of(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) == napi_ok && data != nullptr) return static_cast<Loop*>(data);
  auto* loop = new Loop(env);
  loop->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  uv_loop_t* uv = nullptr;
  if (loop->epfd_ < 0 || napi_get_uv_event_loop(env, &uv) != napi_ok ||
      uv_poll_init(uv, &loop->poll_, loop->epfd_) != 0) {
    if (loop->epfd_ >= 0) close(loop->epfd_);
    delete loop;
    napi_throw_error(env, "ERR_DATAGRAM_ADDON", "cannot watch datagram sockets on the event loop");
    return nullptr;
  }
  loop->poll_.data = loop;
  // not referenced until a referenced socket exists (a process with none may exit)
  uv_unref(reinterpret_cast<uv_handle_t*>(&loop->poll_));
  napi_set_instance_data(env, loop, nullptr, nullptr);
  napi_add_async_cleanup_hook(env, Cleanup, loop, &loop->cleanup_);
  return loop;
}

void Loop::Cleanup(napi_async_cleanup_hook_handle handle, void* data) {
  auto* loop = static_cast<Loop*>(data);
  for (auto& entry : loop->sockets_) entry.second->Close();
  loop->sockets_.clear();
  loop->carry_.clear();
  if (loop->polling_) uv_poll_stop(&loop->poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(&loop->poll_), [](uv_handle_t* h) {
    auto* closed = static_cast<Loop*>(h->data);
    napi_async_cleanup_hook_handle hook = closed->cleanup_;
    if (closed->epfd_ >= 0) close(closed->epfd_);
    delete closed;
    napi_remove_async_cleanup_hook(hook);
  });
  (void)handle;
}

bool Loop::Init(napi_value on_batch, napi_value on_errors, int32_t* recv_meta, napi_value recv_meta_value,
                uint8_t* send_slab, napi_value send_slab_value, int32_t* send_meta, napi_value send_meta_value,
                int32_t* error_meta, napi_value error_meta_value) {
  if (initialized()) {
    napi_throw_error(env_, "ERR_DATAGRAM_ADDON", "the datagram addon is initialized once per thread");
    return false;
  }
  napi_value resource = nullptr;
  napi_value name = nullptr;
  if (napi_create_reference(env_, on_batch, 1, &on_batch_) != napi_ok ||
      napi_create_reference(env_, on_errors, 1, &on_errors_) != napi_ok ||
      napi_create_object(env_, &resource) != napi_ok || napi_create_reference(env_, resource, 1, &resource_) != napi_ok ||
      napi_create_string_utf8(env_, "wirelayer.datagram", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env_, resource, name, &async_context_) != napi_ok)
    return false;
  napi_value arrays[4] = {recv_meta_value, send_slab_value, send_meta_value, error_meta_value};
  for (size_t i = 0; i < 4; i++)
    if (napi_create_reference(env_, arrays[i], 1, &arrays_[i]) != napi_ok) return false;
  batch_->Attach(recv_meta);
  send_slab_ = send_slab;
  send_meta_ = send_meta;
  error_meta_ = error_meta;
  return true;
}

int64_t Loop::Open(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return -errno;
  return Adopt(fd, family);
}

int64_t Loop::Adopt(int fd, int family) {
  uint32_t id = next_id_++;
  auto socket = std::make_unique<Socket>(id, fd, family);
  // ICMP errors come with the peer they concern (and on unconnected sockets at all)
  bool recverr = SetInt(fd, IPPROTO_IP, IP_RECVERR, 1);
  if (family == AF_INET6) recverr = SetInt(fd, IPPROTO_IPV6, IPV6_RECVERR, 1) && recverr;
  socket->set_recverr(recverr);
  // the kernel's count of datagrams it dropped on a full receive buffer, with each datagram
  SetInt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1);
  // GRO trains arrive whole and are split here: one receive for many datagrams
  socket->set_gro(SetInt(fd, SOL_UDP, UDP_GRO, 1));
  epoll_event ev;
  std::memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = socket.get();
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    socket->Close();
    return -e;
  }
  if (!polling_) {
    if (uv_poll_start(&poll_, UV_READABLE, OnPoll) != 0) {
      socket->Close();
      return -EIO;
    }
    polling_ = true;
  }
  sockets_.emplace(id, std::move(socket));
  referenced_++;
  UpdateRef();
  return id;
}

Socket* Loop::Find(uint32_t id) const {
  auto it = sockets_.find(id);
  return it == sockets_.end() ? nullptr : it->second.get();
}

void Loop::Close(uint32_t id) {
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  Socket* socket = it->second.get();
  if (socket->carried) carry_.erase(std::remove(carry_.begin(), carry_.end(), socket), carry_.end());
  if (socket->referenced()) referenced_--;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, socket->fd(), nullptr);
  socket->Close();
  sockets_.erase(it);
  UpdateRef();
}

void Loop::SetReferenced(Socket* socket, bool referenced) {
  if (socket->referenced() == referenced) return;
  socket->set_referenced(referenced);
  if (referenced)
    referenced_++;
  else
    referenced_--;
  UpdateRef();
}

void Loop::UpdateRef() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&poll_);
  if (referenced_ > 0)
    uv_ref(handle);
  else
    uv_unref(handle);
}

void Loop::UpdateInterest(Socket* socket) {
  bool want = socket->wants_write();
  if (want == socket->out_armed) return;
  epoll_event ev;
  std::memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | (want ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  ev.data.ptr = socket;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, socket->fd(), &ev) == 0) socket->out_armed = want;
}

void Loop::OnPoll(uv_poll_t* handle, int status, int events) {
  (void)status;
  (void)events;
  static_cast<Loop*>(handle->data)->Turn();
}

void Loop::Turn() {
  if (!initialized()) return;
  turn_++;
  batch_->Reset();
  turn_errors_.Clear();
  ready_.clear();
  for (Socket* s : carry_) {
    s->carried = false;
    s->served_turn = turn_;
    ready_.push_back(s);
  }
  carry_.clear();
  epoll_event events[kEvents];
  int n = epoll_wait(epfd_, events, kEvents, 0);
  for (int i = 0; i < n; i++) {
    auto* s = static_cast<Socket*>(events[i].data.ptr);
    uint32_t ev = events[i].events;
    if ((ev & EPOLLERR) != 0) s->DrainErrors(turn_errors_, kErrorsPerSocket);
    if ((ev & EPOLLOUT) != 0) {
      s->SendPending(turn_errors_);
      UpdateInterest(s);
    }
    if ((ev & EPOLLIN) != 0 && s->served_turn != turn_) {
      s->served_turn = turn_;
      ready_.push_back(s);
    }
  }
  for (Socket* s : ready_) {
    if (batch_->turn_full()) {
      // this turn has taken its share: this one goes first next turn (epoll still reports it)
      s->carried = true;
      carry_.push_back(s);
      continue;
    }
    s->Receive(*batch_, kPerSocket, turn_errors_);
  }
  Deliver();
}

void Loop::Deliver() {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  if (batch_->rows() > 0) {
    napi_value argv[2];
    void* copy = nullptr;
    if (napi_create_buffer_copy(env_, batch_->bytes(), batch_->data(), &copy, &argv[0]) == napi_ok &&
        napi_create_uint32(env_, static_cast<uint32_t>(batch_->rows()), &argv[1]) == napi_ok)
      CallJs(on_batch_, 2, argv);
  }
  // after the batch: JavaScript may have flushed (with errors of its own) meanwhile
  size_t errors = WriteErrors(turn_errors_);
  if (errors > 0) {
    napi_value argv[1];
    if (napi_create_uint32(env_, static_cast<uint32_t>(errors), &argv[0]) == napi_ok) CallJs(on_errors_, 1, argv);
  }
  napi_close_handle_scope(env_, scope);
}

size_t Loop::WriteErrors(ErrorList& list) {
  size_t count = list.count();
  if (count > 0) std::memcpy(error_meta_, list.rows(), count * kErrorWords * sizeof(int32_t));
  list.Clear();
  return count;
}

void Loop::CallJs(napi_ref fn_ref, size_t argc, napi_value* argv) {
  napi_value fn = nullptr;
  napi_value resource = nullptr;
  napi_value result = nullptr;
  if (napi_get_reference_value(env_, fn_ref, &fn) != napi_ok ||
      napi_get_reference_value(env_, resource_, &resource) != napi_ok)
    return;
  // a callback scope: process.nextTick and promise jobs queued by the handlers run after it
  if (napi_make_callback(env_, async_context_, resource, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value error = nullptr;
    if (napi_get_and_clear_last_exception(env_, &error) == napi_ok) napi_fatal_exception(env_, error);
  }
}

size_t Loop::Flush(size_t rows) {
  flush_errors_.Clear();
  if (rows > kSendRows) rows = kSendRows;
  size_t i = 0;
  while (i < rows) {
    const int32_t* row = send_meta_ + i * kSendWords;
    int32_t id = row[kSendId];
    size_t j = i + 1;
    while (j < rows && send_meta_[j * kSendWords + kSendId] == id) j++;
    Socket* socket = Find(static_cast<uint32_t>(id));
    if (socket != nullptr) {
      socket->Send(send_slab_, row, j - i, flush_errors_, *send_);
      UpdateInterest(socket);
    }
    i = j;
  }
  return WriteErrors(flush_errors_);
}

}  // namespace wirelayer::udp
