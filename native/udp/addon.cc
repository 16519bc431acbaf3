// The Node-API binding of the datagram socket addon: plain functions over socket ids, the
// TypeScript side being src/transport/datagram/native-socket.ts. Syscall failures come back
// as negative errno numbers (JavaScript builds node:dgram-shaped errors from them); only
// misuse (wrong argument types) throws.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#include "address.h"
#include "layout.h"
#include "loop.h"
#include "socket.h"

namespace wirelayer::udp {
namespace {

enum Option : int32_t {
  kOptionRecvBuffer = 1,
  kOptionSendBuffer = 2,
  kOptionPacketInfo = 3,
  kOptionRecvEcn = 4,
  kOptionGro = 5,
  kOptionGso = 6,
  kOptionMaxDatagram = 7,
  kOptionTtl = 8,
  kOptionOriginalDestination = 9,
};

enum BindFlag : int32_t {
  kBindReuseAddr = 1,
  kBindIpv6Only = 2,
  kBindReusePort = 4,
  // bind to (and send from) an address that is not ours: TPROXY's replies (needs CAP_NET_ADMIN)
  kBindTransparent = 8,
};

struct Args {
  napi_value argv[8];
  size_t argc = 8;
};

bool GetArgs(napi_env env, napi_callback_info info, Args* a) {
  a->argc = 8;
  return napi_get_cb_info(env, info, &a->argc, a->argv, nullptr, nullptr) == napi_ok;
}

bool GetInt(napi_env env, napi_value v, int64_t* out) {
  if (v == nullptr || napi_get_value_int64(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a number");
    return false;
  }
  return true;
}

bool GetString(napi_env env, napi_value v, std::string* out) {
  size_t len = 0;
  if (v == nullptr || napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a string");
    return false;
  }
  out->resize(len);
  size_t written = 0;
  napi_get_value_string_utf8(env, v, out->data(), len + 1, &written);
  out->resize(written);
  return true;
}

bool GetTyped(napi_env env, napi_value v, napi_typedarray_type want, size_t min_length, void** data) {
  napi_typedarray_type type;
  size_t length = 0;
  if (v == nullptr || napi_get_typedarray_info(env, v, &type, &length, data, nullptr, nullptr) != napi_ok ||
      type != want || length < min_length) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "a shared array of the wrong type or size");
    return false;
  }
  return true;
}

napi_value Int(napi_env env, int64_t n) {
  napi_value v = nullptr;
  napi_create_int64(env, n, &v);
  return v;
}

napi_value Undefined(napi_env env) {
  napi_value v = nullptr;
  napi_get_undefined(env, &v);
  return v;
}

// The socket `id` names (the first argument), or null: a closed id is not an error (-EBADF
// for the calls that report).
Socket* SocketArg(napi_env env, Loop* loop, const Args& a) {
  int64_t id = 0;
  if (a.argc < 1 || !GetInt(env, a.argv[0], &id)) return nullptr;
  return loop->Find(static_cast<uint32_t>(id));
}

Loop* Ready(napi_env env) {
  Loop* loop = Loop::Of(env);
  if (loop != nullptr && !loop->initialized()) {
    napi_throw_error(env, "ERR_DATAGRAM_ADDON", "init() first");
    return nullptr;
  }
  return loop;
}

// The start of a call on a socket id (the first argument): its arguments, the socket (null when
// the id is closed) and the thread's loop. False when an exception is pending (no init()).
bool SocketCall(napi_env env, napi_callback_info info, Args* a, Socket** s, Loop** loop = nullptr) {
  if (!GetArgs(env, info, a)) return false;
  Loop* l = Ready(env);
  if (l == nullptr) return false;
  *s = SocketArg(env, l, *a);
  if (loop != nullptr) *loop = l;
  return true;
}

// An IP literal (IPv6 with an optional %scope) as a sockaddr for a socket of `family`.
bool ParseSockaddr(int family, const std::string& text, int port, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof *out);
  in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    if (family == AF_INET6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(out);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(static_cast<uint16_t>(port));
      s6->sin6_addr = MapIp4(a4);
      *len = sizeof *s6;
      return true;
    }
    auto* s4 = reinterpret_cast<sockaddr_in*>(out);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    s4->sin_addr = a4;
    *len = sizeof *s4;
    return true;
  }
  if (family != AF_INET6) return false;
  std::string host = text;
  uint32_t scope = 0;
  size_t percent = host.find('%');
  if (percent != std::string::npos) {
    std::string name = host.substr(percent + 1);
    host.resize(percent);
    char* end = nullptr;
    unsigned long numeric = std::strtoul(name.c_str(), &end, 10);
    scope = end != nullptr && *end == '\0' && !name.empty() ? static_cast<uint32_t>(numeric) : if_nametoindex(name.c_str());
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) != 1) return false;
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(static_cast<uint16_t>(port));
  s6->sin6_scope_id = scope;
  *len = sizeof *s6;
  return true;
}

