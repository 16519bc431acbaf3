/**
 * The native datagram socket (native/udp/, Linux): the `DatagramSocket` interface over the
 * addon's batches.
 *
 * Receiving: the addon watches every socket of the thread in one epoll set on libuv's loop; a
 * loop turn reads each ready socket (up to 64 datagrams each, about 1024 in all, so one busy
 * socket cannot starve the others) into one buffer and calls `#onBatch` once, the lengths and
 * addresses in a shared Int32Array. Per datagram: a view of the buffer, the sender's address
 * from a cache, one handler call.
 *
 * Sending: `send()` copies the datagram into a shared slab and writes its row; the slab goes to
 * the kernel in one `flush` (sendmmsg, runs of equal-size datagrams to one peer as one UDP GSO
 * message) at the end of a receive batch, or in a `setImmediate` of the turn, or when it fills.
 */
import { EventEmitter } from 'node:events';
import { ipv4Name, ipv6Name } from './address.js';
import {
  BindFlag,
  Capacity,
  ErrorKind,
  ErrorRow,
  Recv,
  RecvFlag,
  Send,
  SendFlag,
  SocketOption,
  STATS_FIELDS,
} from './layout.js';
import { loadDatagramAddon } from './loader.js';
import {
  type DatagramAddress,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramSocketOptions,
  type DatagramSocketStats,
  emptyDatagramStats,
  NO_RECEIVE_INFO,
  type ReceiveInfo,
  systemError,
  type UnreachableHandler,
} from './socket.js';

/** The addon's functions (native/udp/addon.cc). Negative numbers are errnos. */
export interface UdpAddon {
  init(
    onBatch: (buffer: Buffer, count: number) => void,
    onErrors: (count: number) => void,
    recvMeta: Int32Array,
    sendSlab: Uint8Array,
    sendMeta: Int32Array,
    errorMeta: Int32Array,
  ): Record<string, number>;
  open(family: number): number;
  bind(id: number, address: string, port: number, flags: number): number;
  adopt(fd: number): number;
  bindFd(stream: boolean, family: number, address: string, port: number, flags: number): number;
  /** SO_ORIGINAL_DST of an accepted TCP connection (a REDIRECT rule's original destination), or -errno. */
  originalDestination(fd: number): [string, number] | number;
  fdAddress(fd: number): [string, number] | number;
  attachSteering(fd: number, program: Uint32Array): number;
  closeFd(fd: number): number;
  connect(id: number, address: string, port: number): number;
  localAddress(id: number): [string, number] | number;
  remoteAddress(id: number): [string, number] | number;
  setOption(id: number, option: number, value: number): number;
  getOption(id: number, option: number): number;
  flush(rows: number): number;
  close(id: number): void;
  ref(id: number, referenced: boolean): void;
  stats(id: number, out: Float64Array): boolean;
  parseAddress(text: string, out: Int32Array): number;
}

/** A parsed destination: four words, the scope id, and the family (4, 6). */
type Peer = Int32Array;
const PEER_FAMILY = 5;
/** Parsed addresses kept at most; beyond, the cache starts over (peers are few in practice). */
const PEER_CACHE_MAX = 16_384;

/** Where no failure was caught (a handler may throw anything, `undefined` included). */
const NONE: unique symbol = Symbol('none');

/**
 * The addon's side of one thread: the shared arrays, the send queue, and the sockets by id.
 * Made on first use; there is one per thread (the addon keeps one epoll set per env).
 */
