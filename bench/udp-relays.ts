/**
 * The relays the UDP bench compares, each run in its own process (forked by `bench/udp.ts`):
 *
 *   node udp-relays.js wirelayer ECHO_PORT   our UdpRelay (src/proxy), on the socket WIRELAYER_DATAGRAM picks
 *   node udp-relays.js node ECHO_PORT        the baseline: a minimal node:dgram relay, our socket setup
 *   node udp-relays.js proxy ECHO_PORT       the Proxy's reverse:udp mode (UdpRelay with the proxy's bus)
 *   node udp-relays.js proxy-impaired ...    the same with an impairment that passes everything
 *   node udp-relays.js wirelayer-pp ...      our UdpRelay accepting PROXY v2 headers from 127.0.0.1 and
 *                                            putting one in front of every datagram upstream
 *
 * Each sends {port} (where clients send) to the parent once listening, answers {cmd: 'stats'}
 * with {stats} (ours: its counters; the baseline: null), and exits on disconnect.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { UdpRelay, type UdpRelayStats } from '../src/proxy/layers/udp.js';
import { Proxy as WirelayerProxy } from '../src/proxy/proxy.js';
import { DEFAULT_LISTENER_RECV_BUFFER } from '../src/transport/udp/listener.js';
import { createUdpSocket } from '../src/transport/udp/socket.js';

/** What the parent reads of our relay's counters. */
export type RelayStats = UdpRelayStats;

/** Datagrams a baseline flow holds while its upstream socket connects (ours: `DEFAULT_PENDING_LIMIT`). */
const PENDING_LIMIT = 64;

interface NodeRelayFlow {
  readonly upstream: Socket;
  /** Datagrams waiting for the connect; null once connected. */
  pending: Buffer[] | null;
}

/**
 * The baseline: a UDP relay written plainly, as a user of `node:dgram` would (one Map of
 * upstream sockets keyed by `${address}:${port}`), with exactly our relay's socket setup, so
 * the ratio shows what our code adds, not what the baseline forgot:
 *
 * - the listening socket: `udp4`, bound to 127.0.0.1, with the literal lookup (no `dns.lookup`
 *   and `nextTick` per reply sent) and a 2 MiB receive buffer (`DEFAULT_LISTENER_RECV_BUFFER`);
 * - one upstream socket per flow, connected to the upstream (sends carry no address, the
 *   kernel filters what it receives), with the literal lookup and default buffer sizes, bound
 *   implicitly to an ephemeral port;
 * - datagrams that arrive while the upstream connects are held (up to 64, as ours) and sent
 *   once it is connected.
 *
 * It builds its sockets with `createUdpSocket` (`dgram.createSocket` with those options), as our
 * relay does on node:dgram (`wirelayer-dgram`; `DgramDatagramSocket`).
 */
export function startNodeRelay(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<Socket> {
  const server = createUdpSocket(4, { recvBufferSize: DEFAULT_LISTENER_RECV_BUFFER });
  const flows = new Map<string, NodeRelayFlow>();
  const open = (key: string, rinfo: RemoteInfo): NodeRelayFlow => {
    const upstream = createUdpSocket(4);
    const flow: NodeRelayFlow = { upstream, pending: [] };
    upstream.on('message', (reply: Buffer) => server.send(reply, rinfo.port, rinfo.address));
    upstream.connect(upstreamPort, upstreamHost, () => {
      const pending = flow.pending ?? [];
      flow.pending = null;
      for (const datagram of pending) upstream.send(datagram);
    });
    flows.set(key, flow);
    return flow;
  };
  server.on('message', (message: Buffer, rinfo: RemoteInfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    const flow = flows.get(key) ?? open(key, rinfo);
    if (flow.pending === null) flow.upstream.send(message);
    else if (flow.pending.length < PENDING_LIMIT) flow.pending.push(message);
  });
  return new Promise((resolve) => server.bind(0, '127.0.0.1', () => resolve(server)));
}

async function main(kind: string, echoPort: number): Promise<void> {
  let port: number;
  let stop: () => void;
  let stats: () => RelayStats | null = () => null;
  let backend: string | null = null;
  if (kind === 'wirelayer' || kind === 'wirelayer-pp') {
    const relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echoPort },
      idleTimeout: 300_000,
      maxFlows: 100_000,
      ...(kind === 'wirelayer-pp'
        ? { proxyProtocol: { trusted: ['127.0.0.1'] }, proxyProtocolUpstream: true }
        : {}),
    });
    port = relay.address[1];
    backend = relay.listener.datagramBackend;
    stop = () => void relay.close();
    stats = () => relay.stats;
  } else if (kind === 'proxy' || kind === 'proxy-impaired') {
    const proxy = await WirelayerProxy.start({
      modes: [`reverse:udp://127.0.0.1:${echoPort}`],
      udpTimeout: 300_000,
      maxFlows: 100_000,
      // every datagram through the impairer, none touched (no datagram is over 65535 bytes)
      ...(kind === 'proxy-impaired' ? { impair: 'mtu=65535' } : {}),
    });
    port = proxy.listening[0]!.address[1];
    stop = () => void proxy.close();
  } else if (kind === 'node') {
    const server = await startNodeRelay(echoPort);
    port = server.address().port;
    stop = () => process.exit(0);
  } else {
    throw new Error(`unknown relay ${kind}`);
  }
  process.on('disconnect', stop);
  process.on('message', (message: { cmd?: string }) => {
    if (message.cmd === 'stats') process.send?.({ stats: stats() });
  });
  process.send?.({ port, backend });
}

if (process.argv[2] !== undefined) {
  main(process.argv[2], Number(process.argv[3])).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
