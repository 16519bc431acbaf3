/**
 * `wirelayer bench intercept`: the interception matrix's throughput and handshake cases timed,
 * each beside the same run without the impairment or without the proxy, in the same run:
 *
 * - QUIC (gtlsclient -> proxy -> gtlsserver): handshake time and a file transfer, proxied vs
 *   direct; the same proxied with the matrix's impairments (handshakeloss, transferloss, a
 *   delay) vs proxied clean.
 * - DTLS (openssl s_client -> proxy -> s_server): handshake time proxied vs direct, and under
 *   20% loss with reordering at MTU 300 vs proxied clean.
 * - TLS (curl -> proxy -> openssl s_server -WWW): a transfer proxied vs direct; rate-limited,
 *   the rate it achieved vs the rate asked for.
 * - The cost of impairment in the relay: round trips per second through the proxy's reverse:udp
 *   with no impairment vs `UdpRelay` alone, and with an impairment that passes everything
 *   (every datagram through the impairer) vs none (bench/udp.ts' harness, C peers).
 *
 * Times are gtlsclient's own log clock for QUIC handshakes (process start-up excluded), curl's
 * for TLS, and the wall clock from spawn for DTLS (s_client prints no clock: start-up included
 * on both sides of the ratio). Medians of `rounds`; the proxied and baseline runs alternate.
 */
import { dtlsRun, makeSite, quicRun, type Site, streamRun } from './intercept-peers.js';
import { median, pairedRatio, type Row } from './report.js';
import { type RelayKind, runUdpBench } from './udp.js';

/** Options of the bench (defaults: about two minutes on two cores). */
export interface InterceptBenchOptions {
  /** Runs per case and side (medians reported); default 5. */
  rounds?: number;
  /** QUIC and TLS transfer size, bytes; default 4 MB. */
  transferBytes?: number;
  /** Which parts to run; default all. */
  parts?: readonly InterceptPart[];
  progress?: (line: string) => void;
}

/** The bench's parts: QUIC, DTLS and TLS through the proxy, and the UDP relay's cost of impairment. */
export type InterceptPart = 'quic' | 'dtls' | 'tls' | 'relay';

const LOSS_SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

/**
 * Runs `a` and `b` alternately `rounds` times (a first on even rounds) and returns their
 * figures, after one run of each that is not counted (JIT, the DTLS addon, peers' disk caches).
 */
async function paired(
  rounds: number,
  a: () => Promise<number>,
  b: () => Promise<number>,
): Promise<{ a: number[]; b: number[] }> {
  await a();
  await b();
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      out.a.push(await a());
      out.b.push(await b());
    } else {
      out.b.push(await b());
      out.a.push(await a());
    }
  }
  return out;
}