class NativeDatagramIO {
  readonly recvMeta = new Int32Array(Capacity.recvRows * Recv.words);
  readonly slab = new Uint8Array(Capacity.slabBytes);
  readonly sendMeta = new Int32Array(Capacity.sendRows * Send.words);
  readonly errorMeta = new Int32Array(Capacity.errorRows * ErrorRow.words);
  readonly sockets = new Map<number, NativeDatagramSocket>();
  readonly #peers = new Map<string, Peer>();
  readonly #info: ReceiveInfo = {
    localAddress: null,
    ecn: 0,
    segment: 0,
    originalAddress: null,
    originalPort: 0,
  };
  #rows = 0;
  #used = 0;
  #dispatching = false;
  #immediate: NodeJS.Immediate | null = null;

  constructor(readonly addon: UdpAddon) {
    const layout = addon.init(
      this.#onBatch,
      this.#onErrors,
      this.recvMeta,
      this.slab,
      this.sendMeta,
      this.errorMeta,
    );
    const expected: Record<string, number> = {
      recvWords: Recv.words,
      recvRows: Capacity.recvRows,
      sendWords: Send.words,
      sendRows: Capacity.sendRows,
      errorWords: ErrorRow.words,
      errorRows: Capacity.errorRows,
      slabBytes: Capacity.slabBytes,
      statsCount: STATS_FIELDS.length,
    };
    for (const [key, value] of Object.entries(expected)) {
      if (layout[key] !== value)
        throw new Error(
          `wirelayer's datagram addon does not match this module (${key} ${layout[key]}, expected ${value})`,
        );
    }
  }

  /** A destination parsed once: four words, the scope, the family; null if not an IP literal. */
  peer(address: string): Peer | null {
    let peer = this.#peers.get(address);
    if (peer !== undefined) return peer;
    peer = new Int32Array(6);
    const family = this.addon.parseAddress(address, peer);
    if (family === 0) return null;
    peer[PEER_FAMILY] = family;
    if (this.#peers.size >= PEER_CACHE_MAX) this.#peers.clear();
    this.#peers.set(address, peer);
    return peer;
  }

  /** Queues a datagram for the next flush (the bytes are copied now). */
  enqueue(id: number, datagram: Uint8Array, port: number, dest: Peer | null, from: Peer | null): void {
    const length = datagram.byteLength;
    if (this.#rows === Capacity.sendRows || this.#used + length > Capacity.slabBytes) this.flush();
    const offset = this.#used;
    this.slab.set(datagram, offset);
    const meta = this.sendMeta;
    const row = this.#rows * Send.words;
    let flags = 0;
    meta[row + Send.id] = id;
    meta[row + Send.offset] = offset;
    meta[row + Send.length] = length;
    if (dest !== null) {
      flags = dest[PEER_FAMILY] === 6 ? SendFlag.dest | SendFlag.destV6 : SendFlag.dest;
      meta[row + Send.port] = port;
      meta[row + Send.addr] = dest[0]!;
      meta[row + Send.addr + 1] = dest[1]!;
      meta[row + Send.addr + 2] = dest[2]!;
      meta[row + Send.addr + 3] = dest[3]!;
      meta[row + Send.scope] = dest[4]!;
    }
    if (from !== null) {
      flags |= from[PEER_FAMILY] === 6 ? SendFlag.from | SendFlag.fromV6 : SendFlag.from;
      meta[row + Send.from] = from[0]!;
      meta[row + Send.from + 1] = from[1]!;
      meta[row + Send.from + 2] = from[2]!;
      meta[row + Send.from + 3] = from[3]!;
    }
    meta[row + Send.flags] = flags;
    this.#used = offset + length;
    this.#rows++;
    // a receive batch flushes when it is done; anything else goes out at the end of this turn
    if (!this.#dispatching && this.#immediate === null) this.#immediate = setImmediate(this.#flushSoon);
  }

  /** Sends everything queued (sendmmsg per socket); failures become `error` events. */
  flush(): void {
    const rows = this.#rows;
    if (rows === 0) return;
    this.#rows = 0;
    this.#used = 0;
    const errors = this.addon.flush(rows);
    if (errors > 0) this.#dispatchErrors(errors);
  }

  readonly #flushSoon = (): void => {
    this.#immediate = null;
    this.flush();
  };

  /** A batch from the addon: every datagram to its socket's handler, then the sends they made. */
  readonly #onBatch = (buffer: Buffer, count: number): void => {
    this.#dispatching = true;
    let failure: unknown = NONE;
    this.#next = 0;
    while (this.#next < count) {
      try {
        this.#deliver(buffer, count);
      } catch (err) {
        // one handler's throw: the other datagrams still go; it is rethrown afterwards
        if (failure === NONE) failure = err;
      }
    }
    this.#dispatching = false;
    this.flush();
    if (failure !== NONE) throw failure;
  };

  /** The row `#deliver` goes on from (after a handler threw). */
  #next = 0;

  #deliver(buffer: Buffer, count: number): void {
    const meta = this.recvMeta;
    const info = this.#info;
    let id = -1;
    let socket: NativeDatagramSocket | undefined;
    for (let i = this.#next; i < count; i++) {
      this.#next = i + 1;
      const row = i * Recv.words;
      const sid = meta[row]!;
      if (sid !== id) {
        id = sid;
        socket = this.sockets.get(sid);
      }
      // looked up per datagram: a handler may close its socket mid-batch
      const handler = socket?.handler ?? null;
      if (handler === null) continue;
      const offset = meta[row + Recv.offset]!;
      const flags = meta[row + Recv.flags]!;
      const address =
        (flags & RecvFlag.v6) !== 0 ? ipv6Name(meta, row + Recv.addr) : ipv4Name(meta[row + Recv.addr]!);
      info.localAddress =
        (flags & RecvFlag.local) === 0
          ? null
          : (flags & RecvFlag.localV6) !== 0
            ? ipv6Name(meta, row + Recv.local)
            : ipv4Name(meta[row + Recv.local]!);
      info.ecn = (flags >> RecvFlag.ecnShift) & 3;
      info.segment = meta[row + Recv.segment]!;
      if ((flags & RecvFlag.orig) !== 0) {
        info.originalAddress =
          (flags & RecvFlag.origV6) !== 0
            ? ipv6Name(meta, row + Recv.orig)
            : ipv4Name(meta[row + Recv.orig]!);
        info.originalPort = meta[row + Recv.origPort]!;
      } else if (info.originalAddress !== null) {
        info.originalAddress = null;
        info.originalPort = 0;
      }
      handler(
        buffer.subarray(offset, offset + meta[row + Recv.length]!),
        address,
        meta[row + Recv.port]!,
        info,
      );
    }
  }

  readonly #onErrors = (count: number): void => this.#dispatchErrors(count);

  /** Reads the error rows first (a handler may flush, which reuses them), then reports each. */
  #dispatchErrors(count: number): void {
    const meta = this.errorMeta;
    const reports: {
      socket: NativeDatagramSocket;
      kind: number;
      errno: number;
      address: string | undefined;
      port: number;
    }[] = [];
    for (let i = 0; i < count; i++) {
      const row = i * ErrorRow.words;
      const socket = this.sockets.get(meta[row + ErrorRow.id]!);
      if (socket === undefined) continue;
      const port = meta[row + ErrorRow.port]!;
      const address =
        port === 0 && meta[row + ErrorRow.addr]! === 0
          ? undefined
          : (meta[row + ErrorRow.flags]! & 1) !== 0
            ? ipv6Name(meta, row + ErrorRow.addr)
            : ipv4Name(meta[row + ErrorRow.addr]!);
      reports.push({
        socket,
        kind: meta[row + ErrorRow.kind]!,
        errno: meta[row + ErrorRow.errno]!,
        address,
        port,
      });
    }
    for (const r of reports) r.socket.report(r.kind, r.errno, r.address, r.port);
  }
}

