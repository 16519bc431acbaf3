import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { literalLookup } from '../datagram/dgram-socket.js';

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
 * A bare dgram socket of the family with the literal lookup: the socket setup of our relay on
 * node:dgram (`DgramDatagramSocket`), for baselines that must match it (bench/udp-relays.ts).
 */
export function createUdpSocket(family: 4 | 6, options: SocketBufferOptions = {}): Socket {
  return createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    lookup: literalLookup,
    recvBufferSize: options.recvBufferSize,
    sendBufferSize: options.sendBufferSize,
  });
}
