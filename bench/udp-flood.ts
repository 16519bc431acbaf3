/**
 * `wirelayer bench udp-flood`: a hash-collision flood against our UDP relay (issue 11).
 *
 * The flood: 10,000 sources 127.A.B.123, all on one source port (Linux routes all of 127/8 to
 * the loopback interface, so each is a socket bound to an address of its own). Under the flow
 * table's old key (the address's last three characters and the port) they all shared one bucket,
 * and each of their datagrams walked a chain of up to 10,000 flows. The flood first opens a flow
 * per source, then sends round robin at a fixed rate (5,000 a second by default); the echo server
 * does not answer it (a spoofing attacker's sources get no answers either).
 *
 * Measured: one legitimate flow's round trips per second through the relay (the C load
 * generator, a window of 64 in flight) with the flood running, beside the same run with the
 * flood's flows idle in the table, and beside a second relay of the same kind left empty (trials
 * interleaved, ratios paired by round). The flood's CPU cost per datagram is measured with the
 * flood alone. The same for the minimal node:dgram relay of `bench/udp-relays.ts` (a Map keyed by
 * strings, which V8 hashes with a seed): what a flood of that volume costs any relay, so the
 * difference is what our table adds. Relays are pinned to one CPU, the C peers and the flooder
 * to the other, as in `bench/udp.ts`. Goal: ours at most 25 % slower with the flood.
 *
 * Beside it, in this process: `FlowTable.find()` over 10,000 peers built to collide under the old
 * key, against the old table (its key and unbounded chain, reproduced here), and against 10,000
 * peers that collide under nothing.
 */
import type { ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { type FlowEntry, FlowTable } from '../src/transport/udp/flow-table.js';
import { median, pairedRatio, type Row } from './report.js';
import {
  hasCommand,
  here,
  lines,
  type RelayKind,
  type RunningRelay,
  startPeers,
  startProgram,
  startRelay,
  stopProgram,
} from './udp.js';
import { buildCPeer } from './udp-cpeer.js';

export interface UdpFloodBenchOptions {
  /** Flooding sources (flows in the table); default 10,000. */
  sources?: number;
  /**
   * Flood datagrams a second while it runs; default 5,000: a rate whose sheer volume costs any
   * relay (ours or the baseline, each forwarding it upstream) well under a tenth of a core, so
   * that what a slowdown shows is the table, not the volume.
   */
  floodRate?: number;
  /** The legitimate flow's datagram size; default 64. */
  size?: number;
  /** Its datagrams in flight; default 64. */
  window?: number;
  /** Measured time per trial; default 1000 ms. */
  durationMs?: number;
  /** Unmeasured time before each trial; default 200 ms. */
  warmupMs?: number;
  /** Time per lookup measurement of the microbench (best of three); default 300 ms. */
  lookupMs?: number;
  /** Trials per condition (medians are reported); default 5. */
  rounds?: number;
  /** Relays to flood, each in turn; default ours and the node:dgram baseline. */
  relays?: readonly RelayKind[];
  progress?: (line: string) => void;
}

/** The flood generator (`udp-peer.ts flood`), one command line at a time. */
class Flooder {
  private constructor(
    private readonly child: ChildProcess,
    private readonly next: (timeoutMs: number) => Promise<string>,
    /** The source port every flooding socket shares. */
    readonly sourcePort: number,
  ) {}

  static async start(port: number, sources: number, cpu: number | null): Promise<Flooder> {
    const child = startProgram(
      process.execPath,
      [here('./udp-peer.js'), 'flood', String(port), String(sources)],
      cpu,
    );
    const next = lines(child);
    const [ok, sourcePort] = (await next(30_000)).split(' ');
    if (ok !== 'ok') throw new Error(`flood generator: ${ok} ${sourcePort}`);
    return new Flooder(child, next, Number(sourcePort));
  }

  async call(command: string, timeoutMs = 30_000): Promise<string[]> {
    this.child.stdin!.write(`${command}\n`);
    const answer = (await this.next(timeoutMs)).split(' ');
    if (answer[0] !== 'ok') throw new Error(`flood generator: ${answer.join(' ')}`);
    return answer.slice(1);
  }

  async stop(): Promise<void> {
    this.child.stdin!.end();
    await stopProgram(this.child);
  }
}

/** 10,000 peers on one port that all shared one bucket under the old key: *.*.*.123. */
function collidingPeers(count: number): FlowEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    address: `127.${1 + (i >> 8)}.${i & 255}.123`,
    port: 40_000,
    lastSeen: 0,
    nextInBucket: null,
    older: null,
    newer: null,
  }));
}

