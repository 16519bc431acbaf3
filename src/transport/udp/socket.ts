import { createSocket, type Socket } from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import type { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';

/** An IP literal and its family. */
export interface ResolvedHost {
  address: string;
  family: 4 | 6;
}

/** The host as an IP literal: as is if it is one, else the first address the resolver gives. */
export async function resolveHost(host: string): Promise<ResolvedHost> {
  const family = isIP(host);
  if (family === 4 || family === 6) return { address: host, family };
  const found = await lookup(host);
  return { address: found.address, family: found.family === 6 ? 6 : 4 };
}

/** Socket buffer sizes (SO_RCVBUF, SO_SNDBUF), as `dgram.createSocket` takes them. */
export interface SocketBufferOptions {
  recvBufferSize?: number;
  sendBufferSize?: number;
}

/**
 * Every address our sockets see is already an IP literal (resolved by `resolveHost`, or taken
 * from a received datagram), so the socket's lookup answers at once. `dgram` would otherwise call
 * `dns.lookup` for each unconnected `send()`, which defers every datagram by a `nextTick`.
 */
function literalLookup(
  address: string,
  _options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** A dgram socket of the family, with the literal lookup. */
export function createUdpSocket(family: 4 | 6, options: SocketBufferOptions = {}): Socket {
  return createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    lookup: literalLookup,
    recvBufferSize: options.recvBufferSize,
    sendBufferSize: options.sendBufferSize,
  });
}

/**
 * What a listener needs of a bound datagram socket: a `dgram.Socket` is one. A proxy hands its
 * listeners another kind where datagrams arrive inside a tunnel (a SOCKS5 association's
 * destination): `message` events (datagram, the peer as a `RemoteInfo`), `error` events, `send`
 * to a peer, `close`. Sends are fire and forget, as `dgram`'s without a callback.
 */
export interface DatagramSocket extends EventEmitter {
  /** The local address datagrams are received on. */
  address(): AddressInfo;
  send(datagram: Uint8Array, port: number, address: string): void;
  close(callback?: () => void): void;
}
