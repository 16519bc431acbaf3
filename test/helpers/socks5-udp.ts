/**
 * A small SOCKS5 UDP client for the tests (no packaged command-line client speaks UDP
 * ASSOCIATE): the control connection (greeting, optional RFC 1929 credentials, the request),
 * then datagrams wrapped in RFC 1928 section 7 headers. Written apart from src/proxy/socks5 on
 * purpose: a test of our wire code with our wire code would prove nothing.
 *
 * Three ways to use an association: `send`/`datagrams` by hand; `socket()`, a datagram socket
 * whose `send(data, port, host)` goes through the association (what our QUIC client takes as its
 * `socket`); `forward(host, port)`, a local UDP port whose datagrams go to `host:port` through
 * the association, for programs that only speak UDP to an address (gnutls-cli).
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { type AddressInfo, connect, isIP, type Socket } from 'node:net';
import { type DatagramAddress, TunnelSocket } from '../../src/transport/datagram/index.js';

/** A datagram that came back through the association, unwrapped. */
export interface Socks5Datagram {
  host: string;
  port: number;
  data: Buffer;
}

/** `ATYP ADDR PORT`: IP literals as such, anything else as a domain name. */
export function encodeSocksAddress(host: string, port: number): Buffer {
  let head: Buffer;
  if (isIP(host) === 4) head = Buffer.from([1, ...host.split('.').map(Number)]);
  else if (isIP(host) === 6) {
    // expand '::' and write the eight groups
    const [l = '', r = ''] = host.split('::');
    const left = l === '' ? [] : l.split(':');
    const right = r === '' ? [] : r.split(':');
    const groups = host.includes('::')
      ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
      : left;
    head = Buffer.alloc(17);
    head[0] = 4;
    for (const [i, g] of groups.entries()) head.writeUInt16BE(Number.parseInt(g, 16), 1 + 2 * i);
  } else head = Buffer.concat([Buffer.from([3, Buffer.byteLength(host)]), Buffer.from(host)]);
  const port2 = Buffer.alloc(2);
  port2.writeUInt16BE(port);
  return Buffer.concat([head, port2]);
}

/** RSV RSV FRAG + address: a datagram's header. */
export function udpHeader(host: string, port: number, frag = 0): Buffer {
  return Buffer.concat([Buffer.from([0, 0, frag]), encodeSocksAddress(host, port)]);
}

/** The address at `offset` (ATYP first) and where it ends, or null if cut short. */
function decodeSocksAddress(buf: Buffer, offset: number): { host: string; port: number; end: number } | null {
  const atyp = buf[offset];
  let host: string;
  let end: number;
  if (atyp === 1) {
    end = offset + 5;
    host = [...buf.subarray(offset + 1, end)].join('.');
  } else if (atyp === 4) {
    end = offset + 17;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + 1 + 2 * i).toString(16));
    // uncompressed: every parser of IPv6 text reads it
    host = groups.join(':');
  } else if (atyp === 3) {
    end = offset + 2 + (buf[offset + 1] ?? 0);
    host = buf.subarray(offset + 2, end).toString();
  } else return null;
  if (buf.length < end + 2) return null;
  return { host, port: buf.readUInt16BE(end), end: end + 2 };
}

/** Reads exactly `n` bytes from a socket (bounded by the connection's end). */
async function readBytes(socket: Socket, n: number, pending: { buf: Buffer }): Promise<Buffer> {
  while (pending.buf.length < n) {
    const chunk = await Promise.race([
      once(socket, 'data').then(([c]) => c as Buffer),
      once(socket, 'close').then(() => null),
    ]);
    if (chunk === null)
      throw new Error(`the SOCKS5 server closed the connection (read ${pending.buf.length}/${n} bytes)`);
    pending.buf = Buffer.concat([pending.buf, chunk]);
  }
  const out = pending.buf.subarray(0, n);
  pending.buf = pending.buf.subarray(n);
  return out;
}

/** A reply (`VER REP RSV ATYP BND.ADDR BND.PORT`) off the control connection. */
async function readReply(
  socket: Socket,
  pending: { buf: Buffer },
): Promise<{ code: number; host: string; port: number }> {
  const head = await readBytes(socket, 5, pending);
  const rest = head[3] === 1 ? 5 : head[3] === 4 ? 17 : head[3] === 3 ? 2 + head[4]! : 0;
  const all = Buffer.concat([head, await readBytes(socket, rest, pending)]);
  const address = decodeSocksAddress(all, 3);
  return { code: all[1]!, host: address?.host ?? '', port: address?.port ?? 0 };
}

export interface Socks5ClientOptions {
  /** RFC 1929 credentials: offered (method 2) and sent when the server picks that method. */
  auth?: { username: string; password: string };
  /** DST.ADDR and DST.PORT of the request (default 0.0.0.0:0). */
  request?: { host: string; port: number };
  /** Where our UDP socket binds (default 127.0.0.1). */
  udpHost?: string;
}

/** Opens a control connection and runs the handshake up to (not including) the request. */
export async function socks5Handshake(
  host: string,
  port: number,
  auth?: { username: string; password: string },
): Promise<{ control: Socket; pending: { buf: Buffer } }> {
  const control = connect(port, host);
  control.on('error', () => undefined);
  await once(control, 'connect');
  const pending = { buf: Buffer.alloc(0) };
  control.write(Buffer.from(auth ? [5, 2, 0, 2] : [5, 1, 0]));
  const [, method] = await readBytes(control, 2, pending);
  if (method === 2) {
    if (!auth) throw new Error('the server asks for credentials');
    const u = Buffer.from(auth.username);
    const p = Buffer.from(auth.password);
    control.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    const [, status] = await readBytes(control, 2, pending);
    if (status !== 0) throw Object.assign(new Error('SOCKS5 authentication failed'), { status });
  } else if (method !== 0) {
    throw Object.assign(new Error(`SOCKS5 method refused (${method})`), { method });
  }
  return { control, pending };
}

