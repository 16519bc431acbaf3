// bench/ is imported only when a benchmark runs (never statically from src/): the benchmarks
// load every driver and their baselines, which no other command should depend on.
import type { RelayKind } from '../../../bench/udp.js';
import { parse, UsageError } from '../args.js';

/** The names of bench/index.ts' `BENCHMARKS`, spelled out for the usage text (a test keeps them equal). */
export const BENCH_NAMES: readonly string[] = [
  'tcp',
  'udp',
  'udp-flood',
  'tls',
  'certs',
  'dtls-engine',
  'dtls',
  'handshake',
  'quic',
  'quic-flood',
  'quic-cids',
  'quic-initial',
  'proxy',
  'intercept',
  'load',
  'socks5',
  'proxy-protocol',
  'workers',
];
/** bench/udp.ts' `RELAYS`, likewise. */
export const RELAY_NAMES: readonly string[] = ['wirelayer', 'wirelayer-dgram', 'node', 'socat', 'direct'];

const udpUsage = `wirelayer bench udp [--duration MS] [--rounds N] [--relays a,b] [--json]
  Round trips per second through our UDP relay (wirelayer: the native datagram socket on Linux;
  wirelayer-dgram: node:dgram) beside a minimal node:dgram relay, socat, and no relay at all
  (direct: the limit), 64 B and 1200 B datagrams, 1 and 1000 flows, a window of 64 in flight.
  About 100 s.
  --duration MS   measured time per trial (default 600)
  --rounds N      trials per relay and case, medians reported (default 5)
  --relays LIST   among ${RELAY_NAMES.join(', ')} (default all)
  --sizes LIST    datagram sizes in bytes (default 64,1200)
  --flows LIST    flow counts (default 1,1000)
  --json          the result as one JSON object on stdout (progress stays on stderr)`;

function integers(text: string | undefined, flag: string, min: number, max: number): number[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(',').map(Number);
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < min || n > max)) {
    throw new UsageError(`${flag}: integers in ${min}..${max}, comma separated: ${text}`);
  }
  return list;
}

async function benchUdp(args: string[]): Promise<number> {
  const { values } = parse(args, {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    relays: { type: 'string' },
    sizes: { type: 'string' },
    flows: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(udpUsage);
    return 0;
  }
  const durationMs = Number(values.duration ?? 600);
  const rounds = Number(values.rounds ?? 5);
  if (!Number.isInteger(durationMs) || durationMs < 50) throw new UsageError('--duration: at least 50 ms');
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError('--rounds: a positive integer');
  const relays = values.relays?.split(',').filter((r) => r.length > 0);
  for (const r of relays ?? []) {
    if (!RELAY_NAMES.includes(r)) throw new UsageError(`--relays: unknown relay ${r}`);
  }
  const sizes = integers(values.sizes, '--sizes', 0, 65_507);
  const flows = integers(values.flows, '--flows', 1, 10_000);
  const { formatUdpBenchTable, runUdpBench } = await import('../../../bench/udp.js');
  const result = await runUdpBench({
    sizes,
    flows,
    durationMs,
    rounds,
    relays: relays as RelayKind[] | undefined,
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  console.log(values.json ? JSON.stringify(result) : formatUdpBenchTable(result));
  return 0;
}

/** Benchmarks with options of their own; the others run with their defaults. */
const WITH_OPTIONS: Record<string, { usage: string; run(args: string[]): Promise<number> }> = {
  udp: { usage: udpUsage, run: benchUdp },
};

export const usage = `wirelayer bench NAME [options] | wirelayer bench all
  Loopback benchmarks, each beside its baseline measured in the same run, printed as a
  Markdown table with ratios; progress on stderr. NAME: ${BENCH_NAMES.join(', ')}.
  \`wirelayer bench udp --help\` for the UDP relay benchmark's options.`;

export async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined) throw new UsageError('which benchmark?');
  if (name === '--help' || name === '-h') {
    console.log(usage);
    return 0;
  }
  const custom = WITH_OPTIONS[name];
  if (custom) return custom.run(rest);
  const names = name === 'all' ? BENCH_NAMES : [name];
  if (rest.length > 0) throw new UsageError(`bench ${name} takes no options: ${rest.join(' ')}`);
  for (const n of names) {
    if (!BENCH_NAMES.includes(n))
      throw new UsageError(`unknown benchmark "${n}" (one of ${BENCH_NAMES.join(', ')}, all)`);
  }
  const { BENCHMARKS } = await import('../../../bench/index.js');
  const { renderResult } = await import('../../../bench/report.js');
  for (const n of names) {
    const bench = BENCHMARKS[n];
    if (!bench) throw new Error(`benchmark "${n}" is named in BENCH_NAMES but missing from bench/index.ts`);
    console.log(`${renderResult(bench.title, await bench.run())}\n`);
  }
  return 0;
}
