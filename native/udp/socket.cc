#include "socket.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "address.h"
#include "batch.h"
#include "layout.h"
#include "send_scratch.h"

namespace wirelayer::udp {
namespace {

// Segments one GSO message carries at most (UDP_MAX_SEGMENTS of the oldest kernels that have
// it), and its payload at most (under the IPv4 limit of 65,507 with room to spare).
constexpr size_t kGsoSegments = 64;
constexpr size_t kGsoBytes = 65000;

// Errors that an ICMP message left on the socket (sk_err). With IP_RECVERR the error queue
// reports each one, so a receive or send that merely consumed it is not a failure of its own.
bool IsIcmpErrno(int e) {
  switch (e) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case ENONET:
    case EPROTO:
    case EACCES:
    case EMSGSIZE:
      return true;
    default:
      return false;
  }
}

// Writes the control messages of a send (GSO segment size, source address) into `buf`;
// returns their length.
size_t BuildControl(uint8_t* buf, int family, uint16_t segment, const int32_t* row) {
  std::memset(buf, 0, SendScratch::kControlBytes);
  size_t used = 0;
  if (segment != 0) {
    auto* c = reinterpret_cast<cmsghdr*>(buf + used);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
    used += CMSG_SPACE(sizeof(uint16_t));
  }
  if ((row[kSendFlags] & kSendFrom) != 0) {
    auto* c = reinterpret_cast<cmsghdr*>(buf + used);
    bool from_v6 = (row[kSendFlags] & kSendFromV6) != 0;
    if (family == AF_INET6) {
      in6_pktinfo info;
      std::memset(&info, 0, sizeof info);
      info.ipi6_addr = from_v6 ? WordsToIp6(row + kSendFrom0) : MapIp4(WordsToIp4(row + kSendFrom0));
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof info);
      std::memcpy(CMSG_DATA(c), &info, sizeof info);
      used += CMSG_SPACE(sizeof info);
    } else {
      in_pktinfo info;
      std::memset(&info, 0, sizeof info);
      info.ipi_spec_dst = WordsToIp4(row + kSendFrom0);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof info);
      std::memcpy(CMSG_DATA(c), &info, sizeof info);
      used += CMSG_SPACE(sizeof info);
    }
  }
  return used;
}

// Whether two rows go to the same peer from the same source.
bool SamePath(const int32_t* a, const int32_t* b) {
  if (a[kSendFlags] != b[kSendFlags]) return false;
  if ((a[kSendFlags] & kSendDest) != 0) {
    if (a[kSendPort] != b[kSendPort] || a[kSendScope] != b[kSendScope]) return false;
    for (size_t i = 0; i < 4; i++)
      if (a[kSendAddr0 + i] != b[kSendAddr0 + i]) return false;
  }
  if ((a[kSendFlags] & kSendFrom) != 0) {
    for (size_t i = 0; i < 4; i++)
      if (a[kSendFrom0 + i] != b[kSendFrom0 + i]) return false;
  }
  return true;
}

}  // namespace

