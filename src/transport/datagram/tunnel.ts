/**
 * A datagram socket whose datagrams travel inside something else (a SOCKS5 association's
 * destination in the proxy, a client's SOCKS5 wrapper in tests): a listener or a QUIC endpoint
 * runs over it as over a bound socket. Subclasses say where sends go (`send`), what address
 * they stand for (`address`) and how they end (`closeTunnel`); what arrives goes to `received`.
 */
import { EventEmitter } from 'node:events';
import {
  type DatagramAddress,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramSocketStats,
  emptyDatagramStats,
  NO_RECEIVE_INFO,
  type UnreachableHandler,
} from './socket.js';

/** A `DatagramSocket` over a tunnel (see the file comment). */
export abstract class TunnelSocket extends EventEmitter implements DatagramSocket {
  readonly backend = 'tunnel' as const;
  readonly connected = false;
  #handler: DatagramHandler | null = null;
  #closed = false;
  #whenClosed: Promise<void> | null = null;
  readonly stats: DatagramSocketStats = emptyDatagramStats();

  constructor(readonly family: 4 | 6) {
    super();
  }

  get closed(): boolean {
    return this.#closed;
  }

  abstract send(datagram: Uint8Array, port?: number, address?: string): void;
  abstract address(): DatagramAddress;
  /** The tunnel's own teardown, once, when the socket closes. */
  protected abstract closeTunnel(): void;

  /** A datagram that came out of the tunnel from `address`:`port`: to the receive handler. */
  protected received(datagram: Buffer, address: string, port: number): void {
    if (this.#closed) return;
    this.stats.received++;
    this.stats.receivedBytes += datagram.length;
    this.#handler?.(datagram, address, port, NO_RECEIVE_INFO);
  }

  onMessage(handler: DatagramHandler | null): void {
    this.#handler = handler;
  }

  inject(datagram: Buffer, address: string, port: number): void {
    this.received(datagram, address, port);
  }

  onUnreachable(_handler: UnreachableHandler | null): void {
    // a tunnel reports no ICMP errors
  }

  flush(): void {
    // sends go into the tunnel at once
  }

  remoteAddress(): DatagramAddress {
    throw Object.assign(new Error('Not connected'), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
  }

  setRecvBufferSize(_size: number): void {}
  setSendBufferSize(_size: number): void {}
  getRecvBufferSize(): number {
    return 0;
  }
  getSendBufferSize(): number {
    return 0;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  close(): Promise<void> {
    this.#whenClosed ??= new Promise<void>((resolve) => {
      this.#closed = true;
      this.#handler = null;
      this.closeTunnel();
      setImmediate(() => {
        this.emit('close');
        resolve();
      });
    });
    return this.#whenClosed;
  }
}