function row(name: string, unit: string, ours: number[], base: number[], baselineName: string): Row {
  const value = median(ours);
  const baseline = median(base);
  return { name, value, unit, baseline, baselineName, ratio: value / baseline };
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** Means, for runs whose spread is the point (one seed each: some lose an Initial and wait out a probe timeout). */
function meanRow(name: string, unit: string, ours: number[], base: number[], baselineName: string): Row {
  const value = mean(ours);
  const baseline = mean(base);
  return { name, value, unit, baseline, baselineName, ratio: value / baseline };
}

/** MB/s of a run that moved `bytes` in `ms`. */
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

function whole(what: string, ok: boolean): void {
  if (!ok) throw new Error(`bench intercept: ${what} did not arrive whole`);
}

async function quicRows(site: Site, rounds: number, bytes: number, say: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const handshake = async (proxied: boolean, impair?: string): Promise<number> => {
    const r = await quicRun({ site, fetches: [['small.bin']], proxied, impair, timeoutS: 10 });
    whole('a QUIC fetch', r.intact[0]!.length === 1);
    return r.handshakeMs[0]!;
  };
  say('QUIC handshake, proxied vs direct');
  const h = await paired(
    rounds,
    () => handshake(true),
    () => handshake(false),
  );
  rows.push(row('QUIC handshake through the proxy (gtlsclient -> gtlsserver)', 'ms', h.a, h.b, 'direct'));

  say('QUIC handshake under 30% loss (burst 3), one seed per round');
  const lossy: number[] = [];
  const clean: number[] = [];
  for (const seed of LOSS_SEEDS.slice(0, Math.max(rounds, 1))) {
    lossy.push(await handshake(true, `loss=0.3,burst=3,seed=${seed}`));
    clean.push(await handshake(true));
  }
  rows.push(
    meanRow(
      `QUIC handshakeloss: 30% loss, burst 3 (mean of seeds 1..${lossy.length}; max ${Math.max(...lossy)} ms)`,
      'ms',
      lossy,
      clean,
      'proxied, no loss',
    ),
  );

  const transfer = async (proxied: boolean, impair?: string): Promise<number> => {
    const r = await quicRun({ site, fetches: [['large.bin']], proxied, impair, timeoutS: 10 });
    whole('a QUIC transfer', r.intact[0]!.length === 1);
    return mbps(bytes, r.elapsedMs - r.handshakeMs[0]!);
  };
  say('QUIC transfer, proxied vs direct');
  const t = await paired(
    rounds,
    () => transfer(true),
    () => transfer(false),
  );
  rows.push(row(`QUIC transfer of ${bytes / 1e6} MB through the proxy`, 'MB/s', t.a, t.b, 'direct'));
  say('QUIC transfer under 2% loss vs none');
  const tl = await paired(
    rounds,
    () => transfer(true, 'loss=0.02'),
    () => transfer(true),
  );
  rows.push(row('QUIC transferloss: 2% loss both ways', 'MB/s', tl.a, tl.b, 'proxied, no loss'));
  say('QUIC transfer with 5 ms of delay each way vs none');
  const td = await paired(
    rounds,
    () => transfer(true, 'delay=5'),
    () => transfer(true),
  );
  rows.push(
    row('QUIC transfer, 5 ms delay each way (10 ms RTT added)', 'MB/s', td.a, td.b, 'proxied, no delay'),
  );
  return rows;
}

async function dtlsRows(site: Site, rounds: number, say: (s: string) => void): Promise<Row[]> {
  const handshake = async (proxied: boolean, impair?: string): Promise<number> => {
    const r = await dtlsRun({ site, client: 'openssl', proxied, impair, up: ['ping'], resendMs: 150 });
    return r.handshakeMs;
  };
  say('DTLS handshake, proxied vs direct');
  const h = await paired(
    rounds,
    () => handshake(true),
    () => handshake(false),
  );
  say('DTLS handshake under 20% loss with reordering at MTU 300 vs none');
  const lossy: number[] = [];
  const clean: number[] = [];
  for (const seed of LOSS_SEEDS.slice(0, Math.max(rounds, 1))) {
    lossy.push(await handshake(true, `loss=0.2,reorder=0.3,mtu=300,seed=${seed}`));
    clean.push(await handshake(true));
  }
  return [
    row('DTLS handshake through the proxy (s_client -> s_server, spawn included)', 'ms', h.a, h.b, 'direct'),
    meanRow(
      `DTLS handshake, 20% loss, reordering, MTU 300 (mean of seeds 1..${lossy.length}; max ${Math.round(Math.max(...lossy))} ms)`,
      'ms',
      lossy,
      clean,
      'proxied, clean',
    ),
  ];
}

async function tlsRows(site: Site, rounds: number, bytes: number, say: (s: string) => void): Promise<Row[]> {
  const transfer = async (proxied: boolean, impair?: string): Promise<number> => {
    const r = await streamRun({ site, file: 'large.bin', scheme: 'tls', proxied, impair });
    whole('a TLS transfer', r.intact);
    return mbps(bytes, r.totalMs - r.setupMs);
  };
  say('TLS transfer, proxied vs direct');
  const t = await paired(
    rounds,
    () => transfer(true),
    () => transfer(false),
  );
  say('TLS transfer at rate=20M: achieved vs asked');
  const shaped: number[] = [];
  for (let i = 0; i < rounds; i++) shaped.push(await transfer(true, 'down:rate=20M'));
  return [
    row(
      `TLS transfer of ${bytes / 1e6} MB through the proxy (curl -> s_server -WWW)`,
      'MB/s',
      t.a,
      t.b,
      'direct',
    ),
    {
      name: 'TLS transfer through the proxy with down:rate=20M',
      value: median(shaped),
      unit: 'MB/s',
      baseline: 2.5,
      baselineName: 'the rate asked',
      ratio: median(shaped) / 2.5,
    },
  ];
}

async function relayRows(rounds: number, say: (s: string) => void): Promise<Row[]> {
  say('UDP relay: proxy reverse:udp without impairment vs UdpRelay, and with a pass-everything impairment');
  const relays: RelayKind[] = ['node', 'wirelayer', 'proxy', 'proxy-impaired'];
  const result = await runUdpBench({
    relays,
    sizes: [64, 1200],
    flows: [1],
    rounds: Math.max(rounds, 3),
    progress: (line) => say(`  ${line}`),
  });
  // CPU time per round trip (the relay's processes, schedstat): what the impairer costs, and far
  // less sensitive than the rate to load from elsewhere on a shared machine
  const rows: Row[] = [];
  for (const c of result.cases) {
    const cpuRatio = (a: RelayKind, b: RelayKind): number | undefined => {
      const ta = c.cpuTrials[a];
      const tb = c.cpuTrials[b];
      if (!ta || !tb || ta.length !== tb.length || ta.length === 0) return undefined;
      return pairedRatio(ta, tb);
    };
    const cpu = (k: RelayKind): number => c.cpuUs[k] ?? Number.NaN;
    rows.push({
      name: `UDP relay, ${c.size} B, CPU per round trip: proxy reverse:udp, impairment off (${Math.round(c.rate.proxy ?? 0)} rt/s)`,
      value: cpu('proxy'),
      unit: 'µs',
      baseline: cpu('wirelayer'),
      baselineName: `UdpRelay alone, ${Math.round(c.rate.wirelayer ?? 0)} rt/s`,
      ratio: cpuRatio('proxy', 'wirelayer'),
    });
    rows.push({
      name: `UDP relay, ${c.size} B, CPU per round trip: impairment on, passing everything (${Math.round(c.rate['proxy-impaired'] ?? 0)} rt/s)`,
      value: cpu('proxy-impaired'),
      unit: 'µs',
      baseline: cpu('proxy'),
      baselineName: 'impairment off',
      ratio: cpuRatio('proxy-impaired', 'proxy'),
    });
  }
  return rows;
}

/** Runs every case; bounded by its options (about two minutes with the defaults). */
export async function runInterceptBench(options: InterceptBenchOptions = {}): Promise<Row[]> {
  const rounds = options.rounds ?? 5;
  const bytes = options.transferBytes ?? 4_000_000;
  const say = options.progress ?? (() => undefined);
  const parts = new Set(options.parts ?? ['quic', 'dtls', 'tls', 'relay']);
  const site = makeSite({ 'small.bin': 2_000, 'large.bin': bytes });
  try {
    return [
      ...(parts.has('quic') ? await quicRows(site, rounds, bytes, say) : []),
      ...(parts.has('dtls') ? await dtlsRows(site, rounds, say) : []),
      ...(parts.has('tls') ? await tlsRows(site, rounds, bytes, say) : []),
      ...(parts.has('relay') ? await relayRows(rounds, say) : []),
    ];
  } finally {
    site.remove();
  }
}
