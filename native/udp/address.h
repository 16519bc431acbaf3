// Socket addresses to and from the four-word form of layout.h.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace wirelayer::udp {

inline uint32_t LoadBE(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline void StoreBE(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

inline void Ip4ToWords(const in_addr& a, int32_t* w) {
  w[0] = static_cast<int32_t>(LoadBE(reinterpret_cast<const uint8_t*>(&a.s_addr)));
  w[1] = w[2] = w[3] = 0;
}

inline void Ip6ToWords(const in6_addr& a, int32_t* w) {
  for (int i = 0; i < 4; i++) w[i] = static_cast<int32_t>(LoadBE(a.s6_addr + 4 * i));
}

inline in_addr WordsToIp4(const int32_t* w) {
  in_addr a;
  StoreBE(reinterpret_cast<uint8_t*>(&a.s_addr), static_cast<uint32_t>(w[0]));
  return a;
}

inline in6_addr WordsToIp6(const int32_t* w) {
  in6_addr a;
  for (int i = 0; i < 4; i++) StoreBE(a.s6_addr + 4 * i, static_cast<uint32_t>(w[i]));
  return a;
}

// An IPv4 address as the v4-mapped IPv6 address ::ffff:a.b.c.d.
inline in6_addr MapIp4(const in_addr& a) {
  in6_addr m;
  std::memset(&m, 0, sizeof m);
  m.s6_addr[10] = m.s6_addr[11] = 0xff;
  std::memcpy(m.s6_addr + 12, &a.s_addr, 4);
  return m;
}

// Writes a sockaddr's address, port and scope; returns whether it is IPv6 (false for
// anything else, which is left as zeros).
inline bool SockaddrToWords(const sockaddr_storage& ss, int32_t* words, int32_t* port, int32_t* scope) {
  if (ss.ss_family == AF_INET6) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(ss);
    Ip6ToWords(s6.sin6_addr, words);
    *port = ntohs(s6.sin6_port);
    *scope = static_cast<int32_t>(s6.sin6_scope_id);
    return true;
  }
  if (ss.ss_family == AF_INET) {
    const auto& s4 = reinterpret_cast<const sockaddr_in&>(ss);
    Ip4ToWords(s4.sin_addr, words);
    *port = ntohs(s4.sin_port);
  } else {
    words[0] = words[1] = words[2] = words[3] = 0;
    *port = 0;
  }
  *scope = 0;
  return false;
}

// The sockaddr for a socket of `family` (AF_INET, AF_INET6): an IPv4 address given to an IPv6
// socket becomes v4-mapped (an IPv6 address given to an IPv4 socket is the caller's error).
inline socklen_t WordsToSockaddr(int family, const int32_t* words, bool v6, int32_t port, int32_t scope,
                                 sockaddr_storage* out) {
  std::memset(out, 0, sizeof(sockaddr_in6));
  if (family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(out);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    s6->sin6_addr = v6 ? WordsToIp6(words) : MapIp4(WordsToIp4(words));
    s6->sin6_scope_id = v6 ? static_cast<uint32_t>(scope) : 0;
    return sizeof(sockaddr_in6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(out);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(static_cast<uint16_t>(port));
  s4->sin_addr = WordsToIp4(words);
  return sizeof(sockaddr_in);
}

}  // namespace wirelayer::udp