napi_value AddressPair(napi_env env, const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (ss.ss_family == AF_INET6) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &s6.sin6_addr, text, sizeof text);
    port = ntohs(s6.sin6_port);
  } else {
    const auto& s4 = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &s4.sin_addr, text, sizeof text);
    port = ntohs(s4.sin_port);
  }
  napi_value pair = nullptr;
  napi_value address = nullptr;
  napi_create_array_with_length(env, 2, &pair);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_set_element(env, pair, 0, address);
  napi_set_element(env, pair, 1, Int(env, port));
  return pair;
}

napi_value Layout(napi_env env) {
  napi_value o = nullptr;
  napi_create_object(env, &o);
  const struct {
    const char* name;
    size_t value;
  } fields[] = {
      {"recvWords", kRecvWords}, {"recvRows", kRecvRows},   {"sendWords", kSendWords},
      {"sendRows", kSendRows},   {"errorWords", kErrorWords}, {"errorRows", kErrorRows},
      {"slabBytes", kSendSlabBytes}, {"statsCount", SocketStats::kCount},
  };
  for (const auto& f : fields) napi_set_named_property(env, o, f.name, Int(env, static_cast<int64_t>(f.value)));
  return o;
}

// init(onBatch, onErrors, recvMeta, sendSlab, sendMeta, errorMeta): the layout
napi_value Init(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, &a)) return nullptr;
  Loop* loop = Loop::Of(env);
  if (loop == nullptr) return nullptr;
  void* recv = nullptr;
  void* slab = nullptr;
  void* send = nullptr;
  void* errors = nullptr;
  if (!GetTyped(env, a.argv[2], napi_int32_array, kRecvRows * kRecvWords, &recv) ||
      !GetTyped(env, a.argv[3], napi_uint8_array, kSendSlabBytes, &slab) ||
      !GetTyped(env, a.argv[4], napi_int32_array, kSendRows * kSendWords, &send) ||
      !GetTyped(env, a.argv[5], napi_int32_array, kErrorRows * kErrorWords, &errors))
    return nullptr;
  if (!loop->Init(a.argv[0], a.argv[1], static_cast<int32_t*>(recv), a.argv[2], static_cast<uint8_t*>(slab),
                  a.argv[3], static_cast<int32_t*>(send), a.argv[4], static_cast<int32_t*>(errors), a.argv[5]))
    return nullptr;
  return Layout(env);
}

napi_value LayoutFn(napi_env env, napi_callback_info) { return Layout(env); }

// open(family 4 | 6): id | -errno
napi_value Open(napi_env env, napi_callback_info info) {
  Args a;
  int64_t family = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &family)) return nullptr;
  Loop* loop = Ready(env);
  if (loop == nullptr) return nullptr;
  return Int(env, loop->Open(family == 6 ? AF_INET6 : AF_INET));
}

// Sets the bind flags' options on `fd` and binds it: 0 | -errno.
int BindSocket(int fd, int family, const std::string& address, int port, int64_t flags) {
  int one = 1;
  if ((flags & kBindReuseAddr) != 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return -errno;
  if ((flags & kBindReusePort) != 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return -errno;
  if (family == AF_INET6) {
    int only = (flags & kBindIpv6Only) != 0 ? 1 : 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) != 0) return -errno;
  }
  if ((flags & kBindTransparent) != 0) {
    int r = family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                               : setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof one);
    if (r != 0) return -errno;
    // a dual-stack socket's IPv4 traffic follows the IPv4 option
    if (family == AF_INET6) setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof one);
  }
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!ParseSockaddr(family, address, port, &ss, &len)) return -EINVAL;
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return -errno;
  return 0;
}

// bind(id, address, port, flags): 0 | -errno
napi_value Bind(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  std::string address;
  int64_t port = 0;
  int64_t flags = 0;
  if (!GetString(env, a.argv[1], &address) || !GetInt(env, a.argv[2], &port) || !GetInt(env, a.argv[3], &flags))
    return nullptr;
  if (s == nullptr) return Int(env, -EBADF);
  return Int(env, BindSocket(s->fd(), s->family(), address, static_cast<int>(port), flags));
}

