/**
 * The layers a datagram flow runs, picked by its first datagram (`detectDatagram`): raw UDP,
 * DTLS or QUIC, each as its reverse mode runs it. Shared by the modes whose flows say nothing
 * of their protocol beforehand: a SOCKS5 association's destinations and transparent UDP.
 */
import type { DatagramSocket } from '../../transport/datagram/index.js';
import type { Scheme } from '../../transport/types.js';
import type { ProxyContext } from '../context.js';
import type { FlowMode } from '../modes.js';
import { startDtlsMode } from './dtls.js';
import { startQuicMode } from './quic.js';
import type { ModeServer } from './tcp.js';
import { startUdpMode } from './udp.js';

/** One choice: the scheme its flows are recorded with, and how its layers start over a socket. */
export interface DatagramLayer {
  readonly scheme: Scheme;
  start(ctx: ProxyContext, mode: FlowMode, socket: DatagramSocket): Promise<ModeServer>;
}

/** By `detectDatagram`'s answer. */
export const DATAGRAM_LAYERS: Readonly<Record<'raw' | 'dtls' | 'quic', DatagramLayer>> = {
  raw: { scheme: 'udp', start: startUdpMode },
  dtls: { scheme: 'dtls', start: startDtlsMode },
  quic: { scheme: 'quic', start: startQuicMode },
};