size_t Socket::Receive(ReceiveBatch& batch, size_t messages, ErrorList& errors) {
  size_t vlen = messages < ReceiveBatch::kSlots ? messages : ReceiveBatch::kSlots;
  if (vlen == 0) return 0;
  mmsghdr* m = batch.messages();
  const size_t room = gro_ ? ReceiveBatch::kSlotBytes : max_datagram_;
  for (size_t i = 0; i < vlen; i++) {
    iovec& iov = batch.iovs()[i];
    iov.iov_base = batch.slot(i);
    iov.iov_len = room;
    msghdr& h = m[i].msg_hdr;
    h.msg_name = &batch.names()[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = batch.control(i);
    h.msg_controllen = ReceiveBatch::kControlBytes;
    h.msg_flags = 0;
    m[i].msg_len = 0;
  }
  int n = recvmmsg(fd_, m, static_cast<unsigned>(vlen), MSG_DONTWAIT, nullptr);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) return 0;
    // an ICMP error consumed here is reported from the error queue (DrainErrors)
    if (recverr_ && IsIcmpErrno(e)) return 0;
    stats_.receive_errors++;
    errors.Add(id_, kErrorRecv, e, nullptr);
    return 0;
  }
  size_t added = 0;
  for (int i = 0; i < n; i++) {
    msghdr& h = m[i].msg_hdr;
    size_t len = m[i].msg_len;
    if ((h.msg_flags & MSG_TRUNC) != 0) {
      stats_.truncated++;
      continue;
    }
    int32_t local[4] = {0, 0, 0, 0};
    int32_t orig[4] = {0, 0, 0, 0};
    int32_t orig_port = 0;
    int32_t flags = 0;
    int32_t ifindex = 0;
    int ecn = 0;
    size_t segment = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        Ip4ToWords(info.ipi_addr, local);
        flags = (flags & ~kRecvLocalV6) | kRecvLocal;
        ifindex = info.ipi_ifindex;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        Ip6ToWords(info.ipi6_addr, local);
        flags |= kRecvLocal | kRecvLocalV6;
        ifindex = static_cast<int32_t>(info.ipi6_ifindex);
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
        ecn = *CMSG_DATA(c) & 3;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
        int tclass = 0;
        std::memcpy(&tclass, CMSG_DATA(c), sizeof tclass);
        ecn = tclass & 3;
      } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_ORIGDSTADDR) ||
                 (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR)) {
        // where the datagram was going before a TPROXY rule brought it here
        sockaddr_storage dst;
        std::memset(&dst, 0, sizeof dst);
        size_t n = c->cmsg_len - CMSG_LEN(0);
        std::memcpy(&dst, CMSG_DATA(c), n < sizeof dst ? n : sizeof dst);
        int32_t scope = 0;
        flags |= kRecvOrig | (SockaddrToWords(dst, orig, &orig_port, &scope) ? kRecvOrigV6 : 0);
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t drops = 0;
        std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
        stats_.kernel_drops = drops;
      } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int size = 0;
        std::memcpy(&size, CMSG_DATA(c), sizeof size);
        if (size > 0) segment = static_cast<size_t>(size);
      }
    }
    int32_t peer[4];
    int32_t port = 0;
    int32_t scope = 0;
    if (SockaddrToWords(batch.names()[i], peer, &port, &scope)) flags |= kRecvV6;
    flags |= ecn << kRecvEcnShift;
    const uint8_t* bytes = batch.slot(i);
    // a GRO train is split back into the datagrams it was made of: segment bytes each, the
    // last one shorter
    size_t step = segment > 0 && len > segment ? segment : len;
    if (step != len) stats_.gro_segments += static_cast<double>((len + step - 1) / step);
    size_t offset = 0;
    do {
      size_t part = len - offset < step ? len - offset : step;
      if (part > max_datagram_) {
        stats_.truncated++;
      } else if (batch.room() == 0) {
        stats_.batch_drops++;
      } else {
        int32_t* row = batch.Add(id_, bytes + offset, part);
        row[kRecvFlags] = flags;
        row[kRecvPort] = port;
        std::memcpy(row + kRecvAddr0, peer, sizeof peer);
        row[kRecvScope] = scope;
        std::memcpy(row + kRecvLocal0, local, sizeof local);
        row[kRecvIfindex] = ifindex;
        row[kRecvSegment] = step != len ? static_cast<int32_t>(step) : 0;
        std::memcpy(row + kRecvOrig0, orig, sizeof orig);
        row[kRecvOrigPort] = orig_port;
        stats_.received++;
        stats_.received_bytes += static_cast<double>(part);
        added++;
      }
      offset += part;
    } while (offset < len);
  }
  return added;
}

void Socket::DrainErrors(ErrorList& errors, size_t max) {
  for (size_t i = 0; i < max; i++) {
    alignas(8) uint8_t control[512];
    uint8_t payload[64];
    sockaddr_storage name;
    std::memset(&name, 0, sizeof name);
    iovec iov{payload, sizeof payload};
    msghdr h;
    std::memset(&h, 0, sizeof h);
    h.msg_name = &name;
    h.msg_namelen = sizeof name;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof control;
    if (recvmsg(fd_, &h, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
      bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6) continue;
      sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      // local errors (EMSGSIZE of our own send) were the send's own result, reported there
      if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6) continue;
      stats_.icmp_errors++;
      errors.Add(id_, kErrorIcmp, static_cast<int>(ee.ee_errno), &name, ee.ee_origin, ee.ee_type, ee.ee_code);
    }
  }
  // the pending error (sk_err) is the one the queue just reported: clear it, so that the next
  // send or receive does not fail with it
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0 && !recverr_) {
    stats_.receive_errors++;
    errors.Add(id_, kErrorRecv, err, nullptr);
  }
}