// adopt(fd): id | -errno. A bound UDP socket another process made and passed down (a worker's
// share of a SO_REUSEPORT group): watched here from now on, and closed with the socket (or at
// once when it cannot be taken).
napi_value Adopt(napi_env env, napi_callback_info info) {
  Args a;
  int64_t fd = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &fd)) return nullptr;
  Loop* loop = Ready(env);
  if (loop == nullptr) return nullptr;
  int f = static_cast<int>(fd);
  auto fail = [env, f](int e) {
    close(f);
    return Int(env, -e);
  };
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(f, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return fail(errno);
  if (type != SOCK_DGRAM) return fail(EPROTOTYPE);
  sockaddr_storage ss;
  len = sizeof ss;
  if (getsockname(f, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return fail(errno);
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return fail(EAFNOSUPPORT);
  // inherited fds keep their flags: ours need non-blocking reads and no leak into children
  int fl = fcntl(f, F_GETFL);
  if (fl < 0 || fcntl(f, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(f, F_SETFD, FD_CLOEXEC) != 0) return fail(errno);
  return Int(env, loop->Adopt(f, ss.ss_family));
}

// bindFd(stream, family, address, port, flags): fd | -errno. A TCP (stream true) or UDP socket,
// bound but neither listening nor watched: a primary binds a worker's share of a SO_REUSEPORT
// group with it and passes the fd down. Needs no init().
napi_value BindFd(napi_env env, napi_callback_info info) {
  Args a;
  bool stream = false;
  int64_t family = 0;
  std::string address;
  int64_t port = 0;
  int64_t flags = 0;
  if (!GetArgs(env, info, &a)) return nullptr;
  if (a.argc < 1 || napi_get_value_bool(env, a.argv[0], &stream) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a boolean");
    return nullptr;
  }
  if (!GetInt(env, a.argv[1], &family) || !GetString(env, a.argv[2], &address) || !GetInt(env, a.argv[3], &port) ||
      !GetInt(env, a.argv[4], &flags))
    return nullptr;
  int fam = family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(fam, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  stream ? IPPROTO_TCP : IPPROTO_UDP);
  if (fd < 0) return Int(env, -errno);
  int r = BindSocket(fd, fam, address, static_cast<int>(port), flags);
  if (r != 0) {
    close(fd);
    return Int(env, r);
  }
  return Int(env, fd);
}

// fdAddress(fd): [address, port] | -errno
napi_value FdAddress(napi_env env, napi_callback_info info) {
  Args a;
  int64_t fd = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &fd)) return nullptr;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Int(env, -errno);
  return AddressPair(env, ss);
}

// attachSteering(fd, Uint32Array program): 0 | -errno. A classic BPF program that picks the
// socket of fd's SO_REUSEPORT group for each datagram (SO_ATTACH_REUSEPORT_CBPF, one per group):
// two words per instruction, code | jt << 16 | jf << 24 and k.
napi_value AttachSteering(napi_env env, napi_callback_info info) {
  Args a;
  int64_t fd = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &fd)) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (a.argc < 2 || napi_get_typedarray_info(env, a.argv[1], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array || length == 0 || length % 2 != 0 || length / 2 > BPF_MAXINSNS) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "a Uint32Array of 1 to 4096 instructions");
    return nullptr;
  }
  const auto* words = static_cast<const uint32_t*>(data);
  std::vector<sock_filter> code(length / 2);
  for (size_t i = 0; i < code.size(); i++) {
    code[i].code = static_cast<uint16_t>(words[2 * i] & 0xffff);
    code[i].jt = static_cast<uint8_t>((words[2 * i] >> 16) & 0xff);
    code[i].jf = static_cast<uint8_t>((words[2 * i] >> 24) & 0xff);
    code[i].k = words[2 * i + 1];
  }
  sock_fprog program;
  program.len = static_cast<unsigned short>(code.size());
  program.filter = code.data();
  if (setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) != 0)
    return Int(env, -errno);
  return Int(env, 0);
}

// closeFd(fd): 0 | -errno (a socket of bindFd's)
napi_value CloseFd(napi_env env, napi_callback_info info) {
  Args a;
  int64_t fd = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &fd)) return nullptr;
  return Int(env, close(static_cast<int>(fd)) != 0 ? -errno : 0);
}

