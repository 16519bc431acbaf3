/**
 * `wirelayer bench udp`: round trips per second through our UDP relay (on the native datagram
 * socket, and on node:dgram) beside a minimal `node:dgram` relay, socat, and the limit (no relay:
 * straight to the echo server), all measured in the same run, on loopback.
 *
 * Five processes: the relay under test, a UDP echo server (the far end), a load generator
 * keeping a window of datagrams in flight, and the idle relays waiting their turn. Where the
 * machine has two CPUs or more and `taskset` exists, the relays are pinned to one CPU and the
 * echo server and load generator to another, so the relay under test has a core to itself.
 * Each case (size x flows) runs every relay once per round, in an order rotated every round;
 * the table reports medians and ratios to the node baseline (the machine is shared: ratios
 * drift less than absolute rates).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, pairedRatio } from './report.js';
import { buildCPeer } from './udp-cpeer.js';
import type { LoadCommand, LoadReply } from './udp-peer.js';
import type { RelayStats } from './udp-relays.js';

/**
 * `wirelayer`: our relay on the default socket (native on Linux); `wirelayer-dgram`: the same on
 * node:dgram; `node`: the minimal node:dgram relay (the baseline of the ratios); `socat`;
 * `direct`: no relay, the load generator straight to the echo server (the limit). `proxy` (the
 * Proxy's reverse:udp mode, no impairment) and `proxy-impaired` (the same with an impairment that
 * lets everything through) are run by `bench intercept`, for the cost of impairment off and on;
 * `wirelayer-pp` (ours accepting PROXY v2 headers and sending them upstream) by `bench proxy-protocol`.
 */
export type RelayKind =
  | 'wirelayer'
  | 'wirelayer-dgram'
  | 'node'
  | 'socat'
  | 'direct'
  | 'proxy'
  | 'proxy-impaired'
  | 'wirelayer-pp';
export const RELAYS: readonly RelayKind[] = ['wirelayer', 'wirelayer-dgram', 'node', 'socat', 'direct'];

/** The trial settings every relay benchmark takes (the UDP relay's, SOCKS5's, PROXY v2's). */
export interface RelayTrialOptions {
  /** Datagram payload sizes; default [64, 1200]. */
  sizes?: readonly number[];
  /** Flow counts (client sockets, or clients named by headers); default [1, 1000] (SOCKS5: [1, 100]). */
  flows?: readonly number[];
  /** Datagrams in flight; default 64. */
  window?: number;
  /** Measured time per trial; default 600 ms. */
  durationMs?: number;
  /** Unmeasured time before each trial; default 150 ms. */
  warmupMs?: number;
  /** Trials per side and case (medians are reported); default 5. */
  rounds?: number;
  progress?: (line: string) => void;
}

export interface UdpBenchOptions extends RelayTrialOptions {
  /** Relays to run; default all (socat only where installed). */
  relays?: readonly RelayKind[];
  /** The echo server and load generator: in C where a compiler exists (default), or Node. */
  peers?: 'c' | 'node';
}

export interface UdpBenchCase {
  size: number;
  flows: number;
  /** Median round trips per second, by relay (null: the relay could not run this case). */
  rate: Partial<Record<RelayKind, number | null>>;
  /** Every trial's rate, by relay. */
  trials: Partial<Record<RelayKind, number[]>>;
  /** Windows refilled after a stall (lost datagrams), by relay, summed over trials. */
  stalls: Partial<Record<RelayKind, number>>;
  /**
   * Median over rounds of the relay's rate divided by the node relay's in the same round (runs
   * next to each other), by relay: paired, so load from elsewhere on the machine cancels out.
   */
  ratio: Partial<Record<RelayKind, number | null>>;
  /** Our relay's rate over socat's and over the direct path's, paired the same way. */
  wirelayerToSocat: number | null;
  wirelayerToDirect: number | null;
  /**
   * CPU time (user + system) the relay's processes spent per round trip, microseconds, median
   * over rounds (Linux; null elsewhere): less sensitive to other load than the rate.
   */
  cpuUs: Partial<Record<RelayKind, number | null>>;
  cpuTrials: Partial<Record<RelayKind, number[]>>;
}

