/**
 * The datagram socket the UDP, DTLS and QUIC drivers use: one interface, two implementations.
 * `node:dgram` runs everywhere; the native addon (Linux) receives with recvmmsg in batches,
 * sends with sendmmsg and UDP GSO, reports the local address each datagram arrived on and
 * answers from it, and reports ICMP errors with the peer they concern.
 *
 * Drivers see datagrams, never syscalls: a handler per datagram (called in a loop over a batch
 * on the native side), `send()` that queues (flushed once per event-loop turn natively), and
 * node:dgram's `error` and `close` events with node:dgram's error codes.
 */
import type { EventEmitter } from 'node:events';
import { getSystemErrorName } from 'node:util';

/** Which implementation a socket runs on. */
export type DatagramBackend = 'native' | 'dgram';

/**
 * What the receive handler learns beyond the sender. The object is reused for every datagram:
 * read it during the call, copy what you keep.
 */
export interface ReceiveInfo {
  /**
   * The local address the datagram arrived on (IP_PKTINFO / IPV6_PKTINFO): with `packetInfo`
   * on the native backend; null otherwise.
   */
  localAddress: string | null;
  /** The ECN bits of its IP header (0 to 3): with `ecn` on the native backend; 0 otherwise. */
  ecn: number;
  /** The GRO segment size it was split from (0: it arrived alone). */
  segment: number;
  /**
   * Where the datagram was going before a TPROXY rule brought it to this socket (its original
   * destination, IP_ORIGDSTADDR): with `originalDestination` on the native backend; else null / 0.
   */
  originalAddress: string | null;
  originalPort: number;
}

/** The receive info of a datagram that carries none (node:dgram's, a tunnel's, an injected one). */
export const NO_RECEIVE_INFO: ReceiveInfo = Object.freeze({
  localAddress: null,
  ecn: 0,
  segment: 0,
  originalAddress: null,
  originalPort: 0,
});

/** Takes each datagram received: its bytes (the handler may keep them), sender and info. */
export type DatagramHandler = (datagram: Buffer, address: string, port: number, info: ReceiveInfo) => void;

/**
 * Takes an ICMP error about a datagram an unconnected socket sent to `address:port` (port or
 * host unreachable...): the native backend only (IP_RECVERR); node:dgram never learns of them.
 */
export type UnreachableHandler = (error: NodeJS.ErrnoException, address: string, port: number) => void;

/** How to open a datagram socket. */
export interface DatagramSocketOptions {
  family: 4 | 6;
  /** Local address to bind; default the family's wildcard (`0.0.0.0`, `::`). */
  address?: string;
  /** Local port; default 0 (any). */
  port?: number;
  /** Connect to this peer: only its datagrams arrive, and its ICMP errors are `error` events. */
  connect?: { address: string; port: number };
  /** SO_RCVBUF / SO_SNDBUF (the kernel caps them at net.core.rmem_max / wmem_max). */
  recvBufferSize?: number;
  sendBufferSize?: number;
  reuseAddr?: boolean;
  /** An IPv6 socket that takes no IPv4 (default false: dual stack). */
  ipv6Only?: boolean;
  /**
   * Report the local address each datagram arrived on (`ReceiveInfo.localAddress`), so that a
   * socket bound to a wildcard can answer from it (`send`'s `from`). Native backend only.
   */
  packetInfo?: boolean;
  /** Read the ECN bits of each datagram (`ReceiveInfo.ecn`). Native backend only. */
  ecn?: boolean;
  /**
   * Bind with IP_TRANSPARENT (Linux, CAP_NET_ADMIN): take datagrams a TPROXY rule steers here, and
   * bind to (so send from) an address that is not the host's, as a transparent proxy answers from
   * the original destination. Native backend only.
   */
  transparent?: boolean;
  /** Report each datagram's original destination (`ReceiveInfo.originalAddress`, TPROXY). Native only. */
  originalDestination?: boolean;
  /** SO_REUSEPORT: several sockets on one address and port (one per worker, or per flow of a transparent proxy). Native only. */
  reusePort?: boolean;
  /**
   * Datagrams larger than this are dropped and counted (`stats.truncated`), never delivered cut
   * short; default 65,535 (any). Native backend only (node:dgram delivers what fits its buffer).
   */
  maxDatagramSize?: number;
  /** The implementation; default `datagramBackend()` (native where it loads, or the env's choice). */
  backend?: DatagramBackend;
}

