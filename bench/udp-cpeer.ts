/**
 * The bench's far ends in C (echo server and load generator), used where a C compiler exists.
 *
 * Why: on a two-core machine the relay under test gets one core and the peers share the other.
 * Node peers cost about as much per round trip as the relay itself (four datagram operations
 * each), so with them every relay measures alike, socat included: the peers, not the relay,
 * set the rate. The C peers batch (recvmmsg/sendmmsg) and need a fraction of a core, so the
 * relay is what the bench measures. `udp-peer.ts` holds the same peers in Node, the fallback.
 *
 *   udp-peer echo   prints its port, echoes every datagram to its sender but flood datagrams
 *                   (first byte 0xff, `bench/udp-flood.ts`: a spoofing attacker gets no answers)
 *   udp-peer load   reads commands on stdin, answers one line each on stdout:
 *     flows N                                   -> ok
 *     prime PORT FLOWS TIMEOUT_MS               -> ok PRIMED
 *     run PORT FLOWS SIZE WINDOW WARMUP_MS DURATION_MS -> ok ROUND_TRIPS ELAPSED_MS STALLS TOTAL
 *       (ROUND_TRIPS in the measured time; TOTAL with the warm-up and the drain)
 *     prime ... and run ... with a last argument 1: each datagram behind a PROXY v2 header (UDP over
 *       IPv4) naming its flow as 203.0.113.1:(1024 + flow index), as a load balancer would send
 *       it (`bench/proxy-protocol.ts`)
 *     socks PROXY_PORT ECHO_PORT FLOWS          -> ok ASSOCIATED
 *       (`bench/socks5.ts`: each flow opens a SOCKS5 UDP association at PROXY_PORT, its socket
 *       connected to its relay; `prime` and `run` with PORT 0 then keep those targets and send
 *       SIZE bytes of data behind the 10-byte header addressed to 127.0.0.1:ECHO_PORT)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const C_PEER_SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 20000
#define BATCH 64

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("socket"); exit(1); }
  return fd;
}

static char bufs[BATCH][65536];

static int echo_main(void) {
  int fd = udp_socket();
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  struct mmsghdr m[BATCH];
  struct iovec io[BATCH];
  struct sockaddr_in from[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      io[i].iov_base = bufs[i];
      io[i].iov_len = sizeof bufs[i];
      memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
      m[i].msg_hdr.msg_iov = &io[i];
      m[i].msg_hdr.msg_iovlen = 1;
      m[i].msg_hdr.msg_name = &from[i];
      m[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, m, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    int answer = 0;
    for (int i = 0; i < n; i++) {
      io[i].iov_len = m[i].msg_len;
      if (m[i].msg_len > 0 && (unsigned char)bufs[i][0] == 0xff) continue;
      m[answer++] = m[i];
    }
    for (int sent = 0; sent < answer;) {
      int k = sendmmsg(fd, m + sent, answer - sent, 0);
      if (k < 0) {
        if (errno == EINTR) continue;
        break;
      }
      sent += k;
    }
  }
}

static int fds[MAX_FLOWS];
static int nflows = 0;
static char payload[65536];
static char rbuf[65536];
/* SOCKS5: the control connections of the associations, and the header before each payload */
static int controls[MAX_FLOWS];
static struct sockaddr_in relays[MAX_FLOWS];
static int ncontrols = 0;
static int prefix = 0;
/* PROXY v2: a header per flow, sent before the payload (gathered, no copy) when on */
static unsigned char ppv2[MAX_FLOWS][28];
static int ppv2_on = 0;

static void proxy_v2(int port, int flows, int on) {
  static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
  ppv2_on = on;
  if (!on) return;
  for (int i = 0; i < flows; i++) {
    unsigned char *h = ppv2[i];
    int sport = 1024 + i;
    memcpy(h, sig, 12);
    h[12] = 0x21; h[13] = 0x12; h[14] = 0; h[15] = 12;
    h[16] = 203; h[17] = 0; h[18] = 113; h[19] = 1;
    h[20] = 127; h[21] = 0; h[22] = 0; h[23] = 1;
    h[24] = sport >> 8; h[25] = sport & 255; h[26] = port >> 8; h[27] = port & 255;
  }
}

static void send_flow(int i, int len, int flags) {
  if (!ppv2_on) {
    send(fds[i], payload, len + prefix, flags);
    return;
  }
  struct iovec io[2] = {{.iov_base = ppv2[i], .iov_len = 28}, {.iov_base = payload, .iov_len = len}};
  struct msghdr m = {.msg_iov = io, .msg_iovlen = 2};
  sendmsg(fds[i], &m, flags);
}

static void target(int port, int flows) {
  prefix = 0;
  if (port == 0) {
    if (ncontrols < flows) return;
    prefix = 10;
    for (int i = 0; i < flows; i++) connect(fds[i], (struct sockaddr *)&relays[i], sizeof relays[i]);
    return;
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < flows; i++) connect(fds[i], (struct sockaddr *)&a, sizeof a);
}

static int read_full(int fd, unsigned char *b, int n) {
  for (int got = 0; got < n;) {
    int k = read(fd, b + got, n - got);
    if (k <= 0) return -1;
    got += k;
  }
  return 0;
}