let io: NativeDatagramIO | null | undefined;

/** The thread's native I/O; throws ERR_DATAGRAM_NATIVE_UNAVAILABLE (with the reason) where it does not load. */
function requireIO(): NativeDatagramIO {
  const ready = nativeDatagramIO();
  if (ready !== null) return ready;
  const reason = loadDatagramAddon();
  throw Object.assign(
    new Error(
      `wirelayer's native datagram sockets are not available: ${reason.ok ? 'unknown' : reason.reason}`,
    ),
    { code: 'ERR_DATAGRAM_NATIVE_UNAVAILABLE' },
  );
}

/** The thread's native I/O, or null (with the reason) where the addon does not load. */
export function nativeDatagramIO(): NativeDatagramIO | null {
  if (io !== undefined) return io;
  const loaded = loadDatagramAddon();
  io = loaded.ok ? new NativeDatagramIO(loaded.exports as UdpAddon) : null;
  return io;
}

/** Whether native datagram sockets can be opened here (Linux, the addon built and loadable). */
export function nativeDatagramAvailable(): boolean {
  return nativeDatagramIO() !== null;
}

/** A socket of the native addon (see the file comment). */
export class NativeDatagramSocket extends EventEmitter implements DatagramSocket {
  readonly backend = 'native' as const;
  /** The receive handler; null once closed. */
  handler: DatagramHandler | null = null;
  #unreachable: UnreachableHandler | null = null;
  readonly #io: NativeDatagramIO;
  readonly #id: number;
  #connected = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #final: DatagramSocketStats | null = null;
  readonly #statsOut = new Float64Array(STATS_FIELDS.length);

