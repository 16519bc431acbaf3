/**
 * Sockets a primary process binds for its workers: one per worker on the same address and port
 * with SO_REUSEPORT, bound here but never read here (no event loop watches them), and passed
 * down to the workers as file descriptors. Holding them keeps each worker's place in the
 * kernel's reuseport group while that worker restarts. Linux, on the native addon.
 */

import { BindFlag } from './layout.js';
import { loadDatagramAddon } from './loader.js';
import type { UdpAddon } from './native-socket.js';
import { systemError } from './socket.js';

/** What a shared socket carries: UDP datagrams or a TCP listener. */
export type SharedSocketKind = 'udp' | 'tcp';

function addon(): UdpAddon {
  const loaded = loadDatagramAddon();
  if (!loaded.ok) {
    throw Object.assign(
      new Error(`SO_REUSEPORT sockets need wirelayer's native socket addon: ${loaded.reason}`),
      { code: 'ERR_DATAGRAM_NATIVE_UNAVAILABLE' },
    );
  }
  return loaded.exports as UdpAddon;
}

/**
 * Binds a socket with SO_REUSEPORT (and for TCP SO_REUSEADDR, as Node's own listeners) and
 * returns its fd; throws node-shaped errors (`bind EADDRINUSE 127.0.0.1:4433`). A TCP socket is
 * bound, not listening: whoever takes the fd listens (`net.Server.listen({ fd })`).
 */
export function bindReusePortFd(
  kind: SharedSocketKind,
  family: 4 | 6,
  address: string,
  port: number,
  options: { ipv6Only?: boolean } = {},
): number {
  const flags =
    BindFlag.reusePort |
    (kind === 'tcp' ? BindFlag.reuseAddr : 0) |
    (options.ipv6Only ? BindFlag.ipv6Only : 0);
  const fd = addon().bindFd(kind === 'tcp', family, address, port, flags);
  if (fd < 0) throw systemError(fd, 'bind', address, port);
  return fd;
}

/** The address a socket fd is bound to. */
export function fdAddress(fd: number): [string, number] {
  const bound = addon().fdAddress(fd);
  if (typeof bound === 'number') throw systemError(bound, 'getsockname');
  return bound;
}

/**
 * Attaches a classic BPF program (two words per instruction: code | jt << 16 | jf << 24, then k)
 * to the reuseport group of `fd` (SO_ATTACH_REUSEPORT_CBPF): for each datagram it returns the
 * index of the group's socket to take it, or one out of range for the kernel's own 4-tuple hash.
 * One program per group; attaching again replaces it.
 */
export function attachReusePortProgram(fd: number, program: Uint32Array): void {
  const r = addon().attachSteering(fd, program);
  if (r < 0) throw systemError(r, 'setsockopt');
}

/** Closes a socket of `bindReusePortFd` (it leaves its reuseport group). */
export function closeFd(fd: number): void {
  addon().closeFd(fd);
}
