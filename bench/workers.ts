/**
 * Workers: the UDP relay (`wirelayer proxy --mode reverse:udp://...`) and QUIC handshakes
 * (`wirelayer listen quic://...`) with 1 worker (today's single process) and with 2 worker
 * processes sharing the port (`--workers 2`), side by side in the same run, rounds alternating.
 *
 * On a 2-core machine the load generator competes with the workers for the cores, so the rates
 * say little about scaling; what scales is the CPU each round trip and each handshake costs the
 * serving processes (primary and workers, summed from /proc/PID/schedstat): if 2 workers cost
 * the same per operation as 1, N workers on N free cores serve N times as much. Both figures
 * are reported, each beside the 1-worker run of the same round (paired ratios).
 *
 * UDP: the C peers of `bench udp` (echo server, batched load generator), 1000 flows so the
 * kernel's 4-tuple hash spreads them over the workers, 64-byte datagrams, a window of 64.
 * QUIC: `wirelayer load --handshakes` (a new connection per request, 8 at a time), as fast as
 * it goes, and at a fixed rate both sides sustain: CPU per handshake falls as a process gets
 * busier (fuller receive batches, fewer wake-ups per packet), so at one total rate each of two
 * workers, half as busy, pays more per handshake than one process does.
 * Both sides print `--json` records (with 2, the workers forward them to the primary, whose
 * share of the CPU is shown).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../src/certs/index.js';
import { median, pairedRatio } from './report.js';
import { here, processCpuMs, startPeers } from './udp.js';
import { buildCPeer } from './udp-cpeer.js';

/** Options of `runWorkersBench`. */
export interface WorkersBenchOptions {
  /** Rounds, each running both sides of both cases (default 3). */
  rounds?: number;
  /** Measured ms of each UDP trial (default 2000). */
  udpMs?: number;
  /** Seconds of each QUIC handshake trial (default 3). */
  quicSeconds?: number;
  /** UDP flows (default 1000). */
  flows?: number;
  progress?: (line: string) => void;
}

const HOST = '127.0.0.1';
/** Handshakes per second of the fixed-rate QUIC case: what 1 and 2 workers both sustain here. */
const FIXED_RATE = 250;
const SIDES = [1, 2] as const;
type Side = (typeof SIDES)[number];

/** A `wirelayer` serving process (and its workers), with its shared port. */
interface Served {
  readonly child: ChildProcess;
  readonly port: number;
  /** CPU of the primary and its workers so far, ms; and of the primary alone (with 1 worker: 0, it is the worker). */
  cpuMs(): number;
  primaryCpuMs(): number;
  stop(): Promise<void>;
}

const cli = (): string => here('../src/cli/main.js');

/** Starts `wirelayer ARGS` (with `--workers N` beyond 1) and reads its port and worker pids from stderr. */
async function serve(args: readonly string[], workers: Side): Promise<Served> {
  const child = spawn(
    process.execPath,
    [cli(), ...args, ...(workers > 1 ? ['--workers', String(workers)] : [])],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + 30_000;
  let match = stderr.match(/listening on \S+:\/\/\S+:(\d+)/);
  for (; match === null; match = stderr.match(/listening on \S+:\/\/\S+:(\d+)/)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`wirelayer ${args.join(' ')} did not start:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const pids = (stderr.match(/\(pids ([\d, ]+)\)/)?.[1] ?? '').split(', ').filter(Boolean).map(Number);
  const all = [child.pid!, ...pids];
  return {
    child,
    port: Number(match[1]),
    cpuMs: () => all.reduce((sum, pid) => sum + (processCpuMs(pid, false) ?? 0), 0),
    primaryCpuMs: () => (pids.length === 0 ? 0 : (processCpuMs(child.pid, false) ?? 0)),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      process.kill(child.pid!, 'SIGTERM');
      await exited;
    },
  };
}

/** `wirelayer load --handshakes` for `seconds` (at `rate` per second, else as fast as 8 at a time go): handshakes done. */
async function handshakeLoad(port: number, seconds: number, rate: number | null): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      cli(),
      'load',
      `quic://${HOST}:${port}`,
      '--handshakes',
      '--connections',
      '8',
      '--duration',
      String(seconds),
      ...(rate === null ? [] : ['--rate', String(rate)]),
      '--insecure',
      '--sni',
      'localhost',
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  await once(child, 'exit');
  clearTimeout(timer);
  const summary = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; handshakes?: number })
    .find((r) => r.event === 'summary');
  return summary?.handshakes ?? 0;
}

interface Trials {
  rate: Record<Side, number[]>;
  cpu: Record<Side, number[]>;
  /** The primary's share of `cpu` (2 workers). */
  primary: number[];
}

const trials = (): Trials => ({ rate: { 1: [], 2: [] }, cpu: { 1: [], 2: [] }, primary: [] });

const fmt = (n: number, digits = 0): string =>
  digits === 0 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);