// connect(id, address, port): 0 | -errno
napi_value Connect(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  std::string address;
  int64_t port = 0;
  if (!GetString(env, a.argv[1], &address) || !GetInt(env, a.argv[2], &port)) return nullptr;
  if (s == nullptr) return Int(env, -EBADF);
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!ParseSockaddr(s->family(), address, static_cast<int>(port), &ss, &len)) return Int(env, -EINVAL);
  if (connect(s->fd(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Int(env, -errno);
  s->set_connected(true);
  return Int(env, 0);
}

// localAddress(id): [address, port] | -errno
napi_value LocalAddress(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  if (s == nullptr) return Int(env, -EBADF);
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->fd(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Int(env, -errno);
  return AddressPair(env, ss);
}

// remoteAddress(id): [address, port] | -errno (-ENOTCONN: not connected)
napi_value RemoteAddress(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  if (s == nullptr) return Int(env, -EBADF);
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(s->fd(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Int(env, -errno);
  return AddressPair(env, ss);
}

int SetBoth(int fd, int family, int level4, int name4, int level6, int name6, int value) {
  if (family == AF_INET6) {
    if (setsockopt(fd, level6, name6, &value, sizeof value) != 0) return -errno;
    // the IPv4 traffic of a dual-stack socket is governed by the IPv4 option
    setsockopt(fd, level4, name4, &value, sizeof value);
    return 0;
  }
  return setsockopt(fd, level4, name4, &value, sizeof value) != 0 ? -errno : 0;
}

// setOption(id, option, value): 0 | -errno
napi_value SetOption(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  int64_t option = 0;
  int64_t value = 0;
  if (!GetInt(env, a.argv[1], &option) || !GetInt(env, a.argv[2], &value)) return nullptr;
  if (s == nullptr) return Int(env, -EBADF);
  int fd = s->fd();
  int v = static_cast<int>(value);
  int r = 0;
  switch (option) {
    case kOptionRecvBuffer:
      r = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) != 0 ? -errno : 0;
      break;
    case kOptionSendBuffer:
      r = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) != 0 ? -errno : 0;
      break;
    case kOptionPacketInfo:
      r = s->family() == AF_INET6 ? (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &v, sizeof v) != 0 ? -errno : 0)
                                  : (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &v, sizeof v) != 0 ? -errno : 0);
      break;
    case kOptionRecvEcn:
      r = SetBoth(fd, s->family(), IPPROTO_IP, IP_RECVTOS, IPPROTO_IPV6, IPV6_RECVTCLASS, v);
      break;
    case kOptionGro:
      r = setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) != 0 ? -errno : 0;
      if (r == 0) s->set_gro(v != 0);
      break;
    case kOptionGso:
      s->set_gso(v != 0);
      break;
    case kOptionMaxDatagram:
      if (v < 0 || v > static_cast<int>(Socket::kMaxDatagram)) return Int(env, -EINVAL);
      s->set_max_datagram(static_cast<uint32_t>(v));
      break;
    case kOptionOriginalDestination:
      r = SetBoth(fd, s->family(), IPPROTO_IP, IP_RECVORIGDSTADDR, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, v);
      break;
    case kOptionTtl:
      r = s->family() == AF_INET6 ? (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v) != 0 ? -errno : 0)
                                  : (setsockopt(fd, IPPROTO_IP, IP_TTL, &v, sizeof v) != 0 ? -errno : 0);
      break;
    default:
      r = -EINVAL;
  }
  return Int(env, r);
}

// getOption(id, option): value | -errno
napi_value GetOption(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  int64_t option = 0;
  if (!GetInt(env, a.argv[1], &option)) return nullptr;
  if (s == nullptr) return Int(env, -EBADF);
  int v = 0;
  socklen_t len = sizeof v;
  switch (option) {
    case kOptionRecvBuffer:
      return Int(env, getsockopt(s->fd(), SOL_SOCKET, SO_RCVBUF, &v, &len) != 0 ? -errno : v);
    case kOptionSendBuffer:
      return Int(env, getsockopt(s->fd(), SOL_SOCKET, SO_SNDBUF, &v, &len) != 0 ? -errno : v);
    case kOptionGro:
      return Int(env, s->gro() ? 1 : 0);
    case kOptionGso:
      return Int(env, s->gso() ? 1 : 0);
    case kOptionMaxDatagram:
      return Int(env, s->max_datagram());
    default:
      return Int(env, -EINVAL);
  }
}

// flush(rows): the number of error rows written
napi_value Flush(napi_env env, napi_callback_info info) {
  Args a;
  int64_t rows = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &rows)) return nullptr;
  Loop* loop = Ready(env);
  if (loop == nullptr) return nullptr;
  return Int(env, static_cast<int64_t>(loop->Flush(rows < 0 ? 0 : static_cast<size_t>(rows))));
}

// close(id)
napi_value Close(napi_env env, napi_callback_info info) {
  Args a;
  int64_t id = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &id)) return nullptr;
  Loop* loop = Ready(env);
  if (loop == nullptr) return nullptr;
  loop->Close(static_cast<uint32_t>(id));
  return Undefined(env);
}