export interface UdpBenchResult {
  cases: UdpBenchCase[];
  relays: RelayKind[];
  /** The socket our `wirelayer` relay ran on (`native`, or `dgram` where the addon did not load). */
  backend: string | null;
  pinned: boolean;
  peers: 'c' | 'node';
  window: number;
  durationMs: number;
  rounds: number;
  node: string;
}

export const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Starts a node script with an IPC channel, pinned to `cpu` when given. */
export function startNode(
  script: string,
  args: string[],
  cpu: number | null,
  env?: NodeJS.ProcessEnv,
): ChildProcess {
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
  const options = { stdio, env: env === undefined ? process.env : { ...process.env, ...env } };
  if (cpu === null) return spawn(process.execPath, [script, ...args], options);
  return spawn('taskset', ['-c', String(cpu), process.execPath, script, ...args], options);
}

export async function firstMessage<T>(child: ChildProcess, timeoutMs = 10_000): Promise<T> {
  const [message] = (await Promise.race([
    once(child, 'message'),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error('a bench process did not answer')), timeoutMs).unref(),
    ),
  ])) as [T];
  return message;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}

/** A relay process and the port clients send to. */
export interface RunningRelay {
  kind: RelayKind;
  port: number;
  /** The datagram socket our relay runs on (null for the others). */
  backend: string | null;
  /** CPU time of its processes so far, ms (null where /proc is not there). */
  cpuMs(): number | null;
  /** Our relay's counters (`UdpRelay.stats`); null for the other relays. */
  stats(): Promise<RelayStats | null>;
  stop(): Promise<void>;
}

/**
 * CPU time of the process `pid` (or, with `group`, of every process in its process group), ms,
 * from /proc/PID/schedstat (nanoseconds on CPU: precise, unlike the 10 ms ticks of
 * /proc/PID/stat, which round socat's many small children to nothing). Null without /proc.
 */
export function processCpuMs(pid: number | undefined, group: boolean): number | null {
  if (pid === undefined) return null;
  const onCpuMs = (statPid: string): number | null => {
    try {
      return Number(readFileSync(`/proc/${statPid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    } catch {
      return null;
    }
  };
  const pgrp = (statPid: string): number | null => {
    try {
      // after "pid (comm) ": state ppid pgrp ...
      return Number(readFileSync(`/proc/${statPid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
    } catch {
      return null;
    }
  };
  if (!group) return onCpuMs(String(pid));
  let total = 0;
  try {
    for (const entry of readdirSync('/proc')) {
      if (/^\d+$/.test(entry) && pgrp(entry) === pid) total += onCpuMs(entry) ?? 0;
    }
  } catch {
    return null;
  }
  return total;
}

export async function startRelay(
  kind: RelayKind,
  echoPort: number,
  cpu: number | null,
): Promise<RunningRelay> {
  if (kind === 'direct') {
    return {
      kind,
      port: echoPort,
      backend: null,
      cpuMs: () => null,
      stats: () => Promise.resolve(null),
      stop: () => Promise.resolve(),
    };
  }
  if (kind === 'socat') {
    const port = await freeUdpPort();
    const args = [
      '-T',
      '120',
      `UDP4-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`,
      `UDP4:127.0.0.1:${echoPort}`,
    ];
    // its own process group: socat forks a child per flow, and the whole group is stopped
    const child =
      cpu === null
        ? spawn('socat', args, { stdio: 'ignore', detached: true })
        : spawn('taskset', ['-c', String(cpu), 'socat', ...args], { stdio: 'ignore', detached: true });
    await new Promise((r) => setTimeout(r, 200));
    return {
      kind,
      port,
      backend: null,
      cpuMs: () => processCpuMs(child.pid, true),
      stats: () => Promise.resolve(null),
      async stop() {
        if (child.pid !== undefined && child.exitCode === null) {
          const exited = once(child, 'exit');
          process.kill(-child.pid, 'SIGTERM');
          await exited;
        }
      },
    };
  }
  const ours = kind === 'wirelayer' || kind === 'wirelayer-dgram' || kind === 'wirelayer-pp';
  const child = startNode(
    here('./udp-relays.js'),
    [kind === 'wirelayer-dgram' ? 'wirelayer' : kind, String(echoPort)],
    cpu,
    kind === 'wirelayer-dgram' ? { WIRELAYER_DATAGRAM: 'dgram' } : undefined,
  );
  const { port, backend } = await firstMessage<{ port: number; backend?: string }>(child);
  return {
    kind,
    port,
    backend: backend ?? null,
    cpuMs: () => processCpuMs(child.pid, false),
    async stats() {
      if (!ours) return null;
      const reply = firstMessage<{ stats: RelayStats }>(child);
      child.send({ cmd: 'stats' });
      return (await reply).stats;
    },
    stop: () => stopChild(child),
  };
}

/** The load generator, as an RPC. */
export interface LoadGenerator {
  call(command: LoadCommand, timeoutMs?: number): Promise<LoadReply & { ok: true }>;
  stop(): Promise<void>;
}

/** The Node load generator (`udp-peer.ts`), over IPC. */
class NodeLoadGenerator implements LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  static async start(cpu: number | null): Promise<NodeLoadGenerator> {
    const child = startNode(here('./udp-peer.js'), ['load'], cpu);
    await firstMessage(child);
    return new NodeLoadGenerator(child);
  }

  async call(command: LoadCommand, timeoutMs = 30_000): Promise<LoadReply & { ok: true }> {
    const reply = firstMessage<LoadReply>(this.child, timeoutMs);
    this.child.send(command);
    const answer = await reply;
    if (!answer.ok) throw new Error(answer.error);
    return answer;
  }

  async stop(): Promise<void> {
    if (this.child.connected) this.child.send({ cmd: 'exit' } satisfies LoadCommand);
    await stopChild(this.child);
  }
}

/** Starts a program, pinned to `cpu` when given. */
export function startProgram(binary: string, args: string[], cpu: number | null): ChildProcess {
  const stdio: ['pipe', 'pipe', 'inherit'] = ['pipe', 'pipe', 'inherit'];
  if (cpu === null) return spawn(binary, args, { stdio });
  return spawn('taskset', ['-c', String(cpu), binary, ...args], { stdio });
}

/** Reads a child's stdout line by line. */
export function lines(child: ChildProcess): (timeoutMs: number) => Promise<string> {
  const queue: string[] = [];
  let waiting: ((line: string) => void) | null = null;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(line);
    } else queue.push(line);
  });
  return (timeoutMs) => {
    const queued = queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('a bench process did not answer')), timeoutMs);
      waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  };
}

