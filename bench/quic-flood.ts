/**
 * QUIC under an Initial flood: legitimate `gtlsclient` (ngtcp2) handshakes to our listener
 * while a generator sends undecryptable client Initials (random DCIDs, random payload, many
 * source ports), beside ngtcp2's own `gtlsserver` under the same flood in the same run. Each
 * server runs in a process of its own, so the CPU it used is read from /proc/PID/stat for
 * both alike. The handshake time is gtlsclient's own (its log clock, from its first Initial to
 * "handshake has completed"), so process start-up on a busy machine does not count.
 *
 *   node dist/bench/quic-flood.js [--rate N] [--handshakes N] [--rounds N]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../src/certs/index.js';
import { formatTable, median, progress, type Row } from './report.js';

const HOST = '127.0.0.1';
/** A legitimate handshake that has not completed by then has failed (the issue's bound). */
const HANDSHAKE_DEADLINE_MS = 3000;

// ---------------------------------------------------------------------------------------------
// The flood: a process of its own (plain JavaScript, so tests can run it without a build).

/**
 * The generator: `node -e FLOOD_SCRIPT PORT RATE SOURCES HOST`. It binds SOURCES connected
 * sockets, prints "ready", sends RATE datagrams per second round-robin until its stdin ends,
 * then prints `{"sent":N,"seconds":S}`. Each datagram is a 1200-byte QUIC v1 Initial whose
 * header parses (random 8-byte DCID and SCID, no token) and whose payload is random, so only
 * a decryption attempt can tell it from a real one. DCIDs are drawn anew on every pass over
 * the pool, so no two datagrams a second apart share one.
 */
export const FLOOD_SCRIPT = `
const dgram = require('node:dgram');
const { randomFillSync } = require('node:crypto');
const [port, rate, sources, host] = [Number(process.argv[1]), Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const SIZE = 1200, POOL = 4096, HEAD = 26;
const pool = randomFillSync(Buffer.alloc(SIZE * POOL));
const packets = [];
for (let i = 0; i < POOL; i++) {
  const p = pool.subarray(i * SIZE, (i + 1) * SIZE);
  p[0] = 0xc0 | (p[0] & 0x0f); p.writeUInt32BE(1, 1); p[5] = 8; p[14] = 8; p[23] = 0;
  p.writeUInt16BE(0x4000 | (SIZE - HEAD), 24);
  packets.push(p);
}
const sockets = [];
let bound = 0, sent = 0, next = 0, t0 = 0, timer = null;
for (let i = 0; i < sources; i++) {
  const s = dgram.createSocket('udp4');
  s.on('error', () => {});
  s.bind(0, host, () => s.connect(port, host, () => { if (++bound === sources) start(); }));
  sockets.push(s);
}
function start() {
  process.stdout.write('ready\\n');
  t0 = performance.now();
  timer = setInterval(tick, 2);
}
function tick() {
  const due = Math.min(Math.floor(((performance.now() - t0) * rate) / 1000) - sent, rate / 20);
  for (let i = 0; i < due; i++) {
    if (next === POOL) {
      next = 0;
      for (const p of packets) { randomFillSync(p, 6, 8); randomFillSync(p, 15, 8); }
    }
    sockets[sent % sources].send(packets[next++]);
    sent++;
  }
}
process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(timer);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ sent, seconds }) + '\\n');
  for (const s of sockets) s.close();
});
`;

/** A running flood generator. */
export interface InitialFlood {
  readonly pid: number;
  /** Stops it: datagrams sent and for how long. */
  stop(): Promise<{ sent: number; seconds: number }>;
}