// ref(id, referenced): whether the socket keeps the event loop alive
napi_value Ref(napi_env env, napi_callback_info info) {
  Args a;
  Loop* loop = nullptr;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s, &loop)) return nullptr;
  bool referenced = true;
  if (a.argc < 2 || napi_get_value_bool(env, a.argv[1], &referenced) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a boolean");
    return nullptr;
  }
  if (s != nullptr) loop->SetReferenced(s, referenced);
  return Undefined(env);
}

// stats(id, Float64Array): false if the socket is closed
napi_value Stats(napi_env env, napi_callback_info info) {
  Args a;
  Socket* s = nullptr;
  if (!SocketCall(env, info, &a, &s)) return nullptr;
  void* out = nullptr;
  if (!GetTyped(env, a.argv[1], napi_float64_array, SocketStats::kCount, &out)) return nullptr;
  napi_value result = nullptr;
  if (s != nullptr) std::memcpy(out, &s->stats(), sizeof(SocketStats));
  napi_get_boolean(env, s != nullptr, &result);
  return result;
}

// parseAddress(text, Int32Array(5)): 4 | 6 (the words, then the scope id) | 0 (not an IP literal)
napi_value ParseAddress(napi_env env, napi_callback_info info) {
  Args a;
  std::string text;
  void* out = nullptr;
  if (!GetArgs(env, info, &a) || !GetString(env, a.argv[0], &text) ||
      !GetTyped(env, a.argv[1], napi_int32_array, 5, &out))
    return nullptr;
  auto* words = static_cast<int32_t*>(out);
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!ParseSockaddr(AF_INET6, text, 0, &ss, &len)) return Int(env, 0);
  const auto& s6 = reinterpret_cast<const sockaddr_in6&>(ss);
  in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    Ip4ToWords(a4, words);
    words[4] = 0;
    return Int(env, 4);
  }
  Ip6ToWords(s6.sin6_addr, words);
  words[4] = static_cast<int32_t>(s6.sin6_scope_id);
  return Int(env, 6);
}

// SO_ORIGINAL_DST (linux/netfilter_ipv4.h); IP6T_SO_ORIGINAL_DST has the same number at SOL_IPV6.
constexpr int kSoOriginalDst = 80;

// originalDestination(fd): [address, port] where an accepted TCP connection was going before a
// REDIRECT (DNAT) rule brought it here (conntrack's original tuple), or -errno (ENOENT: no NAT).
napi_value OriginalDestination(napi_env env, napi_callback_info info) {
  Args a;
  int64_t fd = 0;
  if (!GetArgs(env, info, &a) || !GetInt(env, a.argv[0], &fd)) return nullptr;
  sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &len) != 0) return Int(env, -errno);
  sockaddr_storage original;
  std::memset(&original, 0, sizeof original);
  len = sizeof original;
  const auto& l6 = reinterpret_cast<const sockaddr_in6&>(local);
  // an IPv4 connection on a dual-stack socket was tracked as IPv4
  bool v4 = local.ss_family == AF_INET || IN6_IS_ADDR_V4MAPPED(&l6.sin6_addr);
  int r = v4 ? getsockopt(static_cast<int>(fd), IPPROTO_IP, kSoOriginalDst, &original, &len)
             : getsockopt(static_cast<int>(fd), IPPROTO_IPV6, kSoOriginalDst, &original, &len);
  if (r != 0) return Int(env, -errno);
  return AddressPair(env, original);
}

napi_value Module(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback fn;
  } functions[] = {
      {"init", Init},
      {"layout", LayoutFn},
      {"open", Open},
      {"bind", Bind},
      {"adopt", Adopt},
      {"bindFd", BindFd},
      {"fdAddress", FdAddress},
      {"attachSteering", AttachSteering},
      {"closeFd", CloseFd},
      {"connect", Connect},
      {"localAddress", LocalAddress},
      {"remoteAddress", RemoteAddress},
      {"setOption", SetOption},
      {"getOption", GetOption},
      {"flush", Flush},
      {"close", Close},
      {"ref", Ref},
      {"stats", Stats},
      {"parseAddress", ParseAddress},
      {"originalDestination", OriginalDestination},
  };
  for (const auto& f : functions) {
    napi_value fn = nullptr;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn) != napi_ok) return nullptr;
    napi_set_named_property(env, exports, f.name, fn);
  }
  napi_value supported = nullptr;
  napi_get_boolean(env, true, &supported);
  napi_set_named_property(env, exports, "supported", supported);
  return exports;
}

}  // namespace
}  // namespace wirelayer::udp

NAPI_MODULE(NODE_GYP_MODULE_NAME, wirelayer::udp::Module)