  private constructor(
    io: NativeDatagramIO,
    id: number,
    readonly family: 4 | 6,
  ) {
    super();
    this.#io = io;
    this.#id = id;
    io.sockets.set(id, this);
  }

  /** Opens, binds (and connects) a native socket; throws node:dgram-shaped errors. */
  static open(options: DatagramSocketOptions): NativeDatagramSocket {
    const io = requireIO();
    const addon = io.addon;
    const id = addon.open(options.family);
    if (id < 0) throw systemError(id, 'socket');
    const socket = new NativeDatagramSocket(io, id, options.family);
    try {
      const address = options.address ?? (options.family === 6 ? '::' : '0.0.0.0');
      const port = options.port ?? 0;
      const flags =
        (options.reuseAddr ? BindFlag.reuseAddr : 0) |
        (options.ipv6Only ? BindFlag.ipv6Only : 0) |
        (options.reusePort ? BindFlag.reusePort : 0) |
        (options.transparent ? BindFlag.transparent : 0);
      socket.#check(addon.bind(id, address, port, flags), 'bind', address, port);
      if (options.recvBufferSize !== undefined) socket.setRecvBufferSize(options.recvBufferSize);
      if (options.sendBufferSize !== undefined) socket.setSendBufferSize(options.sendBufferSize);
      if (options.packetInfo) socket.#check(addon.setOption(id, SocketOption.packetInfo, 1), 'setsockopt');
      if (options.ecn) socket.#check(addon.setOption(id, SocketOption.recvEcn, 1), 'setsockopt');
      if (options.originalDestination)
        socket.#check(addon.setOption(id, SocketOption.originalDestination, 1), 'setsockopt');
      if (options.maxDatagramSize !== undefined)
        socket.#check(addon.setOption(id, SocketOption.maxDatagram, options.maxDatagramSize), 'setsockopt');
      const to = options.connect;
      if (to !== undefined) {
        socket.#check(addon.connect(id, to.address, to.port), 'connect', to.address, to.port);
        socket.#connected = true;
      }
    } catch (err) {
      socket.#shut();
      throw err;
    }
    return socket;
  }

  /**
   * Takes a bound UDP socket made elsewhere (a worker's share of a SO_REUSEPORT group, inherited
   * from the primary that bound it): receive buffer, send buffer and packet info as `open` sets
   * them; the fd is closed with the socket (and on failure).
   */
  static adopt(
    fd: number,
    options: Pick<DatagramSocketOptions, 'recvBufferSize' | 'sendBufferSize' | 'packetInfo'> = {},
  ): NativeDatagramSocket {
    const io = requireIO();
    const addon = io.addon;
    const id = addon.adopt(fd);
    if (id < 0) throw systemError(id, 'adopt');
    const bound = addon.localAddress(id);
    const family = typeof bound !== 'number' && bound[0].includes(':') ? 6 : 4;
    const socket = new NativeDatagramSocket(io, id, family);
    try {
      if (typeof bound === 'number') socket.#check(bound, 'getsockname');
      if (options.recvBufferSize !== undefined) socket.setRecvBufferSize(options.recvBufferSize);
      if (options.sendBufferSize !== undefined) socket.setSendBufferSize(options.sendBufferSize);
      if (options.packetInfo) socket.#check(addon.setOption(id, SocketOption.packetInfo, 1), 'setsockopt');
    } catch (err) {
      socket.#shut();
      throw err;
    }
    return socket;
  }