/* UDP ASSOCIATE per flow (no authentication); the header of every datagram names the echo */
static int socks(int proxy_port, int echo_port, int flows) {
  while (ncontrols > 0) close(controls[--ncontrols]);
  struct sockaddr_in p = {.sin_family = AF_INET, .sin_port = htons(proxy_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < flows && i < nflows; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&p, sizeof p) != 0) return ncontrols;
    controls[ncontrols++] = c;
    unsigned char hello[] = {5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
    unsigned char r[12];
    if (write(c, hello, sizeof hello) != sizeof hello || read_full(c, r, 12) != 0 || r[3] != 0 || r[5] != 1) return ncontrols - 1;
    struct sockaddr_in relay = {.sin_family = AF_INET, .sin_port = (unsigned short)(r[10] | r[11] << 8)};
    memcpy(&relay.sin_addr, r + 6, 4);
    relays[i] = relay;
  }
  unsigned char header[10] = {0, 0, 0, 1, 127, 0, 0, 1, (unsigned char)(echo_port >> 8), (unsigned char)echo_port};
  memcpy(payload, header, sizeof header);
  return ncontrols;
}

static void drain(int flows) {
  for (int i = 0; i < flows; i++)
    while (recv(fds[i], rbuf, sizeof rbuf, MSG_DONTWAIT) >= 0) {}
}

static int prime(int port, int flows, int timeout_ms, int pp) {
  target(port, flows);
  proxy_v2(port, flows, pp);
  drain(flows);
  double deadline = now_ms() + timeout_ms;
  int primed = 0;
  for (int i = 0; i < flows && now_ms() < deadline; i++) {
    while (now_ms() < deadline) {
      send_flow(i, 16, 0);
      struct pollfd p = {.fd = fds[i], .events = POLLIN};
      if (poll(&p, 1, 100) == 1 && recv(fds[i], rbuf, sizeof rbuf, MSG_DONTWAIT) >= 0) {
        primed++;
        break;
      }
    }
  }
  drain(flows);
  return primed;
}

static int next_flow = 0;
static void fire(int flows, int size) {
  send_flow(next_flow, size, MSG_DONTWAIT);
  next_flow = next_flow + 1 == flows ? 0 : next_flow + 1;
}

static void run(int port, int flows, int size, int window, int warmup_ms, int duration_ms, int pp) {
  target(port, flows);
  proxy_v2(port, flows, pp);
  drain(flows);
  int ep = epoll_create1(0);
  for (int i = 0; i < flows; i++) {
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
  }
  struct epoll_event evs[256];
  long counted = 0, stalls = 0, total = 0;
  int measuring = 0, running = 1;
  double t0 = now_ms(), start = t0 + warmup_ms, end = start + duration_ms, measured_from = start, elapsed = 0;
  next_flow = 0;
  for (int i = 0; i < window; i++) fire(flows, size);
  while (running) {
    int n = epoll_wait(ep, evs, 256, 20);
    double t = now_ms();
    if (!measuring && t >= start) { measuring = 1; counted = 0; measured_from = t; }
    if (t >= end) { running = 0; elapsed = t - measured_from; break; }
    if (n == 0) {
      stalls++;
      for (int i = 0; i < window; i++) fire(flows, size);
      continue;
    }
    for (int k = 0; k < n; k++) {
      int fd = fds[evs[k].data.u32];
      while (recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT) >= 0) {
        if (measuring) counted++;
        total++;
        fire(flows, size);
      }
    }
  }
  // let what is still in flight arrive, unanswered
  for (double quiet = now_ms() + 50; now_ms() < quiet;) {
    int n = epoll_wait(ep, evs, 256, 10);
    for (int k = 0; k < n; k++) while (recv(fds[evs[k].data.u32], rbuf, sizeof rbuf, MSG_DONTWAIT) >= 0) total++;
  }
  close(ep);
  printf("ok %ld %.3f %ld %ld\n", counted, elapsed, stalls, total);
}

static int load_main(void) {
  char line[256];
  memset(payload, 'a', sizeof payload);
  while (fgets(line, sizeof line, stdin)) {
    int a, b, c, d, e, f, g = 0;
    if (sscanf(line, "flows %d", &a) == 1) {
      while (nflows < a && nflows < MAX_FLOWS) fds[nflows++] = udp_socket();
      printf("ok\n");
    } else if (sscanf(line, "prime %d %d %d %d", &a, &b, &c, &g) >= 3) {
      printf("ok %d\n", prime(a, b, c, g));
    } else if (sscanf(line, "run %d %d %d %d %d %d %d", &a, &b, &c, &d, &e, &f, &g) >= 6) {
      run(a, b, c, d, e, f, g);
    } else if (sscanf(line, "socks %d %d %d", &a, &b, &c) == 3) {
      printf("ok %d\n", socks(a, b, c));
    } else {
      printf("error unknown command\n");
    }
    fflush(stdout);
  }
  return 0;
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  if (argc > 1 && strcmp(argv[1], "echo") == 0) return echo_main();
  if (argc > 1 && strcmp(argv[1], "load") == 0) return load_main();
  fprintf(stderr, "usage: udp-peer echo|load\n");
  return 2;
}
`;

/**
 * Compiles the C peers once (cached in the temp directory by source hash); null where no C
 * compiler works (the bench then uses the Node peers).
 */
export function buildCPeer(): string | null {
  const hash = createHash('sha256').update(C_PEER_SOURCE).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `wirelayer-bench-${hash}`);
  const binary = join(dir, 'udp-peer');
  if (existsSync(binary)) return binary;
  try {
    mkdirSync(dir, { recursive: true });
    const source = join(dir, 'udp-peer.c');
    writeFileSync(source, C_PEER_SOURCE);
    execFileSync('cc', ['-O2', '-o', binary, source], { stdio: 'ignore', timeout: 30_000 });
    return binary;
  } catch {
    return null;
  }
}
