/**
 * `wirelayer bench proxy-protocol`: what the PROXY protocol v2 costs on the UDP relay path.
 *
 * Macro: round trips per second and CPU per round trip through our UdpRelay with the option off
 * and on, in the same run, trials interleaved and ratios paired by round. On: the C load
 * generator sends each datagram behind a v2 header naming its flow (a balancer's), the relay
 * takes it off, opens the flow as the header's client, and puts its own header (the client's
 * address) in front of each datagram to the C echo server, whose echoes (header included) come
 * back to the load generator through the balancer's route. Off: the same relay without the
 * option, each datagram 28 bytes longer, so that both carry the same bytes on every hop and the
 * ratio is the processing alone. Relays pinned to one CPU, the C peers to the other, as in
 * `bench/udp.ts`.
 *
 * Micro (in this process): the per-datagram work a `ProxyProtocolSocket` adds to a listener's
 * socket, a datagram in and its reply out, over a socket that does nothing (so only our code is
 * timed), beside the same handler on the bare socket.
 */
import { availableParallelism } from 'node:os';
import type { DatagramAddress } from '../src/transport/datagram/index.js';
import { TunnelSocket } from '../src/transport/datagram/tunnel.js';
import { ProxyProtocolSocket, udpProxyHeader } from '../src/transport/udp/proxy-protocol.js';
import { median, pairedRatio, type Row } from './report.js';
import { hasCommand, type RelayTrialOptions, startPeers, startRelay } from './udp.js';
import { buildCPeer } from './udp-cpeer.js';

/** Bytes of the v2 header of UDP over IPv4 (what the "off" runs add to each datagram). */
const HEADER_V4 = 28;

export interface ProxyProtocolBenchOptions extends RelayTrialOptions {
  /** Time per side of each micro round; default 300 ms. */
  microMs?: number;
}

/** A socket whose sends go nowhere: the micro bench times only what sits above it. */
class NullSocket extends TunnelSocket {
  sent = 0;
  send(): void {
    this.sent++;
  }
  address(): DatagramAddress {
    return { address: '127.0.0.1', family: 'IPv4', port: 4433 };
  }
  protected closeTunnel(): void {}
  /** A datagram from the wire. */
  deliver(datagram: Buffer, address: string, port: number): void {
    this.received(datagram, address, port);
  }
}

/** ns per datagram (in, and its reply out) through `socket`'s handler, `n` datagrams cycled. */
function timeEcho(
  inner: NullSocket,
  top: TunnelSocket | ProxyProtocolSocket,
  datagrams: readonly Buffer[],
  ms: number,
): number {
  top.onMessage((d, address, port) => top.send(d, port, address));
  const from = '127.0.0.1';
  let count = 0;
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    for (let i = 0; i < datagrams.length; i++) inner.deliver(datagrams[i]!, from, 40_000);
    count += datagrams.length;
    now = performance.now();
  }
  return ((now - start) * 1e6) / count;
}

/**
 * What the socket adds per datagram in + reply out (paired by round), beside what the relay spends
 * per round trip with the option off (`relayCpuUs`: its listening socket sees one datagram in and
 * one out per round trip, as here).
 */
function microRows(rounds: number, ms: number, relayCpuUs: number | null): Row[] {
  const clients = 1000;
  const to = ['127.0.0.1', 4433] as const;
  const payload = Buffer.alloc(64, 0x61);
  // a thousand clients behind one balancer (10.0.x.y, each its own port), and the same datagrams bare
  const headed = Array.from({ length: clients }, (_, i) =>
    Buffer.concat([udpProxyHeader([`10.0.${i >> 8}.${i & 255}`, 1024 + i], to), payload]),
  );
  const bare = headed.map(() => Buffer.concat([Buffer.alloc(HEADER_V4, 0x62), payload]));
  const on: number[] = [];
  const off: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const plain = new NullSocket(4);
    const under = new NullSocket(4);
    const wrapped = new ProxyProtocolSocket(under, { trusted: ['127.0.0.1'] });
    // warm both paths, then time them in an order that alternates by round
    timeEcho(plain, plain, bare, 50);
    timeEcho(under, wrapped, headed, 50);
    const sides: [() => void, () => void] = [
      () => off.push(timeEcho(plain, plain, bare, ms)),
      () => on.push(timeEcho(under, wrapped, headed, ms)),
    ];
    if (r % 2) sides.reverse();
    for (const side of sides) side();
    if (wrapped.proxyStats.proxied === 0 || wrapped.routes !== clients)
      throw new Error('bench proxy-protocol: the wrapped socket did not take the headers');
    void wrapped.close();
    void plain.close();
  }
  const added = median(on.map((v, i) => v - off[i]!));
  return [
    {
      name: `PROXY v2 accepted on a listener's socket, ${clients} clients: time added per datagram in and its reply out (in process, over a socket that sends nowhere; ${median(off).toFixed(1)} ns without)`,
      value: added,
      unit: 'ns',
      ...(relayCpuUs === null
        ? {}
        : {
            baseline: relayCpuUs * 1000,
            baselineName: 'the relay CPU per round trip, option off, 64 B x 1000 flows',
            ratio: added / (relayCpuUs * 1000),
          }),
    },
  ];
}