  #check(result: number, syscall: string, address?: string, port?: number): void {
    if (result < 0) throw systemError(result, syscall, address, port);
  }

  get connected(): boolean {
    return this.#connected;
  }

  get closed(): boolean {
    return this.#closed;
  }

  onMessage(handler: DatagramHandler | null): void {
    if (!this.#closed) this.handler = handler;
  }

  inject(datagram: Buffer, address: string, port: number): void {
    this.handler?.(datagram, address, port, NO_RECEIVE_INFO);
  }

  onUnreachable(handler: UnreachableHandler | null): void {
    this.#unreachable = handler;
  }

  send(datagram: Uint8Array, port?: number, address?: string, from?: string | null): void {
    if (this.#closed) return;
    const io = this.#io;
    let dest: Peer | null = null;
    if (address !== undefined && !this.#connected) {
      dest = io.peer(address);
      if (dest === null || (dest[PEER_FAMILY] === 6 && this.family === 4) || !(port! > 0 && port! < 65536)) {
        this.#later(systemError(-22, 'send', address, port));
        return;
      }
    }
    if (datagram.byteLength > 65535) {
      this.#later(systemError(-90, 'send', address, port));
      return;
    }
    io.enqueue(this.#id, datagram, port ?? 0, dest, from ? io.peer(from) : null);
  }

  flush(): void {
    this.#io.flush();
  }

  /** An error found before the kernel saw the datagram: an `error` event, later (as dgram's). */
  #later(error: Error): void {
    process.nextTick(() => this.emit('error', error));
  }

  /** A failure the addon reported (called by the I/O's dispatch). */
  report(kind: number, errno: number, address: string | undefined, port: number): void {
    if (this.#closed) return;
    if (kind === ErrorKind.icmp && !this.#connected) {
      // an unconnected socket: the peer it concerns, never an error of the socket itself
      this.#unreachable?.(systemError(errno, 'recvmsg', address, port), address ?? '', port);
      return;
    }
    // a connected socket's ICMP error is what node:dgram reports as a failed recvmsg
    const syscall = kind === ErrorKind.send ? 'send' : 'recvmsg';
    this.emit(
      'error',
      kind === ErrorKind.send ? systemError(errno, syscall, address, port) : systemError(errno, syscall),
    );
  }

  address(): DatagramAddress {
    const a = this.#io.addon.localAddress(this.#id);
    if (typeof a === 'number') throw systemError(a, 'getsockname');
    return { address: a[0], family: this.family === 6 ? 'IPv6' : 'IPv4', port: a[1] };
  }

  remoteAddress(): DatagramAddress {
    const a = this.#connected ? this.#io.addon.remoteAddress(this.#id) : -107;
    if (typeof a === 'number') {
      throw Object.assign(new Error('Not connected'), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
    }
    return { address: a[0], family: this.family === 6 ? 'IPv6' : 'IPv4', port: a[1] };
  }

  #setBuffer(option: number, size: number, which: string): void {
    const r = this.#io.addon.setOption(this.#id, option, size);
    if (r < 0) {
      // node:dgram's error for it
      throw Object.assign(new Error(`Could not set buffer size: ${systemError(r, which).message}`), {
        code: 'ERR_SOCKET_BUFFER_SIZE',
        cause: systemError(r, which),
      });
    }
  }

  setRecvBufferSize(size: number): void {
    this.#setBuffer(SocketOption.recvBuffer, size, 'uv_recv_buffer_size');
  }

  setSendBufferSize(size: number): void {
    this.#setBuffer(SocketOption.sendBuffer, size, 'uv_send_buffer_size');
  }

  getRecvBufferSize(): number {
    return Math.max(0, this.#io.addon.getOption(this.#id, SocketOption.recvBuffer));
  }

  getSendBufferSize(): number {
    return Math.max(0, this.#io.addon.getOption(this.#id, SocketOption.sendBuffer));
  }

  ref(): this {
    if (!this.#closed) this.#io.addon.ref(this.#id, true);
    return this;
  }

  unref(): this {
    if (!this.#closed) this.#io.addon.ref(this.#id, false);
    return this;
  }

  get stats(): DatagramSocketStats {
    if (this.#final !== null) return { ...this.#final };
    const out = this.#statsOut;
    if (!this.#io.addon.stats(this.#id, out)) return emptyDatagramStats();
    const stats = emptyDatagramStats();
    for (let i = 0; i < STATS_FIELDS.length; i++) stats[STATS_FIELDS[i]!] = out[i]!;
    return stats;
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      // what this turn queued goes first, as a dgram send() before close() does
      this.#io.flush();
      this.#final = this.stats;
      this.#shut();
      process.nextTick(() => {
        this.emit('close');
        resolve();
      });
    });
    return this.#closing;
  }

  #shut(): void {
    this.#closed = true;
    this.handler = null;
    this.#io.sockets.delete(this.#id);
    this.#io.addon.close(this.#id);
  }
}