export async function stopProgram(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  await exited;
}

/** The C load generator (`udp-cpeer.ts`), a line per command on stdin and per answer on stdout. */
class CLoadGenerator implements LoadGenerator {
  private constructor(
    private readonly child: ChildProcess,
    private readonly next: (timeoutMs: number) => Promise<string>,
  ) {}

  static start(binary: string, cpu: number | null): CLoadGenerator {
    const child = startProgram(binary, ['load'], cpu);
    return new CLoadGenerator(child, lines(child));
  }

  async call(command: LoadCommand, timeoutMs = 30_000): Promise<LoadReply & { ok: true }> {
    const text =
      command.cmd === 'flows'
        ? `flows ${command.count}`
        : command.cmd === 'prime'
          ? `prime ${command.port} ${command.flows} ${command.timeoutMs} ${command.proxyV2 ? 1 : 0}`
          : command.cmd === 'run'
            ? `run ${command.port} ${command.flows} ${command.size} ${command.window} ${command.warmupMs} ${command.durationMs} ${command.proxyV2 ? 1 : 0}`
            : command.cmd === 'socks'
              ? `socks ${command.port} ${command.echoPort} ${command.flows}`
              : 'exit';
    this.child.stdin!.write(`${text}\n`);
    const answer = (await this.next(timeoutMs)).split(' ');
    if (answer[0] !== 'ok') throw new Error(`load generator: ${answer.join(' ')}`);
    if (command.cmd === 'prime') return { ok: true, primed: Number(answer[1]) };
    if (command.cmd === 'socks') return { ok: true, associated: Number(answer[1]) };
    if (command.cmd === 'run') {
      return {
        ok: true,
        roundTrips: Number(answer[1]),
        elapsedMs: Number(answer[2]),
        stalls: Number(answer[3]),
        total: Number(answer[4]),
      };
    }
    return { ok: true };
  }

  async stop(): Promise<void> {
    this.child.stdin!.end();
    await stopProgram(this.child);
  }
}