/** Starts the generator against HOST:port and resolves once it is sending. */
export async function startInitialFlood(
  port: number,
  rate: number,
  sources = 64,
  host = HOST,
): Promise<InitialFlood> {
  const child = spawn(
    process.execPath,
    ['-e', FLOOD_SCRIPT, String(port), String(rate), String(sources), host],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const iterator = lines[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done || first.value !== 'ready') {
    child.kill();
    throw new Error(`flood generator did not start: ${first.value ?? 'no output'}`);
  }
  return {
    pid: child.pid!,
    async stop() {
      child.stdin!.end();
      const summary = await iterator.next();
      await exited(child);
      if (summary.done) throw new Error('flood generator ended without a summary');
      return JSON.parse(summary.value) as { sent: number; seconds: number };
    },
  };
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await once(child, 'exit');
}

// ---------------------------------------------------------------------------------------------
// gtlsclient, timed by its own clock.

/** One legitimate handshake, or nulls if it did not complete in time. */
export interface HandshakeResult {
  /** From spawning gtlsclient to its "handshake has completed" line, ms (what a user waits). */
  wallMs: number | null;
  /** gtlsclient's own clock: its connection's start to completion, ms (1 ms resolution). */
  ms: number | null;
  /** Whether the server made the client answer a Retry first. */
  retried: boolean;
}

/**
 * Runs `gtlsclient` against host:port until it prints that its handshake completed (or the
 * deadline passes), then kills it. Two times: the wall clock from the spawn (process start-up
 * included, the same for every server), and gtlsclient's own, read from the last ngtcp2 log
 * line before the completion line (milliseconds since its connection was made). The client
 * completes on the server's Finished: the server completes a moment later, on the client's.
 */
export async function gtlsclientHandshake(
  host: string,
  port: number,
  deadlineMs = HANDSHAKE_DEADLINE_MS,
  /** Awaited once the handshake completed, before gtlsclient is killed (e.g. for the server to see it done too). */
  settle?: () => Promise<void>,
): Promise<HandshakeResult> {
  const t0 = performance.now();
  const child = spawn(
    'gtlsclient',
    ['--no-http-dump', '--no-quic-dump', '--timeout=5s', host, String(port), `https://${host}:${port}/`],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let text = '';
  let result: HandshakeResult | null = null;
  const done = new Promise<void>((resolve) => {
    const look = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const at = text.indexOf('QUIC handshake has completed');
      if (at < 0 || result !== null) return;
      const stamps = [...text.slice(0, at).matchAll(/^I(\d{8}) /gm)];
      const last = stamps[stamps.length - 1];
      result = {
        wallMs: performance.now() - t0,
        ms: last ? Number(last[1]) : 0,
        retried: /type=Retry/.test(text),
      };
      resolve();
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', () => resolve());
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
  clearTimeout(timer);
  if (result !== null && settle !== undefined) await settle();
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited(child);
  }
  return result ?? { wallMs: null, ms: null, retried: /type=Retry/.test(text) };
}

// ---------------------------------------------------------------------------------------------
// The servers, each in a process of its own.

interface ServerProcess {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** Stops it; ours answers with its listener's stats. */
  stop(): Promise<Record<string, number> | null>;
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name may hold spaces: fields are counted from after its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  let text = '';
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${text}`)),
      timeoutMs,
    );
    const look = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const m = text.match(pattern);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', look);
        resolve(m);
      }
    };
    child.stdout!.on('data', look);
    child.once('exit', () => reject(new Error(`exited before ${pattern}: ${text}`)));
  });
}

/** Our listener, in a child process running this file with `--serve`. */
async function startOurs(certFile: string, keyFile: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', certFile, keyFile], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [, port] = await waitForLine(child, /listening (\d+)\n/, 10_000);
  return {
    name: 'wirelayer',
    port: Number(port),
    pid: child.pid!,
    async stop() {
      const stats = waitForLine(child, /stats (\{.*\})\n/, 10_000);
      child.stdin!.end();
      const [, json] = await stats;
      await exited(child);
      return JSON.parse(json!) as Record<string, number>;
    },
  };
}

/** What `--serve` runs: a listener (our driver, as `wirelayer listen quic://` makes it). */
async function serve(certFile: string, keyFile: string): Promise<void> {
  const { quic } = await import('../src/transport/quic/index.js');
  const listener = await quic.listen({
    host: HOST,
    port: 0,
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    ALPNProtocols: ['h3'],
  });
  listener.on('session', () => undefined);
  process.stdout.write(`listening ${listener.address[1]}\n`);
  process.stdin.resume();
  await once(process.stdin, 'end');
  process.stdout.write(`stats ${JSON.stringify(listener.stats)}\n`);
  await listener.close();
}

async function freeUdpPort(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** ngtcp2's example server (no address validation, its default), on a free port. */
async function startGtlsServer(certFile: string, keyFile: string): Promise<ServerProcess> {
  const port = await freeUdpPort();
  const child = spawn(
    'gtlsserver',
    ['--no-http-dump', '--no-quic-dump', '--quiet', '--timeout=5s', HOST, String(port), keyFile, certFile],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  );
  // bound once the kernel lists the port
  const deadline = Date.now() + 5000;
  const { execFileSync } = await import('node:child_process');
  while (execFileSync('ss', ['-Hunl', `sport = :${port}`], { encoding: 'utf8' }).trim() === '') {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('gtlsserver did not bind');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    name: 'gtlsserver',
    port,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
      return null;
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface QuicFloodBenchOptions {
  /** Flood datagrams per second (default 20,000). */
  rate?: number;
  /** Legitimate handshakes per server per round (default 10). */
  handshakes?: number;
  /** Rounds; which server goes first alternates (default 2). */
  rounds?: number;
  /** Flood source sockets (default 64). */
  sources?: number;
}

interface Phase {
  /** Wall times, and gtlsclient's clock, of the handshakes that completed. */
  times: number[];
  clientTimes: number[];
  failures: number;
  retried: number;
  cpuPercent: number;
}

async function phase(server: ServerProcess, count: number, rate: number, sources: number): Promise<Phase> {
  const flood = rate > 0 ? await startInitialFlood(server.port, rate, sources) : null;
  // let the flood reach its pace (and the server its steady state) before measuring
  await new Promise((r) => setTimeout(r, 300));
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const times: number[] = [];
  const clientTimes: number[] = [];
  let failures = 0;
  let retried = 0;
  for (let i = 0; i < count; i++) {
    const r = await gtlsclientHandshake(HOST, server.port);
    if (r.wallMs === null || r.ms === null) failures++;
    else {
      times.push(r.wallMs);
      clientTimes.push(r.ms);
    }
    if (r.retried) retried++;
  }
  const wall = (performance.now() - t0) / 1000;
  const cpuPercent = ((cpuSeconds(server.pid) - cpu0) / wall) * 100;
  if (flood !== null) {
    const { sent, seconds } = await flood.stop();
    progress(`${server.name}: flood ${Math.round(sent / seconds)} datagrams/s`);
  }
  progress(
    `${server.name}: ${count - failures}/${count} done, ${retried} through a Retry, CPU ${cpuPercent.toFixed(1)}%`,
  );
  return { times, clientTimes, failures, retried, cpuPercent };
}

/** The rows: handshake times quiet and under the flood, completions, server CPU. */
export async function runQuicFloodBench(options: QuicFloodBenchOptions = {}): Promise<Row[]> {
  const rate = options.rate ?? 20_000;
  const count = options.handshakes ?? 10;
  const rounds = options.rounds ?? 2;
  const sources = options.sources ?? 64;
  // certificates made now (no fixture files): a leaf for localhost, gtlsclient's SNI for an IP
  const dir = mkdtempSync(join(tmpdir(), 'wirelayer-quic-flood-'));
  const leaf = CertificateAuthority.create({ type: 'ec' }).issue('localhost', { altNames: [HOST] });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, leaf.certPem);
  writeFileSync(keyFile, leaf.keyPem);
  const results = {
    wirelayer: { quiet: [] as number[], flood: [] as Phase[], stats: [] as Record<string, number>[] },
    gtlsserver: { quiet: [] as number[], flood: [] as Phase[], stats: [] },
  };
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [startOurs, startGtlsServer] : [startGtlsServer, startOurs];
      for (const start of order) {
        const server = await start(certFile, keyFile);
        try {
          const into = results[server.name as 'wirelayer' | 'gtlsserver'];
          // warm-up, not measured: a fresh process builds its TLS config and JIT-compiles on the first ones
          for (let i = 0; i < 3; i++) await gtlsclientHandshake(HOST, server.port);
          progress(`quic-flood round ${round + 1}/${rounds}: ${server.name}, quiet`);
          into.quiet.push(...(await phase(server, count, 0, sources)).times);
          progress(`quic-flood round ${round + 1}/${rounds}: ${server.name}, ${rate} Initials/s`);
          into.flood.push(await phase(server, count, rate, sources));
        } finally {
          const stats = await server.stop();
          if (stats !== null) {
            results.wirelayer.stats.push(stats);
            progress(`wirelayer listener stats: ${JSON.stringify(stats)}`);
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const floodTimes = (name: 'wirelayer' | 'gtlsserver'): number[] =>
    results[name].flood.flatMap((p) => p.times);
  const clientClock = (name: 'wirelayer' | 'gtlsserver'): number[] =>
    results[name].flood.flatMap((p) => p.clientTimes);
  const total = rounds * count;
  const completed = (name: 'wirelayer' | 'gtlsserver'): number =>
    total - results[name].flood.reduce((n, p) => n + p.failures, 0);
  const cpu = (name: 'wirelayer' | 'gtlsserver'): number =>
    median(results[name].flood.map((p) => p.cpuPercent));
  const orNaN = (xs: number[], f: (xs: number[]) => number): number => (xs.length > 0 ? f(xs) : Number.NaN);
  const row = (name: string, unit: string, ours: number, theirs: number): Row => ({
    name,
    value: ours,
    unit,
    baseline: theirs,
    baselineName: 'gtlsserver',
    // a baseline of 0 (gtlsclient's clock on loopback) has no meaningful ratio
    ratio: theirs > 0 ? ours / theirs : undefined,
  });
  const perSecond = rate.toLocaleString('en-US');
  return [
    row(
      `gtlsclient handshake, spawn to done, no flood (median of ${total})`,
      'ms',
      orNaN(results.wirelayer.quiet, median),
      orNaN(results.gtlsserver.quiet, median),
    ),
    row(
      `gtlsclient handshake, spawn to done, under ${perSecond} Initials/s (median)`,
      'ms',
      orNaN(floodTimes('wirelayer'), median),
      orNaN(floodTimes('gtlsserver'), median),
    ),
    row(
      `gtlsclient handshake, spawn to done, under ${perSecond} Initials/s (slowest that completed)`,
      'ms',
      orNaN(floodTimes('wirelayer'), (xs) => Math.max(...xs)),
      orNaN(floodTimes('gtlsserver'), (xs) => Math.max(...xs)),
    ),
    row(
      `gtlsclient handshake by its own clock (1 ms steps) under ${perSecond} Initials/s (median)`,
      'ms',
      orNaN(clientClock('wirelayer'), median),
      orNaN(clientClock('gtlsserver'), median),
    ),
    row(
      `handshakes completed within ${HANDSHAKE_DEADLINE_MS / 1000} s under the flood (of ${total})`,
      'handshakes',
      completed('wirelayer'),
      completed('gtlsserver'),
    ),
    row(`server CPU under the flood (% of one core)`, '%', cpu('wirelayer'), cpu('gtlsserver')),
  ];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--serve') {
    await serve(process.argv[3]!, process.argv[4]!);
  } else {
    const { values } = parseArgs({
      options: { rate: { type: 'string' }, handshakes: { type: 'string' }, rounds: { type: 'string' } },
    });
    const rows = await runQuicFloodBench({
      rate: values.rate ? Number(values.rate) : undefined,
      handshakes: values.handshakes ? Number(values.handshakes) : undefined,
      rounds: values.rounds ? Number(values.rounds) : undefined,
    });
    console.log(formatTable('QUIC listener under an Initial flood vs gtlsserver', rows));
  }
}
