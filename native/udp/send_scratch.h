// The arrays one flush builds its sendmmsg call in (one set per env, reused).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "layout.h"

namespace wirelayer::udp {

struct SendScratch {
  // Messages one sendmmsg call carries at most (the kernel's UIO_MAXIOV).
  static constexpr size_t kMessages = 1024;
  static constexpr size_t kControlBytes = 64;

  struct Message {
    size_t first_row;   // the first row (datagram) it carries
    size_t rows;        // how many: more than one is a GSO run
    uint16_t segment;   // the GSO segment size, 0 without GSO
    bool retried;       // already sent again once after an ICMP error was consumed
  };

  mmsghdr mmsg[kMessages];
  iovec iov[kMessages];
  sockaddr_storage names[kMessages];
  alignas(8) uint8_t control[kMessages][kControlBytes];
  Message messages[kMessages];
};

}  // namespace wirelayer::udp