/** The echo server (the far end) and the load generator, each its own process on `cpu`. */
export async function startPeers(
  kind: 'c' | 'node',
  cpu: number | null,
): Promise<{ echoPort: number; load: LoadGenerator; stop(): Promise<void> }> {
  const binary = kind === 'c' ? buildCPeer() : null;
  if (binary !== null) {
    const echo = startProgram(binary, ['echo'], cpu);
    const echoPort = Number(await lines(echo)(10_000));
    const load = CLoadGenerator.start(binary, cpu);
    return { echoPort, load, stop: async () => void (await Promise.all([load.stop(), stopProgram(echo)])) };
  }
  const echo = startNode(here('./udp-peer.js'), ['echo'], cpu);
  const { port: echoPort } = await firstMessage<{ port: number }>(echo);
  const load = await NodeLoadGenerator.start(cpu);
  return { echoPort, load, stop: async () => void (await Promise.all([load.stop(), stopChild(echo)])) };
}

/** Runs the bench; bounded by its options (about 60 s with the defaults). */
export async function runUdpBench(options: UdpBenchOptions = {}): Promise<UdpBenchResult> {
  const sizes = options.sizes ?? [64, 1200];
  const flowCounts = options.flows ?? [1, 1000];
  const window = options.window ?? 64;
  const durationMs = options.durationMs ?? 600;
  const warmupMs = options.warmupMs ?? 150;
  const rounds = options.rounds ?? 5;
  const progress = options.progress ?? (() => undefined);
  const relays = (options.relays ?? RELAYS).filter((r) => r !== 'socat' || hasCommand('socat'));
  const pinned = availableParallelism() >= 2 && hasCommand('taskset');
  const relayCpu = pinned ? 1 : null;
  const peerCpu = pinned ? 0 : null;
  progress(
    `bench udp: relays ${relays.join(', ')}; sizes ${sizes.join(', ')} B; flows ${flowCounts.join(', ')}; ` +
      `window ${window}; ${rounds} x ${durationMs} ms per relay and case${pinned ? '; relays on CPU 1, peers on CPU 0' : ''}`,
  );

  const peerKind = options.peers === 'node' || buildCPeer() === null ? 'node' : 'c';
  progress(
    `  peers (echo server, load generator): ${peerKind === 'c' ? 'C' : 'Node (peer-bound: ratios compressed)'}`,
  );
  const children: { stop(): Promise<void> }[] = [];
  try {
    const peers = await startPeers(peerKind, peerCpu);
    children.push(peers);
    const { echoPort, load } = peers;
    await load.call({ cmd: 'flows', count: Math.max(...flowCounts) });
    const running = new Map<RelayKind, RunningRelay>();
    for (const kind of relays) {
      const relay = await startRelay(kind, echoPort, relayCpu);
      running.set(kind, relay);
      children.push(relay);
      if (relay.backend !== null) progress(`  ${kind}: UdpRelay on the ${relay.backend} datagram socket`);
    }

    const cases: UdpBenchCase[] = [];
    for (const flows of flowCounts) {
      for (const size of sizes)
        cases.push({
          size,
          flows,
          rate: {},
          trials: {},
          stalls: {},
          ratio: {},
          wirelayerToSocat: null,
          wirelayerToDirect: null,
          cpuUs: {},
          cpuTrials: {},
        });
    }
    // every relay learns every flow before anything is measured
    const usable = new Set<string>();
    for (const flows of flowCounts) {
      for (const kind of relays) {
        const { primed = 0 } = await load.call({
          cmd: 'prime',
          port: running.get(kind)!.port,
          flows,
          timeoutMs: 10_000,
        });
        const ok = primed === flows;
        if (ok) usable.add(`${kind}/${flows}`);
        progress(
          `  primed ${kind} with ${primed}/${flows} flows${ok ? '' : ' (skipped: not every flow answers)'}`,
        );
      }
    }

    for (let round = 0; round < rounds; round++) {
      for (const c of cases) {
        const order = relays.map((_, i) => relays[(i + round + cases.indexOf(c)) % relays.length]!);
        const line: string[] = [];
        for (const kind of order) {
          if (!usable.has(`${kind}/${c.flows}`)) continue;
          const relay = running.get(kind)!;
          const cpuBefore = relay.cpuMs();
          const reply = await load.call({
            cmd: 'run',
            port: relay.port,
            flows: c.flows,
            size: c.size,
            window,
            warmupMs,
            durationMs,
          });
          const rate = (reply.roundTrips ?? 0) / ((reply.elapsedMs ?? durationMs) / 1000);
          c.trials[kind] = [...(c.trials[kind] ?? []), rate];
          const cpuAfter = relay.cpuMs();
          if (cpuBefore !== null && cpuAfter !== null && reply.total) {
            c.cpuTrials[kind] = [...(c.cpuTrials[kind] ?? []), ((cpuAfter - cpuBefore) * 1000) / reply.total];
          }
          c.stalls[kind] = (c.stalls[kind] ?? 0) + (reply.stalls ?? 0);
          line.push(`${kind} ${Math.round(rate)}/s${reply.stalls ? ` (${reply.stalls} stalls)` : ''}`);
        }
        progress(`  round ${round + 1}/${rounds}  ${c.size} B x ${c.flows} flows: ${line.join(', ')}`);
      }
    }
    const paired = (trials: number[] | undefined, base: number[] | undefined): number | null =>
      trials && base && trials.length === base.length && trials.length > 0 ? pairedRatio(trials, base) : null;
    for (const c of cases) {
      for (const kind of relays) {
        const trials = c.trials[kind];
        c.rate[kind] = trials && trials.length > 0 ? median(trials) : null;
        const cpu = c.cpuTrials[kind];
        c.cpuUs[kind] = cpu && cpu.length > 0 ? median(cpu) : null;
        c.ratio[kind] = paired(trials, c.trials.node);
      }
      c.wirelayerToSocat = paired(c.trials.wirelayer, c.trials.socat);
      c.wirelayerToDirect = paired(c.trials.wirelayer, c.trials.direct);
    }
    return {
      cases,
      relays,
      backend: running.get('wirelayer')?.backend ?? null,
      pinned,
      peers: peerKind,
      window,
      durationMs,
      rounds,
      node: process.version,
    };
  } finally {
    for (const child of children.reverse()) await child.stop().catch(() => undefined);
  }
}