/** The old key (before issue 11): the address's last three characters and the port. */
function oldKey(address: string, port: number): number {
  const n = address.length;
  const tail = address.charCodeAt(n - 1) + 31 * address.charCodeAt(n - 2) + 961 * address.charCodeAt(n - 3);
  return (tail & 0x3fff) * 65536 + port;
}

/** The old table's lookup structure: the old key, chains without a bound. */
class OldFlowIndex {
  readonly #buckets = new Map<number, FlowEntry>();

  insert(entry: FlowEntry): void {
    const key = oldKey(entry.address, entry.port);
    entry.nextInBucket = this.#buckets.get(key) ?? null;
    this.#buckets.set(key, entry);
  }

  find(address: string, port: number): FlowEntry | undefined {
    let entry = this.#buckets.get(oldKey(address, port));
    while (entry !== undefined && (entry.port !== port || entry.address !== address)) {
      entry = entry.nextInBucket ?? undefined;
    }
    return entry;
  }
}

/** Lookups a second of every peer in turn, best of a few runs of at least `ms` each. */
function lookupRate(
  find: (address: string, port: number) => FlowEntry | undefined,
  peers: FlowEntry[],
  ms: number,
): number {
  let best = 0;
  for (let run = 0; run < 3; run++) {
    let done = 0;
    const start = performance.now();
    let elapsed = 0;
    do {
      for (const p of peers) {
        if (find(p.address, p.port) !== p) throw new Error('lookup missed');
        done++;
        // the old table is slow: look at the clock within a pass too
        if ((done & 255) === 0 && performance.now() - start > ms) break;
      }
      elapsed = performance.now() - start;
    } while (elapsed < ms);
    best = Math.max(best, done / (elapsed / 1000));
  }
  return best;
}

/** The lookup microbench: new key vs old at 10,000 colliding peers, and vs peers that do not collide. */
function lookupRows(count: number, ms: number): Row[] {
  const colliding = collidingPeers(count);
  const table = new FlowTable<FlowEntry>();
  for (const p of colliding) table.insert(p);
  const spread = Array.from({ length: count }, (_, i) => ({
    ...colliding[i]!,
    address: `10.${(i * 7919) & 255}.${(i * 104_729) & 255}.${i & 255}`,
    port: 1024 + ((i * 31) % 60_000),
    nextInBucket: null,
  }));
  const spreadTable = new FlowTable<FlowEntry>();
  for (const p of spread) spreadTable.insert(p);
  const old = new OldFlowIndex();
  const oldPeers = collidingPeers(count);
  for (const p of oldPeers) old.insert(p);
  const newRate = lookupRate((a, p) => table.find(a, p), colliding, ms);
  const spreadRate = lookupRate((a, p) => spreadTable.find(a, p), spread, ms);
  const oldRate = lookupRate((a, p) => old.find(a, p), oldPeers, ms);
  const n = count.toLocaleString('en-US');
  return [
    {
      name: `flow lookup, ${n} peers colliding under the old key: new key`,
      value: newRate,
      unit: 'lookups/s',
      baseline: oldRate,
      baselineName: 'old key, same peers',
      ratio: newRate / oldRate,
    },
    {
      name: `flow lookup, new key: ${n} peers colliding under the old key`,
      value: newRate,
      unit: 'lookups/s',
      baseline: spreadRate,
      baselineName: `${n} peers spread`,
      ratio: newRate / spreadRate,
    },
  ];
}

/** How long the flood runs alone each round, to measure what it costs the relay. */
const FLOOD_ONLY_MS = 500;

