/**
 * `wirelayer bench socks5`: round trips per second through a SOCKS5 UDP association beside the
 * reverse UDP relay, measured in the same run, on loopback (the issue's goal: >= 0.9x).
 *
 * The setup of `bench udp`: each path a proxy process pinned to one CPU, the C echo server and
 * load generator on the other; the same sizes, flows and window for both. The load generator
 * opens one association per flow (`socks` command of the C peers) and sends each datagram
 * behind its 10-byte header; the echo server sees the same data either way. Every round runs
 * both paths next to each other, in an order that alternates; ratios are medians of the
 * per-round ratios (the machine is shared: paired ratios drift less than rates).
 */
import type { ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { ProxyStats } from '../src/proxy/context.js';
import { median, pairedRatio } from './report.js';
import {
  firstMessage,
  hasCommand,
  here,
  processCpuMs,
  type RelayTrialOptions,
  startNode,
  startPeers,
  stopChild,
} from './udp.js';
import { buildCPeer } from './udp-cpeer.js';

export type Socks5BenchPath = 'reverse' | 'socks5';
const PATHS: readonly Socks5BenchPath[] = ['reverse', 'socks5'];

/** The SOCKS5 benchmark's settings: the relay trial's (data sizes without the SOCKS5 header). */
export type Socks5BenchOptions = RelayTrialOptions;

export interface Socks5BenchCase {
  size: number;
  flows: number;
  /** Median round trips per second, by path. */
  rate: Record<Socks5BenchPath, number>;
  /** Median of the per-round ratios socks5 / reverse. */
  ratio: number;
  /** CPU time of the proxy process per round trip, µs (median; null without /proc). */
  cpuUs: Record<Socks5BenchPath, number | null>;
}

interface RelayProcess {
  child: ChildProcess;
  port: number;
}

async function startPath(path: Socks5BenchPath, echoPort: number, cpu: number | null): Promise<RelayProcess> {
  const child = startNode(here('./socks5-relays.js'), [path, String(echoPort)], cpu);
  const { port } = await firstMessage<{ port: number }>(child);
  return { child, port };
}

async function statsOf(relay: RelayProcess): Promise<ProxyStats> {
  const reply = firstMessage<{ stats: ProxyStats }>(relay.child);
  relay.child.send({ cmd: 'stats' });
  return (await reply).stats;
}

/** What a run measured, and how. */
export interface Socks5BenchResult {
  cases: Socks5BenchCase[];
  rounds: number;
  durationMs: number;
  window: number;
  pinned: boolean;
  /** The SOCKS5 proxy's counters at the end (its drops must all be 0). */
  socks5: ProxyStats['socks5'];
}

/** Runs the bench and formats it as a Markdown table. */
export async function runSocks5Bench(options: Socks5BenchOptions = {}): Promise<string> {
  const result = await measureSocks5(options);
  return formatSocks5Table(result.cases, result);
}

/** Measures both paths (about 30 s with the defaults); rejects without the C peers. */
export async function measureSocks5(options: Socks5BenchOptions = {}): Promise<Socks5BenchResult> {
  const sizes = options.sizes ?? [64, 1200];
  const flowCounts = options.flows ?? [1, 100];
  const window = options.window ?? 64;
  const durationMs = options.durationMs ?? 600;
  const warmupMs = options.warmupMs ?? 150;
  const rounds = options.rounds ?? 5;
  const progress = options.progress ?? (() => undefined);
  if (buildCPeer() === null) throw new Error('bench socks5 needs the C peers: no C compiler (cc) works here');
  const pinned = availableParallelism() >= 2 && hasCommand('taskset');
  const relayCpu = pinned ? 1 : null;
  const peerCpu = pinned ? 0 : null;
  progress(
    `bench socks5: sizes ${sizes.join(', ')} B; flows ${flowCounts.join(', ')}; window ${window}; ` +
      `${rounds} x ${durationMs} ms per path and case${pinned ? '; proxies on CPU 1, peers on CPU 0' : ''}`,
  );
  const stops: (() => Promise<void>)[] = [];
  try {
    const peers = await startPeers('c', peerCpu);
    stops.push(() => peers.stop());
    const { echoPort, load } = peers;
    await load.call({ cmd: 'flows', count: Math.max(...flowCounts) });
    const relays = {} as Record<Socks5BenchPath, RelayProcess>;
    for (const path of PATHS) {
      relays[path] = await startPath(path, echoPort, relayCpu);
      stops.push(() => stopChild(relays[path].child));
    }
    const cases: Socks5BenchCase[] = [];
    for (const flows of flowCounts) {
      // the associations of these flows (the previous ones end with their control connections)
      const { associated } = await load.call({ cmd: 'socks', port: relays.socks5.port, echoPort, flows });
      if (associated !== flows) throw new Error(`only ${associated} of ${flows} associations opened`);
      for (const path of PATHS) {
        const { primed } = await load.call({
          cmd: 'prime',
          port: path === 'socks5' ? 0 : relays.reverse.port,
          flows,
          timeoutMs: 10_000,
        });
        if (primed !== flows) throw new Error(`${path}: only ${primed} of ${flows} flows answered`);
      }
      for (const size of sizes) {
        const trials: Record<Socks5BenchPath, number[]> = { reverse: [], socks5: [] };
        const cpu: Record<Socks5BenchPath, number[]> = { reverse: [], socks5: [] };
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? PATHS : [...PATHS].reverse();
          for (const path of order) {
            const relay = relays[path];
            const before = processCpuMs(relay.child.pid, false);
            const reply = await load.call({
              cmd: 'run',
              port: path === 'socks5' ? 0 : relay.port,
              flows,
              size,
              window,
              warmupMs,
              durationMs,
            });
            const after = processCpuMs(relay.child.pid, false);
            trials[path].push((reply.roundTrips ?? 0) / ((reply.elapsedMs ?? durationMs) / 1000));
            if (before !== null && after !== null && reply.total)
              cpu[path].push(((after - before) * 1000) / reply.total);
          }
          progress(
            `  round ${round + 1}/${rounds}  ${size} B x ${flows} flows: ` +
              PATHS.map((p) => `${p} ${Math.round(trials[p].at(-1)!)}/s`).join(', '),
          );
        }
        cases.push({
          size,
          flows,
          rate: { reverse: median(trials.reverse), socks5: median(trials.socks5) },
          ratio: pairedRatio(trials.socks5, trials.reverse),
          cpuUs: {
            reverse: cpu.reverse.length > 0 ? median(cpu.reverse) : null,
            socks5: cpu.socks5.length > 0 ? median(cpu.socks5) : null,
          },
        });
      }
    }
    const socks = (await statsOf(relays.socks5)).socks5;
    progress(
      `  socks5 proxy: ${socks.associations} associations, drops: frag ${socks.fragDrops}, foreign ${socks.foreignDrops}, malformed ${socks.malformedDrops}, pending ${socks.pendingDrops}`,
    );
    return { cases, rounds, durationMs, window, pinned, socks5: socks };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

const fmt = (n: number | null): string =>
  n === null ? 'n/a' : n >= 100 ? String(Math.round(n)) : n.toFixed(1);

/** The cases as a Markdown table: rates, the paired ratio, CPU per round trip. */
export function formatSocks5Table(
  cases: readonly Socks5BenchCase[],
  run: { rounds: number; durationMs: number; window: number; pinned: boolean },
): string {
  const head = [
    'size',
    'flows',
    'reverse rt/s',
    'socks5 rt/s',
    'socks5 / reverse',
    'reverse CPU µs/rt',
    'socks5 CPU µs/rt',
  ];
  const rows = cases.map((c) => [
    `${c.size} B`,
    String(c.flows),
    fmt(c.rate.reverse),
    fmt(c.rate.socks5),
    `${c.ratio.toFixed(2)}x`,
    fmt(c.cpuUs.reverse),
    fmt(c.cpuUs.socks5),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`,
    ...rows.map(line),
    '',
    `Round trips per second through a UDP ASSOCIATE (data behind a 10-byte header, one association ` +
      `per flow) beside reverse:udp, both a Proxy without addons; medians of ${run.rounds} trials of ` +
      `${run.durationMs} ms, ratios the medians of per-round ratios; CPU: the proxy process's time on ` +
      `CPU per round trip; window ${run.window}, C peers, node ${process.version}` +
      `${run.pinned ? ', proxies pinned to their own CPU' : ''}.`,
  ].join('\n');
}