const fmt = (n: number | null | undefined): string =>
  n === null || n === undefined ? 'n/a' : String(Math.round(n));

const ratio = (n: number | null | undefined): string =>
  n === null || n === undefined ? 'n/a' : `${n.toFixed(2)}x`;

/**
 * The result as a Markdown table: rates (round trips/s, medians), ratios to the node relay, our
 * relay's ratios to socat and to the direct path, and CPU per round trip.
 */
export function formatUdpBenchTable(result: UdpBenchResult): string {
  const others = result.relays.filter((r) => r !== 'node');
  const ours = result.relays.includes('wirelayer');
  const vsSocat = ours && result.relays.includes('socat');
  const vsDirect = ours && result.relays.includes('direct');
  const withCpu = result.relays.filter((r) => r !== 'direct');
  const head = [
    'size',
    'flows',
    ...result.relays.map((r) => `${r} rt/s`),
    ...others.map((r) => `${r} / node`),
    ...(vsSocat ? ['wirelayer / socat'] : []),
    ...(vsDirect ? ['wirelayer / direct'] : []),
    ...withCpu.map((r) => `${r} CPU µs/rt`),
  ];
  const rows = result.cases.map((c) => [
    `${c.size} B`,
    String(c.flows),
    ...result.relays.map((r) => fmt(c.rate[r])),
    ...others.map((r) => ratio(c.ratio[r])),
    ...(vsSocat ? [ratio(c.wirelayerToSocat)] : []),
    ...(vsDirect ? [ratio(c.wirelayerToDirect)] : []),
    ...withCpu.map((r) => (c.cpuUs[r] == null ? 'n/a' : c.cpuUs[r]!.toFixed(1))),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padStart(widths[i]!)).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`,
    ...rows.map(line),
    '',
    `Round trips per second, medians of ${result.rounds} trials of ${result.durationMs} ms; ratios: medians of ` +
      `the per-round ratios (each relay beside the node relay in the same round); CPU: time on CPU of ` +
      `the relay's processes per round trip (schedstat); window ${result.window}, ` +
      `${result.peers === 'c' ? 'C' : 'Node'} peers, node ${result.node}${result.pinned ? ', relay pinned to its own CPU' : ''}` +
      `${result.backend ? `; wirelayer on the ${result.backend} datagram socket, wirelayer-dgram on node:dgram` : ''}; ` +
      `direct: no relay (the limit).`,
  ].join('\n');
}
