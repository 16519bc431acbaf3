import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { EventEmitter } from 'node:events';
import {
  type DatagramAddress,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramSocketOptions,
  type DatagramSocketStats,
  emptyDatagramStats,
  NO_RECEIVE_INFO,
  type UnreachableHandler,
} from './socket.js';

/**
 * Every address our sockets see is already an IP literal (resolved by the driver, or taken from
 * a received datagram), so the socket's lookup answers at once. `dgram` would otherwise call
 * `dns.lookup` for each unconnected `send()`, which defers every datagram by a `nextTick`.
 */
export function literalLookup(
  address: string,
  _options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** The info node:dgram can give: nothing beyond the sender. */
const NO_INFO = NO_RECEIVE_INFO;

/** A `node:dgram` socket behind the `DatagramSocket` interface (any platform). */
export class DgramDatagramSocket extends EventEmitter implements DatagramSocket {
  readonly backend = 'dgram' as const;
  readonly #socket: Socket;
  #handler: DatagramHandler | null = null;
  #connected = false;
  #closed = false;
  #whenClosed: Promise<void> | null = null;

  private constructor(
    socket: Socket,
    readonly family: 4 | 6,
  ) {
    super();
    this.#socket = socket;
    socket.on('message', (datagram: Buffer, rinfo: RemoteInfo) =>
      this.#handler?.(datagram, rinfo.address, rinfo.port, NO_INFO),
    );
    socket.on('error', (err: Error) => this.emit('error', err));
  }

  /** Binds (and connects) a dgram socket; rejects with dgram's error (`bind EADDRINUSE ...`). */
  static async open(options: DatagramSocketOptions): Promise<DgramDatagramSocket> {
    if (options.transparent || options.originalDestination || options.reusePort) {
      throw Object.assign(
        new Error('transparent and SO_REUSEPORT sockets need the native datagram socket (Linux)'),
        {
          code: 'ERR_DATAGRAM_NATIVE_ONLY',
        },
      );
    }
    const socket = createSocket({
      type: options.family === 6 ? 'udp6' : 'udp4',
      lookup: literalLookup,
      reuseAddr: options.reuseAddr,
      ipv6Only: options.ipv6Only,
      recvBufferSize: options.recvBufferSize,
      sendBufferSize: options.sendBufferSize,
    });
    const wrapped = new DgramDatagramSocket(socket, options.family);
    try {
      await new Promise<void>((resolve, reject) => {
        // with the literal lookup, bind and connect report synchronously: listen first
        socket.once('error', reject);
        socket.once('listening', () => {
          socket.off('error', reject);
          resolve();
        });
        socket.bind({
          address: options.address ?? (options.family === 6 ? '::' : '0.0.0.0'),
          port: options.port ?? 0,
        });
      });
      const to = options.connect;
      if (to !== undefined) {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.connect(to.port, to.address, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        wrapped.#connected = true;
      }
    } catch (err) {
      wrapped.#closed = true;
      try {
        socket.close();
      } catch {
        // never bound
      }
      throw err;
    }
    return wrapped;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The socket underneath, for what dgram offers beyond the interface (multicast, TTL). */
  get dgram(): Socket {
    return this.#socket;
  }

  onMessage(handler: DatagramHandler | null): void {
    this.#handler = handler;
  }

  inject(datagram: Buffer, address: string, port: number): void {
    this.#handler?.(datagram, address, port, NO_INFO);
  }

  onUnreachable(_handler: UnreachableHandler | null): void {
    // node:dgram never reports ICMP errors of an unconnected socket
  }

  send(datagram: Uint8Array, port?: number, address?: string): void {
    if (this.#closed) return;
    if (port === undefined || this.#connected) this.#socket.send(datagram);
    else this.#socket.send(datagram, port, address);
  }

  flush(): void {
    // node:dgram sends at once
  }

  address(): DatagramAddress {
    const a = this.#socket.address();
    return { address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', port: a.port };
  }

  remoteAddress(): DatagramAddress {
    const a = this.#socket.remoteAddress();
    return { address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', port: a.port };
  }

  setRecvBufferSize(size: number): void {
    this.#socket.setRecvBufferSize(size);
  }

  setSendBufferSize(size: number): void {
    this.#socket.setSendBufferSize(size);
  }

  getRecvBufferSize(): number {
    return this.#socket.getRecvBufferSize();
  }

  getSendBufferSize(): number {
    return this.#socket.getSendBufferSize();
  }

  ref(): this {
    this.#socket.ref();
    return this;
  }

  unref(): this {
    this.#socket.unref();
    return this;
  }

  get stats(): DatagramSocketStats {
    return emptyDatagramStats();
  }

  close(): Promise<void> {
    this.#whenClosed ??= new Promise<void>((resolve) => {
      this.#closed = true;
      this.#handler = null;
      try {
        this.#socket.close(() => {
          this.emit('close');
          resolve();
        });
      } catch {
        // already closed underneath
        this.emit('close');
        resolve();
      }
    });
    return this.#whenClosed;
  }
}