size_t Socket::GsoRun(const int32_t* rows, size_t first, size_t count, size_t no_gso_before) const {
  if (!gso_ || first < no_gso_before) return 1;
  const int32_t* head = rows + first * kSendWords;
  const int32_t size = head[kSendLength];
  if (size <= 0 || static_cast<uint32_t>(size) >= gso_limit_) return 1;
  size_t run = 1;
  size_t total = static_cast<size_t>(size);
  int32_t end = head[kSendOffset] + size;
  for (size_t r = first + 1; r < count && run < kGsoSegments; r++) {
    const int32_t* row = rows + r * kSendWords;
    int32_t len = row[kSendLength];
    // equal sizes (the last may be shorter), contiguous in the slab, same path
    if (len <= 0 || len > size || row[kSendOffset] != end || total + static_cast<size_t>(len) > kGsoBytes ||
        !SamePath(head, row))
      break;
    run++;
    total += static_cast<size_t>(len);
    end += len;
    if (len < size) break;
  }
  return run;
}

void Socket::Send(const uint8_t* slab, const int32_t* rows, size_t count, ErrorList& errors,
                  SendScratch& s) {
  if (!pending_.empty()) {
    // keep the order: behind what already waits
    Queue(slab, rows, 0, count);
    return;
  }
  size_t next = 0;
  size_t no_gso_before = 0;  // rows before this are sent without GSO (a run the path refused)
  while (next < count) {
    size_t m = 0;
    size_t r = next;
    while (r < count && m < SendScratch::kMessages) {
      const int32_t* row = rows + r * kSendWords;
      size_t run = GsoRun(rows, r, count, no_gso_before);
      size_t bytes = 0;
      for (size_t k = 0; k < run; k++) bytes += static_cast<size_t>(rows[(r + k) * kSendWords + kSendLength]);
      uint16_t segment = run > 1 ? static_cast<uint16_t>(row[kSendLength]) : 0;
      iovec& iov = s.iov[m];
      iov.iov_base = const_cast<uint8_t*>(slab + row[kSendOffset]);
      iov.iov_len = bytes;
      msghdr& h = s.mmsg[m].msg_hdr;
      std::memset(&h, 0, sizeof h);
      h.msg_iov = &iov;
      h.msg_iovlen = 1;
      if ((row[kSendFlags] & kSendDest) != 0) {
        h.msg_name = &s.names[m];
        h.msg_namelen = WordsToSockaddr(family_, row + kSendAddr0, (row[kSendFlags] & kSendDestV6) != 0,
                                        row[kSendPort], row[kSendScope], &s.names[m]);
      }
      size_t control = BuildControl(s.control[m], family_, segment, row);
      if (control > 0) {
        h.msg_control = s.control[m];
        h.msg_controllen = control;
      }
      s.mmsg[m].msg_len = 0;
      s.messages[m] = {r, run, segment, false};
      m++;
      r += run;
    }
    size_t done = 0;
    size_t restart = count;  // a row to build again from (GSO refused), else none
    while (done < m) {
      int k = sendmmsg(fd_, s.mmsg + done, static_cast<unsigned>(m - done), MSG_DONTWAIT);
      if (k > 0) {
        for (size_t i = done; i < done + static_cast<size_t>(k); i++) {
          stats_.sent += static_cast<double>(s.messages[i].rows);
          stats_.sent_bytes += static_cast<double>(s.iov[i].iov_len);
          if (s.messages[i].segment != 0) stats_.gso_sends++;
        }
        done += static_cast<size_t>(k);
        continue;
      }
      int e = errno;
      if (e == EINTR) continue;
      SendScratch::Message& bad = s.messages[done];
      if (e == EAGAIN || e == EWOULDBLOCK) {
        Queue(slab, rows, bad.first_row, count);
        return;
      }
      if (bad.segment != 0 && (e == EIO || e == EINVAL || e == EMSGSIZE || e == EOPNOTSUPP)) {
        // EIO: no checksum offload on the route's device, never GSO again; EINVAL, EMSGSIZE:
        // segments beyond the path's MTU, never GSO at this size again
        if (e == EIO || e == EOPNOTSUPP)
          gso_ = false;
        else
          gso_limit_ = bad.segment;
        no_gso_before = bad.first_row + bad.rows;
        restart = bad.first_row;
        break;
      }
      if (IsIcmpErrno(e) && recverr_ && !bad.retried) {
        // most likely an earlier ICMP error's sk_err, consumed by this send (the error queue
        // reports it): the datagram itself was not sent, so once more
        bad.retried = true;
        continue;
      }
      stats_.send_errors += static_cast<double>(bad.rows);
      const msghdr& h = s.mmsg[done].msg_hdr;
      errors.Add(id_, kErrorSend, e,
                 h.msg_name != nullptr ? static_cast<const sockaddr_storage*>(h.msg_name) : nullptr);
      done++;
    }
    next = restart < count ? restart : r;
  }
}