/** What one relay did: the legitimate flow's rates in each condition, and our relay's counters. */
interface RelayUnderFlood {
  empty: number[];
  quiet: number[];
  flooded: number[];
  /** The relay's CPU time per flood datagram with no other traffic, µs, a figure per round. */
  floodCpuUs: number[];
  /** Flow-table entries compared per datagram received during the flood trials (ours only). */
  probesPerDatagram: number | null;
  bucketFull: number | null;
}

/** Runs the flood bench (about 60 s with the defaults); rows with ratios. */
export async function runUdpFloodBench(options: UdpFloodBenchOptions = {}): Promise<Row[]> {
  const sources = options.sources ?? 10_000;
  const floodRate = options.floodRate ?? 5000;
  const size = options.size ?? 64;
  const window = options.window ?? 64;
  const durationMs = options.durationMs ?? 1000;
  const warmupMs = options.warmupMs ?? 200;
  const rounds = options.rounds ?? 5;
  const relays = options.relays ?? (['wirelayer', 'node'] as const);
  const progress = options.progress ?? (() => undefined);
  const peerKind = buildCPeer() === null ? 'node' : 'c';
  const pinned = availableParallelism() >= 2 && hasCommand('taskset');
  const relayCpu = pinned ? 1 : null;
  const peerCpu = pinned ? 0 : null;
  progress(
    `bench udp-flood: ${sources} sources, ${floodRate} datagrams/s; the legitimate flow: ${size} B, window ${window}; ` +
      `${peerKind === 'c' ? 'C' : 'Node'} peers, Node flooder; ` +
      `${rounds} x ${durationMs} ms per condition${pinned ? '; relays on CPU 1, peers and flood on CPU 0' : ''}`,
  );
  const stops: (() => Promise<void>)[] = [];
  const results = new Map<RelayKind, RelayUnderFlood>();
  try {
    const peers = await startPeers(peerKind, peerCpu);
    stops.push(() => peers.stop());
    const { echoPort, load } = peers;
    await load.call({ cmd: 'flows', count: 1 });

    for (const kind of relays) {
      // two relays of the kind: one the flood fills, one left empty, measured in turn
      const relay: RunningRelay = await startRelay(kind, echoPort, relayCpu);
      stops.push(() => relay.stop());
      const clean: RunningRelay = await startRelay(kind, echoPort, relayCpu);
      stops.push(() => clean.stop());
      const trial = async (target: RunningRelay): Promise<number> => {
        const { primed = 0 } = await load.call({
          cmd: 'prime',
          port: target.port,
          flows: 1,
          timeoutMs: 10_000,
        });
        if (primed !== 1) throw new Error(`the ${kind} relay does not answer`);
        const reply = await load.call({
          cmd: 'run',
          port: target.port,
          flows: 1,
          size,
          window,
          warmupMs,
          durationMs,
        });
        return (reply.roundTrips ?? 0) / ((reply.elapsedMs ?? durationMs) / 1000);
      };
      const result: RelayUnderFlood = {
        empty: [],
        quiet: [],
        flooded: [],
        floodCpuUs: [],
        probesPerDatagram: null,
        bucketFull: null,
      };
      results.set(kind, result);

      const flooder = await Flooder.start(relay.port, sources, peerCpu);
      stops.push(() => flooder.stop());
      // one datagram per source opens its flow; our relay's count tells when all are open (the
      // baseline's cannot: it gets a second pass, as ours does when the kernel dropped some)
      for (let attempt = 0; attempt < 5; attempt++) {
        await flooder.call('prime 5000', 60_000);
        const deadline = performance.now() + 10_000;
        let flows = 0;
        do {
          await new Promise((r) => setTimeout(r, 100));
          flows = (await relay.stats())?.flows ?? 0;
        } while (kind === 'wirelayer' && flows < sources && performance.now() < deadline);
        if (kind === 'wirelayer') progress(`  ${kind}, flood flows open: ${flows}/${sources}`);
        if (attempt > 0 && (kind !== 'wirelayer' || flows >= sources)) break;
      }
      let floodDatagrams = 0;
      let floodProbes = 0;
      const conditions = ['empty', 'quiet', 'flood'] as const;
      for (let round = 0; round < rounds; round++) {
        for (let c = 0; c < conditions.length; c++) {
          const condition = conditions[(c + round) % conditions.length]!;
          if (condition === 'empty') {
            result.empty.push(await trial(clean));
            continue;
          }
          if (condition === 'quiet') {
            result.quiet.push(await trial(relay));
            continue;
          }
          // the flood alone first: what each of its datagrams costs the relay (schedstat)
          const cpuBefore = relay.cpuMs();
          await flooder.call(`on ${floodRate}`);
          await new Promise((r) => setTimeout(r, FLOOD_ONLY_MS));
          const [sent = '0'] = await flooder.call('off');
          const cpuAfter = relay.cpuMs();
          if (cpuBefore !== null && cpuAfter !== null && Number(sent) > 0) {
            result.floodCpuUs.push(((cpuAfter - cpuBefore) * 1000) / Number(sent));
          }
          const before = await relay.stats();
          await flooder.call(`on ${floodRate}`);
          result.flooded.push(await trial(relay));
          await flooder.call('off');
          const after = await relay.stats();
          if (before !== null && after !== null) {
            floodDatagrams += after.datagramsIn - before.datagramsIn;
            floodProbes += after.lookupProbes - before.lookupProbes;
          }
        }
        progress(
          `  ${kind}, round ${round + 1}/${rounds}: empty relay ${Math.round(result.empty.at(-1)!)}, ` +
            `quiet ${Math.round(result.quiet.at(-1)!)}, flood ${Math.round(result.flooded.at(-1)!)} rt/s; ` +
            `the flood alone: ${result.floodCpuUs.at(-1)?.toFixed(1) ?? 'n/a'} µs CPU per datagram`,
        );
      }
      const stats = await relay.stats();
      result.bucketFull = stats?.bucketFull ?? null;
      result.probesPerDatagram = floodDatagrams > 0 ? floodProbes / floodDatagrams : null;
      for (const stop of stops.splice(-3).reverse()) await stop();
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }

  const n = sources.toLocaleString('en-US');
  const rows: Row[] = [];
  for (const [kind, r] of results) {
    const name = kind === 'wirelayer' ? 'wirelayer relay' : `${kind} relay (baseline)`;
    rows.push({
      name: `${name}: a legitimate flow (${size} B, window ${window}) under a flood from ${n} sources *.*.*.123 on one port, ${floodRate.toLocaleString('en-US')} datagrams/s`,
      value: median(r.flooded),
      unit: 'rt/s',
      baseline: median(r.quiet),
      baselineName: 'no flood, same run',
      ratio: pairedRatio(r.flooded, r.quiet),
    });
    rows.push({
      name: `${name}: the legitimate flow with the flood's ${n} flows idle in the table`,
      value: median(r.quiet),
      unit: 'rt/s',
      baseline: median(r.empty),
      baselineName: 'an empty relay, same run',
      ratio: pairedRatio(r.quiet, r.empty),
    });
    if (r.probesPerDatagram !== null) {
      rows.push({
        name: `${name}: flow-table entries compared per datagram during the flood (new peers refused: ${r.bucketFull})`,
        value: r.probesPerDatagram,
        unit: 'compares',
      });
    }
  }
  const ours = results.get('wirelayer');
  const node = results.get('node');
  if (ours && node && ours.floodCpuUs.length > 0 && node.floodCpuUs.length > 0) {
    rows.push({
      name: `relay CPU per flood datagram (the flood alone, ${n} flows), ours`,
      value: median(ours.floodCpuUs),
      unit: 'µs',
      baseline: median(node.floodCpuUs),
      baselineName: 'node relay',
      // for a cost, lower is better: the ratio is ours / baseline
      ratio: median(ours.floodCpuUs) / median(node.floodCpuUs),
    });
  }
  progress('  lookup microbench');
  return [...rows, ...lookupRows(sources, options.lookupMs ?? 300)];
}