/** A UDP association of ours: the control connection, our UDP socket, the relay's address. */
export class Socks5Association extends EventEmitter {
  /** BND.ADDR and BND.PORT of the reply, as sent. */
  readonly bound: { host: string; port: number };
  /** Where we send (BND, with 0.0.0.0 read as the proxy's host). */
  readonly relay: { host: string; port: number };
  readonly received: Socks5Datagram[] = [];

  private constructor(
    readonly control: Socket,
    readonly udp: UdpSocket,
    bound: { host: string; port: number },
    proxyHost: string,
  ) {
    super();
    this.bound = bound;
    this.relay = {
      host: bound.host === '0.0.0.0' || bound.host === '::' ? proxyHost : bound.host,
      port: bound.port,
    };
    udp.on('message', (msg: Buffer) => {
      const address = msg.length >= 4 ? decodeSocksAddress(msg, 3) : null;
      if (address === null) return;
      const d = { host: address.host, port: address.port, data: msg.subarray(address.end) };
      this.received.push(d);
      this.emit('datagram', d);
    });
  }

  /** UDP ASSOCIATE through the proxy at `host:port`; rejects with the reply code if refused. */
  static async open(
    host: string,
    port: number,
    options: Socks5ClientOptions = {},
  ): Promise<Socks5Association> {
    const { control, pending } = await socks5Handshake(host, port, options.auth);
    const udpHost = options.udpHost ?? '127.0.0.1';
    const udp = createSocket(isIP(udpHost) === 6 ? 'udp6' : 'udp4');
    udp.on('error', () => undefined);
    udp.bind(0, udpHost);
    await once(udp, 'listening');
    const request = options.request ?? { host: '0.0.0.0', port: 0 };
    control.write(Buffer.concat([Buffer.from([5, 3, 0]), encodeSocksAddress(request.host, request.port)]));
    const r = await readReply(control, pending);
    if (r.code !== 0) {
      control.destroy();
      udp.close();
      throw Object.assign(new Error(`UDP ASSOCIATE refused: reply ${r.code}`), { reply: r.code });
    }
    return new Socks5Association(control, udp, { host: r.host, port: r.port }, host);
  }

  /** Our UDP socket's address. */
  get local(): AddressInfo {
    return this.udp.address();
  }

  /** Sends `data` to `host:port` through the association. */
  send(host: string, port: number, data: Uint8Array): void {
    this.sendRaw(Buffer.concat([udpHeader(host, port), data]));
  }

  /** Sends bytes to the relay as they are (bad headers, fragments). */
  sendRaw(bytes: Uint8Array): void {
    this.udp.send(bytes, this.relay.port, this.relay.host);
  }

  /** The next datagram that comes back (bounded). */
  next(timeoutMs = 5000): Promise<Socks5Datagram> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('datagram', on);
        reject(new Error(`no datagram through the association within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (d: Socks5Datagram): void => {
        clearTimeout(timer);
        resolve(d);
      };
      this.once('datagram', on);
    });
  }

  /**
   * A datagram socket through the association (what `quic.connect({ socket })` takes): `send`
   * wraps for the address it is given; replies come as `message` events from their header's
   * address. Closing it leaves the association open.
   */
  socket(): Socks5DatagramSocket {
    return new Socks5DatagramSocket(this);
  }

  /**
   * A local UDP port (on 127.0.0.1) that relays through the association: what a program sends
   * there goes to `host:port`, and what comes back goes to the program.
   */
  async forward(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
    const local = createSocket('udp4');
    local.on('error', () => undefined);
    local.bind(0, '127.0.0.1');
    await once(local, 'listening');
    let app: RemoteInfo | null = null;
    local.on('message', (msg, rinfo) => {
      app = rinfo;
      this.send(host, port, msg);
    });
    const back = (d: Socks5Datagram): void => {
      if (app !== null) local.send(d.data, app.port, app.address);
    };
    this.on('datagram', back);
    return {
      port: local.address().port,
      close: async () => {
        this.off('datagram', back);
        await new Promise<void>((r) => local.close(() => r()));
      },
    };
  }

  /** Closes the control connection (which ends the association at the proxy) and our socket. */
  async close(): Promise<void> {
    if (!this.control.destroyed) {
      const closed = once(this.control, 'close');
      this.control.end();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      this.control.destroy();
    }
    await new Promise<void>((r) => {
      try {
        this.udp.close(() => r());
      } catch {
        r();
      }
    });
  }
}

/** See `Socks5Association.socket()`. */
export class Socks5DatagramSocket extends TunnelSocket {
  constructor(private readonly association: Socks5Association) {
    super(association.local.family === 'IPv6' ? 6 : 4);
    association.on('datagram', this.#onDatagram);
  }

  readonly #onDatagram = (d: Socks5Datagram): void => this.received(d.data, d.host, d.port);

  address(): DatagramAddress {
    const local = this.association.local;
    return { address: local.address, family: local.family === 'IPv6' ? 'IPv6' : 'IPv4', port: local.port };
  }

  send(datagram: Uint8Array, port?: number, host?: string): void {
    if (!this.closed && port !== undefined && host !== undefined) this.association.send(host, port, datagram);
  }

  protected closeTunnel(): void {
    this.association.off('datagram', this.#onDatagram);
  }
}