void Socket::Queue(const uint8_t* slab, const int32_t* rows, size_t first, size_t count) {
  for (size_t r = first; r < count; r++) {
    const int32_t* row = rows + r * kSendWords;
    size_t len = static_cast<size_t>(row[kSendLength]);
    if (pending_bytes_ + len > kPendingBytes) {
      stats_.send_drops++;
      continue;
    }
    PendingDatagram p;
    p.data.assign(slab + row[kSendOffset], slab + row[kSendOffset] + len);
    if ((row[kSendFlags] & kSendDest) != 0) {
      p.dest_len = WordsToSockaddr(family_, row + kSendAddr0, (row[kSendFlags] & kSendDestV6) != 0, row[kSendPort],
                                   row[kSendScope], &p.dest);
    }
    if ((row[kSendFlags] & kSendFrom) != 0) {
      p.has_from = true;
      p.from6 = (row[kSendFlags] & kSendFromV6) != 0 ? WordsToIp6(row + kSendFrom0)
                                                      : MapIp4(WordsToIp4(row + kSendFrom0));
    }
    pending_bytes_ += len;
    stats_.send_queued++;
    pending_.push_back(std::move(p));
  }
}

bool Socket::SendPending(ErrorList& errors) {
  bool retried = false;
  while (!pending_.empty()) {
    PendingDatagram& p = pending_.front();
    iovec iov{p.data.data(), p.data.size()};
    msghdr h;
    std::memset(&h, 0, sizeof h);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    if (p.dest_len > 0) {
      h.msg_name = &p.dest;
      h.msg_namelen = p.dest_len;
    }
    alignas(8) uint8_t control[SendScratch::kControlBytes];
    if (p.has_from) {
      // the row form of the source address, for BuildControl
      int32_t row[kSendWords] = {};
      row[kSendFlags] = kSendFrom | kSendFromV6;
      Ip6ToWords(p.from6, row + kSendFrom0);
      if (family_ == AF_INET) {
        row[kSendFlags] = kSendFrom;
        row[kSendFrom0] = row[kSendFrom0 + 3];
      }
      h.msg_control = control;
      h.msg_controllen = BuildControl(control, family_, 0, row);
    }
    if (sendmsg(fd_, &h, MSG_DONTWAIT) < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) return false;
      if (IsIcmpErrno(e) && recverr_ && !retried) {
        retried = true;
        continue;
      }
      stats_.send_errors++;
      errors.Add(id_, kErrorSend, e, p.dest_len > 0 ? &p.dest : nullptr);
    } else {
      stats_.sent++;
      stats_.sent_bytes += static_cast<double>(p.data.size());
    }
    retried = false;
    pending_bytes_ -= p.data.size();
    pending_.pop_front();
  }
  return true;
}

void Socket::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  pending_.clear();
  pending_bytes_ = 0;
}

}  // namespace wirelayer::udp