/** Counters of a socket (node:dgram's: zeros, it counts nothing). */
export interface DatagramSocketStats {
  /** Datagrams delivered to the handler's side (before the handler). */
  received: number;
  receivedBytes: number;
  /** Datagrams larger than `maxDatagramSize`: dropped, never delivered. */
  truncated: number;
  /** Datagrams that arrived coalesced (GRO) and were split. */
  groSegments: number;
  /** Datagrams the kernel took. */
  sent: number;
  sentBytes: number;
  /** Messages that carried a GSO run of datagrams. */
  gsoSends: number;
  /** Datagrams a send failed for (each an `error` event). */
  sendErrors: number;
  /** Datagrams dropped: the socket could not send and its queue was over its bound. */
  sendDrops: number;
  /** ICMP errors reported for datagrams this socket sent. */
  icmpErrors: number;
  /** Receives that failed (each an `error` event). */
  receiveErrors: number;
  /** Datagrams that waited for the socket to be writable (EAGAIN). */
  sendQueued: number;
  /** Datagrams dropped because a receive batch was full (never expected). */
  batchDrops: number;
  /** Datagrams the kernel dropped on a full receive buffer (SO_RXQ_OVFL), as of the last one received. */
  kernelDrops: number;
}

/** A bound address, as `dgram.Socket.address()` gives it. */
export interface DatagramAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/**
 * A bound (and maybe connected) datagram socket. Events: `error` (node:dgram's errors: a failed
 * send, an ICMP error on a connected socket as `recvmsg ECONNREFUSED`; an EventEmitter `error`,
 * so it throws with no listener, as dgram's), `close` (once, after `close()`).
 */
export interface DatagramSocket extends EventEmitter {
  /** The implementation: `native`, `dgram`, or `tunnel` (datagrams carried inside something else). */
  readonly backend: DatagramBackend | 'tunnel';
  readonly family: 4 | 6;
  readonly connected: boolean;
  readonly closed: boolean;
  /** Sets the receive handler (one; null drops what arrives). */
  onMessage(handler: DatagramHandler | null): void;
  /**
   * Hands a datagram to the receive handler as if it had arrived here (no receive info): what
   * another socket received on this one's behalf (a proxy's NAT rebinding moved the source).
   */
  inject(datagram: Buffer, address: string, port: number): void;
  /** Sets the handler of ICMP errors of an unconnected socket (native only; counted either way). */
  onUnreachable(handler: UnreachableHandler | null): void;
  /**
   * Sends a datagram: to the connected peer without `port`/`address`, else to them (an IP
   * literal). `from` (native, with `packetInfo`) is the local address to send from. Natively the
   * datagram is copied and goes out with the others of this event-loop turn; failures are
   * `error` events. After `close()`, nothing is sent.
   */
  send(datagram: Uint8Array, port?: number, address?: string, from?: string | null): void;
  /**
   * Sends now what `send()` queued (natively: every socket's queue, in one batch); without it the
   * queue goes at the end of the receive batch or in a `setImmediate`. A no-op on node:dgram.
   */
  flush(): void;
  address(): DatagramAddress;
  /** The connected peer; throws (ERR_SOCKET_DGRAM_NOT_CONNECTED) when not connected. */
  remoteAddress(): DatagramAddress;
  setRecvBufferSize(size: number): void;
  setSendBufferSize(size: number): void;
  getRecvBufferSize(): number;
  getSendBufferSize(): number;
  /** Whether the socket keeps the event loop alive (it does by default). */
  ref(): this;
  unref(): this;
  readonly stats: DatagramSocketStats;
  /** Closes the socket (natively after sending what this turn queued); resolves once closed. */
  close(): Promise<void>;
}

/** Whether an address is the wildcard of its family (`0.0.0.0`, `::`): a socket bound to it needs packet info to know where each datagram arrived. */
export function isWildcardAddress(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '::0' || address === '0:0:0:0:0:0:0:0';
}

/** Counters all zero (node:dgram's, and a native socket's once closed). */
export function emptyDatagramStats(): DatagramSocketStats {
  return {
    received: 0,
    receivedBytes: 0,
    truncated: 0,
    groSegments: 0,
    sent: 0,
    sentBytes: 0,
    gsoSends: 0,
    sendErrors: 0,
    sendDrops: 0,
    icmpErrors: 0,
    receiveErrors: 0,
    sendQueued: 0,
    batchDrops: 0,
    kernelDrops: 0,
  };
}

/**
 * A system error shaped as Node's own (`exceptionWithHostPort`): message
 * `"<syscall> <CODE>[ <address>[:<port>]]"`, `errno` negative, `code`, `syscall`, `address`, `port`.
 */
export function systemError(
  errno: number,
  syscall: string,
  address?: string,
  port?: number,
): NodeJS.ErrnoException & { address?: string; port?: number } {
  const negative = errno > 0 ? -errno : errno;
  let code: string;
  try {
    code = getSystemErrorName(negative);
  } catch {
    code = `Unknown system error ${negative}`;
  }
  const where =
    address === undefined ? '' : port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const error: NodeJS.ErrnoException & { address?: string; port?: number } = new Error(
    `${syscall} ${code}${where}`,
  );
  error.errno = negative;
  error.code = code;
  error.syscall = syscall;
  if (address !== undefined) error.address = address;
  if (port !== undefined && port > 0) error.port = port;
  return error;
}