/** Runs both cases with 1 and 2 workers; the Markdown table. */
export async function runWorkersBench(options: WorkersBenchOptions = {}): Promise<string> {
  const rounds = options.rounds ?? 3;
  const udpMs = options.udpMs ?? 2000;
  const quicSeconds = options.quicSeconds ?? 3;
  const flows = options.flows ?? 1000;
  const progress = options.progress ?? (() => undefined);
  const peerKind = buildCPeer() === null ? 'node' : 'c';
  const dir = mkdtempSync(join(tmpdir(), 'wirelayer-bench-workers-'));
  const stops: (() => Promise<void>)[] = [];
  try {
    // a throwaway certificate: benchmarks ship in the package, test fixtures do not
    const leaf = CertificateAuthority.create().issue('localhost', { altNames: [HOST] });
    writeFileSync(join(dir, 'cert.pem'), leaf.certPem);
    writeFileSync(join(dir, 'key.pem'), leaf.keyPem);
    const peers = await startPeers(peerKind, null);
    stops.push(() => peers.stop());
    await peers.load.call({ cmd: 'flows', count: flows });
    const relays = new Map<Side, Served>();
    const listeners = new Map<Side, Served>();
    for (const side of SIDES) {
      // --json on both sides: the same records written (by the workers through the primary with 2)
      const relay = await serve(
        ['proxy', '--mode', `reverse:udp://${HOST}:${peers.echoPort}`, '--json'],
        side,
      );
      stops.push(() => relay.stop());
      relays.set(side, relay);
      const { primed = 0 } = await peers.load.call({
        cmd: 'prime',
        port: relay.port,
        flows,
        timeoutMs: 10_000,
      });
      if (primed !== flows) throw new Error(`the ${side}-worker relay answered ${primed} of ${flows} flows`);
      const listener = await serve(
        [
          'listen',
          `quic://${HOST}:0`,
          '--json',
          '--cert',
          join(dir, 'cert.pem'),
          '--key',
          join(dir, 'key.pem'),
        ],
        side,
      );
      stops.push(() => listener.stop());
      listeners.set(side, listener);
    }
    progress(
      `bench workers: ${rounds} rounds; UDP ${flows} flows x 64 B, window 64, ${udpMs} ms; QUIC handshakes ${quicSeconds} s, 8 at a time; ${peerKind === 'c' ? 'C' : 'Node'} UDP peers`,
    );
    const udp = trials();
    const quic = trials();
    const quicFixed = trials();
    for (let round = 0; round < rounds; round++) {
      const order: readonly Side[] = round % 2 === 0 ? SIDES : [2, 1];
      const line: string[] = [];
      for (const side of order) {
        const relay = relays.get(side)!;
        const before = relay.cpuMs();
        const primaryBefore = relay.primaryCpuMs();
        const reply = await peers.load.call({
          cmd: 'run',
          port: relay.port,
          flows,
          size: 64,
          window: 64,
          warmupMs: 200,
          durationMs: udpMs,
        });
        const cpu = relay.cpuMs() - before;
        const rate = (reply.roundTrips ?? 0) / ((reply.elapsedMs ?? udpMs) / 1000);
        udp.rate[side].push(rate);
        udp.cpu[side].push((cpu * 1000) / Math.max(1, reply.total ?? 0));
        if (side === 2)
          udp.primary.push(((relay.primaryCpuMs() - primaryBefore) * 1000) / Math.max(1, reply.total ?? 0));
        line.push(`udp ${side}w ${fmt(rate)} rt/s`);
      }
      for (const [t, rate] of [
        [quic, null],
        [quicFixed, FIXED_RATE],
      ] as const) {
        for (const side of order) {
          const listener = listeners.get(side)!;
          const before = listener.cpuMs();
          const primaryBefore = listener.primaryCpuMs();
          const done = await handshakeLoad(listener.port, quicSeconds, rate);
          const cpu = listener.cpuMs() - before;
          t.rate[side].push(done / quicSeconds);
          t.cpu[side].push(cpu / Math.max(1, done));
          if (side === 2) t.primary.push((listener.primaryCpuMs() - primaryBefore) / Math.max(1, done));
          line.push(`quic${rate === null ? '' : ` at ${rate}/s`} ${side}w ${fmt(done / quicSeconds)} hs/s`);
        }
      }
      progress(`  round ${round + 1}/${rounds}: ${line.join(', ')}`);
    }
    const row = (name: string, t: Trials, unit: string, cpuUnit: string, cpuDigits: number): string[] => [
      `| ${name}: rate | ${fmt(median(t.rate[1]))} ${unit} | ${fmt(median(t.rate[2]))} ${unit} | ${pairedRatio(t.rate[2], t.rate[1]).toFixed(2)}x |`,
      `| ${name}: CPU of the serving processes per operation | ${fmt(median(t.cpu[1]), cpuDigits)} ${cpuUnit} | ${fmt(median(t.cpu[2]), cpuDigits)} ${cpuUnit} (primary ${fmt(median(t.primary), cpuDigits)}) | ${pairedRatio(t.cpu[2], t.cpu[1]).toFixed(2)}x |`,
    ];
    return [
      '| case | 1 worker (one process, today) | 2 workers | 2 workers / 1 |',
      '|---|---:|---:|---:|',
      ...row(`UDP relay, ${flows} flows, 64 B`, udp, 'rt/s', 'µs/rt', 1),
      ...row('QUIC handshakes, as fast as they go', quic, 'hs/s', 'ms/hs', 2),
      ...row(`QUIC handshakes at ${FIXED_RATE}/s`, quicFixed, 'hs/s', 'ms/hs', 2),
      '',
      `Medians of ${rounds} rounds, ratios the medians of the per-round ratios (the sides of a round ran ` +
        `back to back); CPU: time on CPU of the primary and its workers (schedstat) per round trip or ` +
        `handshake, the load generators not counted (they share this ${availableParallelism()}-core machine's cores ` +
        `with the workers, which caps the rates); node ${process.version}.`,
    ].join('\n');
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