/** Runs both parts; about 40 s with the defaults. */
export async function runProxyProtocolBench(options: ProxyProtocolBenchOptions = {}): Promise<Row[]> {
  const sizes = options.sizes ?? [64, 1200];
  const flowCounts = options.flows ?? [1, 1000];
  const window = options.window ?? 64;
  const durationMs = options.durationMs ?? 600;
  const warmupMs = options.warmupMs ?? 150;
  const rounds = options.rounds ?? 5;
  const say = options.progress ?? (() => undefined);
  if (buildCPeer() === null)
    throw new Error('bench proxy-protocol needs the C peers: no C compiler (cc) works here');
  const pinned = availableParallelism() >= 2 && hasCommand('taskset');
  const relayCpu = pinned ? 1 : null;
  const peerCpu = pinned ? 0 : null;
  say(
    `bench proxy-protocol: sizes ${sizes.join(', ')} B; flows ${flowCounts.join(', ')}; window ${window}; ` +
      `${rounds} x ${durationMs} ms per side and case${pinned ? '; relays on CPU 1, peers on CPU 0' : ''}`,
  );
  const rows: Row[] = [];
  /** The relay's CPU per round trip with the option off, 64 B (the micro's yardstick). */
  let relayCpuUs: number | null = null;
  const children: { stop(): Promise<void> }[] = [];
  try {
    const peers = await startPeers('c', peerCpu);
    children.push(peers);
    const { echoPort, load } = peers;
    await load.call({ cmd: 'flows', count: Math.max(...flowCounts) });
    const off = await startRelay('wirelayer', echoPort, relayCpu);
    children.push(off);
    const on = await startRelay('wirelayer-pp', echoPort, relayCpu);
    children.push(on);
    say(`  UdpRelay on the ${off.backend} datagram socket`);
    for (const flows of flowCounts) {
      for (const [relay, proxyV2] of [
        [off, false],
        [on, true],
      ] as const) {
        const { primed = 0 } = await load.call({
          cmd: 'prime',
          port: relay.port,
          flows,
          timeoutMs: 10_000,
          proxyV2,
        });
        if (primed !== flows) throw new Error(`${relay.kind}: only ${primed} of ${flows} flows answered`);
      }
    }
    for (const flows of flowCounts) {
      for (const size of sizes) {
        const rate = { off: [] as number[], on: [] as number[] };
        const cpu = { off: [] as number[], on: [] as number[] };
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const);
          for (const side of order) {
            const relay = side === 'on' ? on : off;
            const before = relay.cpuMs();
            const reply = await load.call({
              cmd: 'run',
              port: relay.port,
              flows,
              // the same bytes on every hop: the header's 28 are payload when the option is off
              size: side === 'on' ? size : size + HEADER_V4,
              window,
              warmupMs,
              durationMs,
              proxyV2: side === 'on',
            });
            const after = relay.cpuMs();
            rate[side].push((reply.roundTrips ?? 0) / ((reply.elapsedMs ?? durationMs) / 1000));
            if (before !== null && after !== null && reply.total)
              cpu[side].push(((after - before) * 1000) / reply.total);
          }
          say(
            `  round ${round + 1}/${rounds}  ${size} B x ${flows} flows: off ${Math.round(rate.off.at(-1)!)}/s, on ${Math.round(rate.on.at(-1)!)}/s`,
          );
        }
        if (size === 64 && cpu.off.length > 0 && (relayCpuUs === null || flows > 1))
          relayCpuUs = median(cpu.off);
        const stats = await on.stats();
        const counted = stats?.proxyProtocol;
        if (!counted || counted.proxied === 0 || counted.malformed + counted.missing > 0)
          throw new Error(
            `bench proxy-protocol: the relay did not take the headers: ${JSON.stringify(counted)}`,
          );
        rows.push({
          name: `UDP relay, ${size} B x ${flows} flow${flows === 1 ? '' : 's'}: PROXY v2 accepted and sent upstream, round trips`,
          value: median(rate.on),
          unit: 'rt/s',
          baseline: median(rate.off),
          baselineName: `off, ${size + HEADER_V4} B`,
          ratio: pairedRatio(rate.on, rate.off),
        });
        if (cpu.on.length === rounds && cpu.off.length === rounds)
          rows.push({
            name: `UDP relay, ${size} B x ${flows} flow${flows === 1 ? '' : 's'}: PROXY v2 accepted and sent upstream, relay CPU per round trip`,
            value: median(cpu.on),
            unit: 'µs',
            baseline: median(cpu.off),
            baselineName: `off, ${size + HEADER_V4} B`,
            ratio: pairedRatio(cpu.on, cpu.off),
          });
      }
    }
  } finally {
    for (const child of children.reverse()) await child.stop().catch(() => undefined);
  }
  say('  micro: a ProxyProtocolSocket in process');
  rows.push(...microRows(rounds, options.microMs ?? 300, relayCpuUs));
  return rows;
}
