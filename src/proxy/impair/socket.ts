/**
 * The seam between the impairer and the drivers: a `dgram` socket whose `send` goes through an
 * impairer. Every datagram driver (the UDP listener and connected sockets, the DTLS layer over
 * them, the QUIC endpoint) sends through its socket's `send(datagram[, port, address])`, so
 * replacing that one method on an impaired socket reaches every packet the proxy writes, the
 * listeners' stateless replies (HelloVerifyRequest, Retry) included, while the drivers' own
 * per-packet code stays as it is and a socket that is not impaired pays nothing.
 *
 * NAT rebinding is done here too: from time to time the datagrams toward the server leave from
 * a fresh socket (a new port, or another 127.x address), and what the server sends to any of
 * them is handed to the driver as if the original socket had received it, as a NAT would.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { DatagramSocket } from '../../transport/datagram/index.js';
import { createUdpSocket } from '../../transport/udp/socket.js';
import type { DatagramImpairer, ImpairCounters, Wire } from './impairer.js';

/** How a socket's source is changed toward its server. */
export interface RebindPlan {
  everyMs: number;
  /** Also a new 127.x address (IPv4 loopback peers only: ::1 is the only IPv6 loopback address). */
  address: boolean;
}

type SendArgs = [Uint8Array, number | undefined, string | undefined];

/**
 * What impairment needs of a socket: its `send`, which it replaces (native, node:dgram, or a
 * tunnel's: a SOCKS5 association's destination); a connected one (a server leg's) can be rebound.
 */
export type ImpairableSocket = DatagramSocket;

/** Rebound sockets kept receiving: the current one and the one before (late replies to the old port). */
const KEPT_SOCKETS = 2;

/**
 * Routes the socket's sends through `impairer` (all datagrams, whatever their destination) and,
 * with `rebind`, moves its source every `everyMs`. `counters.rebound` counts the moves. The
 * rebound sockets close with the socket.
 */
export function impairSocket(
  socket: ImpairableSocket,
  impairer: DatagramImpairer | null,
  rebind: RebindPlan | null,
  counters: ImpairCounters,
): void {
  // the two forms the drivers use
  const original = socket.send as (datagram: Uint8Array, port?: number, address?: string) => void;
  let current: ImpairableSocket | Socket = socket;
  let rebound: Socket[] = [];
  let due = false;
  let moves = 0;
  let timer: NodeJS.Timeout | undefined;

  const wire: Wire = {
    send(datagram, port, address) {
      try {
        if (current === socket) {
          original.call(socket, datagram, port, address);
          return;
        }
        // a rebound socket is not connected: it names the server the original is connected to
        if (port === undefined) {
          const remote = socket.remoteAddress();
          current.send(datagram, remote.port, remote.address);
        } else current.send(datagram, port, address as string);
      } catch {
        // the socket closed while the datagram was held: lost, as on a link that went down
      }
    },
  };

  const move = (): void => {
    due = false;
    let remote: { address: string; family: string };
    let local: string;
    // only a connected socket (a server leg's) can be rebound
    if (!socket.connected) return;
    try {
      remote = socket.remoteAddress();
      local = socket.address().address;
    } catch {
      return;
    }
    const family = isIP(remote.address) === 6 ? 6 : 4;
    const next = createUdpSocket(family);
    next.on('message', (msg: Buffer, rinfo: RemoteInfo) => socket.inject(msg, rinfo.address, rinfo.port));
    // ICMP errors and failed sends on a rebound source: its datagrams are lost, like any other
    next.on('error', () => undefined);
    moves++;
    const address =
      rebind?.address && family === 4 && remote.address.startsWith('127.')
        ? // 127.0.0.2 .. 127.0.0.254, never the address the server already knows
          `127.0.0.${2 + ((moves - 1) % 253)}`
        : local;
    next.bind({ address, port: 0 });
    current = next;
    rebound.push(next);
    if (rebound.length > KEPT_SOCKETS) {
      const old = rebound.shift()!;
      old.close();
    }
    counters.rebound++;
  };

  const send = (...args: unknown[]): void => {
    const [datagram, port, address] = args as SendArgs;
    // the drivers' forms: (datagram) on a connected socket, (datagram, port, address[, from])
    // otherwise; `from` (a wildcard listener's reply address) does not survive impairment: the
    // datagram leaves from the socket's default address. A callback is dgram's own use: untouched.
    if (typeof args[args.length - 1] === 'function') {
      Reflect.apply(original, socket, args);
      return;
    }
    if (due) move();
    if (impairer !== null) impairer.push(datagram, port, address, wire);
    else wire.send(datagram, port, address);
  };
  Object.defineProperty(socket, 'send', { value: send, configurable: true, writable: true });

  if (rebind !== null) {
    // the move itself happens on the next send, so the server sees the new source at once
    timer = setInterval(() => {
      due = true;
    }, rebind.everyMs);
    timer.unref();
  }
  socket.once('close', () => {
    clearInterval(timer);
    for (const s of rebound) s.close();
    rebound = [];
    current = socket;
  });
}
