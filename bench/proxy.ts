/**
 * `wirelayer bench proxy`: what interception costs, each figure beside baselines in the same run.
 *
 * - TLS bulk (one connection, 64 KiB messages, one way: MB/s) and TLS handshakes/s (4 at a time,
 *   one 64-byte echo each, node:tls clients; through a proxy every handshake is two, the client
 *   leg's and the server leg's): through `wirelayer proxy --mode reverse:tls://...`, beside the same load
 *   straight to the upstream, and beside mitmdump (Debian `mitmproxy` 8.1.1: `--mode
 *   reverse:https://... --tcp-hosts '.*' --ssl-insecure`, the same work: TLS terminated on both
 *   legs, the plaintext relayed as raw TCP).
 * - QUIC bulk (one stream, 64 KiB messages, one way) and DTLS records/s (1200-byte echo, 16 in
 *   flight): through the proxy beside straight to the upstream.
 * - Memory: 1,000 idle intercepted flows of each kind (tls, udp, dtls, quic) held open: the
 *   proxy process's RSS growth per flow, beside a `wirelayer listen` process holding the same
 *   1,000 sessions (one leg where the proxy holds two; lower is better).
 *
 * The proxies and the listener are child processes (the built CLI, as users run it; mitmdump
 * likewise); the load generator (`load()`) and the upstream servers run here, the same for every
 * side. Every client skips verification alike (the direct one, and through either proxy). Rounds
 * rotate the order of the sides; medians are reported (the machine is shared).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '../src/certs/index.js';
import type { Client } from '../src/connection/index.js';
import { load } from '../src/load/index.js';
import { serve } from '../src/load/serve.js';
import type { LoadOptions } from '../src/load/spec.js';
import { drivers } from '../src/transport/index.js';
import type { AnySession, Listener, Scheme, Session } from '../src/transport/types.js';
import { onPath, start, stop } from './processes.js';
import { median, pairedRatio, type Row } from './report.js';

const HOST = '127.0.0.1';
/** The built CLI beside this file (dist/bench/proxy.js -> dist/src/cli/main.js). */
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface ProxyBenchOptions {
  /** Seconds per measurement; default 3. */
  seconds?: number;
  /** Measurements per side, medians reported; default 3. */
  rounds?: number;
  /** Idle flows per kind for the memory rows; default 1000. */
  flows?: number;
  /** Compare with mitmdump (default true; it must be on PATH: `apt-get install mitmproxy`). */
  mitmdump?: boolean;
  /** Progress lines (default none). */
  progress?: (line: string) => void;
}

/** The upstreams' identity: a throwaway CA's leaf for 127.0.0.1 (its CA given to the proxy as `--upstream-ca`). */
interface Pki {
  cert: string;
  key: string;
  caFile: string;
}

function makePki(dir: string): Pki {
  const ca = CertificateAuthority.create();
  const leaf = ca.issue(HOST);
  const caFile = join(dir, 'upstream-ca.pem');
  writeFileSync(caFile, ca.certPem);
  return { cert: leaf.certPem, key: leaf.keyPem, caFile };
}

/** An upstream of our own driver, serving every session it accepts. */
async function upstream(scheme: Scheme, pki: Pki, behaviour: 'echo' | 'discard'): Promise<Listener> {
  const listener = await drivers[scheme]!.listen({ host: HOST, port: 0, cert: pki.cert, key: pki.key });
  listener.on('session', (session: AnySession<Client>) => serve(session, behaviour));
  listener.on('error', () => undefined);
  return listener;
}

interface Child {
  child: ChildProcess;
  port: number;
}

/** `wirelayer proxy` in reverse mode to `port`, its CA in `confdir`. */
async function wirelayerProxy(scheme: Scheme, port: number, pki: Pki, confdir: string): Promise<Child> {
  const { child, match } = await start(
    process.execPath,
    [CLI, 'proxy', '--mode', `reverse:${scheme}://${HOST}:${port}`, '--upstream-ca', pki.caFile],
    /listening on \w+:\/\/[\d.]+:(\d+)/,
    false,
    { WIRELAYER_CONFDIR: confdir },
  );
  return { child, port: Number(match[1]) };
}

/** mitmdump intercepting TLS to `port` and relaying the plaintext as raw TCP. */
async function mitmdump(port: number, confdir: string): Promise<Child> {
  const { child, match } = await start(
    'mitmdump',
    [
      '--mode',
      `reverse:https://${HOST}:${port}`,
      '--tcp-hosts',
      '.*',
      '--ssl-insecure',
      '--listen-host',
      HOST,
      '--listen-port',
      '0',
      '--set',
      `confdir=${confdir}`,
      // no flow contents printed (as our proxy prints none); the connection lines stay, as ours
      '--set',
      'flow_detail=0',
    ],
    /listening at [\d.]+:(\d+)/,
    false,
    // Python buffers a pipe's output: the listening line would come late
    { PYTHONUNBUFFERED: '1' },
  );
  return { child, port: Number(match[1]) };
}

/** `wirelayer listen` (echo) for the memory baseline. */
async function wirelayerListen(scheme: Scheme, pki: Pki, dir: string): Promise<Child> {
  const cert = join(dir, 'listen-cert.pem');
  const key = join(dir, 'listen-key.pem');
  writeFileSync(cert, pki.cert);
  writeFileSync(key, pki.key);
  const { child, match } = await start(
    process.execPath,
    [CLI, 'listen', `${scheme}://${HOST}:0`, '--cert', cert, '--key', key],
    /listening on \w+:\/\/[\d.]+:(\d+)/,
  );
  return { child, port: Number(match[1]) };
}

/** One load run's figure. */
type Measure = (port: number) => Promise<number>;

const base = (scheme: Scheme, port: number, seconds: number): LoadOptions => ({
  scheme,
  host: HOST,
  port,
  rejectUnauthorized: false,
  duration: seconds,
  timeout: 5000,
});

const bulk =
  (scheme: Scheme, seconds: number): Measure =>
  async (port) => {
    const r = await load({ ...base(scheme, port, seconds), mode: 'send', size: 65536 });
    return r.bytes_per_s / 1e6;
  };

/**
 * TLS handshakes/s, 4 at a time, each with one 64-byte echo, then the socket destroyed: not a
 * graceful close, which mitmdump 8.1.1 never completes (it closes its legs but the client sees
 * no end), so waiting for it would measure a timeout. One client SecureContext for every dial.
 */
const handshakes =
  (seconds: number): Measure =>
  async (port) => {
    const secureContext = createSecureContext({});
    const message = Buffer.alloc(64, 0x61);
    const deadline = performance.now() + seconds * 1000;
    let done = 0;
    const one = async (): Promise<void> => {
      const socket = tlsConnect({ host: HOST, port, secureContext, rejectUnauthorized: false });
      try {
        await once(socket, 'secureConnect');
        socket.write(message);
        await once(socket, 'data');
        done++;
      } finally {
        socket.destroy();
      }
    };
    const started = performance.now();
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) await one();
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    return done / ((performance.now() - started) / 1000);
  };

const records =
  (seconds: number): Measure =>
  async (port) => {
    const r = await load({ ...base('dtls', port, seconds), mode: 'echo', size: 1200, window: 16 });
    return r.messages_per_s;
  };

/** Each side measured `rounds` times, the order rotated round by round: every round's figure, by side. */
async function compare(
  sides: readonly { name: string; port: number }[],
  measure: Measure,
  rounds: number,
  say: (line: string) => void,
): Promise<Map<string, number[]>> {
  const runs = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < sides.length; j++) {
      const side = sides[(i + j) % sides.length]!;
      const value = await measure(side.port);
      runs.get(side.name)!.push(value);
      say(`round ${i + 1}/${rounds}: ${side.name} ${value.toFixed(1)}`);
    }
  }
  return runs;
}

/**
 * A row of per-round figures: the medians of each side, and the median of the per-round ratios
 * (the sides of one round ran back to back, so a ratio cancels the drift of a shared machine).
 */
function row(name: string, unit: string, ours: number[], baseline: number[], baselineName: string): Row {
  return {
    name,
    value: median(ours),
    unit,
    baseline: median(baseline),
    baselineName,
    ratio: pairedRatio(ours, baseline),
  };
}

/** Each baseline's name in a row. */
const LABELS: Record<string, string> = { direct: 'direct', mitmdump: 'mitmdump 8.1.1' };

/** Rows of the proxy beside every other side measured. */
function beside(what: string, unit: string, runs: Map<string, number[]>): Row[] {
  const ours = runs.get('wirelayer')!;
  return [...runs]
    .filter(([name]) => name !== 'wirelayer')
    .map(([name, base]) => row(`${what} (vs ${LABELS[name]})`, unit, ours, base, LABELS[name]!));
}

/** The resident set of a process, KiB (Linux). */
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Opens `n` sessions (a datagram each for UDP, so the flow exists), `parallel` at a time. */
async function openSessions(scheme: Scheme, port: number, n: number): Promise<Session[]> {
  const sessions: Session[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < n) {
      const s = await drivers[scheme]!.connect({
        host: HOST,
        port,
        rejectUnauthorized: false,
        connectTimeout: 10_000,
      });
      if (scheme === 'udp' && 'datagrams' in s) s.datagrams.send(Buffer.from('hello'));
      sessions.push(s);
    }
  };
  await Promise.all(Array.from({ length: 25 }, worker));
  return sessions;
}

/** RSS growth per session of a process while `n` sessions to `port` are held open, KiB. */
async function perFlow(pid: number, scheme: Scheme, port: number, n: number): Promise<number> {
  // warm up: code paths, caches and the first leaf certificate are not per-flow costs
  for (const s of await openSessions(scheme, port, 20)) await s.close();
  await new Promise((r) => setTimeout(r, 500));
  const before = rssKiB(pid);
  const sessions = await openSessions(scheme, port, n);
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKiB(pid);
  await Promise.all(sessions.map((s) => s.close()));
  return (after - before) / n;
}

/** Runs every proxy measure; about 3 minutes with the defaults. */
export async function runProxyBench(options: ProxyBenchOptions = {}): Promise<Row[]> {
  const seconds = options.seconds ?? 3;
  const rounds = options.rounds ?? 3;
  const flows = options.flows ?? 1000;
  const say = options.progress ?? (() => {});
  const withMitmdump = options.mitmdump ?? true;
  if (withMitmdump && onPath('mitmdump') === null)
    throw new Error('bench proxy compares with mitmdump, which is not on PATH: apt-get install mitmproxy');
  const dir = mkdtempSync(join(tmpdir(), 'wirelayer-bench-proxy-'));
  const pki = makePki(dir);
  const children: ChildProcess[] = [];
  const listeners: Listener[] = [];
  const child = async (made: Promise<Child>): Promise<Child> => {
    const c = await made;
    children.push(c.child);
    return c;
  };
  const listener = async (made: Promise<Listener>): Promise<Listener> => {
    const l = await made;
    listeners.push(l);
    return l;
  };
  const rows: Row[] = [];
  try {
    // TLS: direct, through us, through mitmdump
    const tlsSink = await listener(upstream('tls', pki, 'discard'));
    const tlsEcho = await listener(upstream('tls', pki, 'echo'));
    const sinkPort = tlsSink.address[1];
    const echoPort = tlsEcho.address[1];
    const ours = [
      await child(wirelayerProxy('tls', sinkPort, pki, dir)),
      await child(wirelayerProxy('tls', echoPort, pki, dir)),
    ];
    const mitm = withMitmdump
      ? [await child(mitmdump(sinkPort, dir)), await child(mitmdump(echoPort, dir))]
      : [];
    say('tls bulk');
    const tb = await compare(
      [
        { name: 'direct', port: sinkPort },
        { name: 'wirelayer', port: ours[0]!.port },
        ...(withMitmdump ? [{ name: 'mitmdump', port: mitm[0]!.port }] : []),
      ],
      bulk('tls', seconds),
      rounds,
      say,
    );
    rows.push(...beside('intercepted TLS bulk', 'MB/s', tb));
    say('tls handshakes');
    const th = await compare(
      [
        { name: 'direct', port: echoPort },
        { name: 'wirelayer', port: ours[1]!.port },
        ...(withMitmdump ? [{ name: 'mitmdump', port: mitm[1]!.port }] : []),
      ],
      handshakes(seconds),
      rounds,
      say,
    );
    rows.push(...beside('intercepted TLS handshakes/s', 'handshakes/s', th));
    for (const c of [...ours, ...mitm]) await stop(c.child);

    say('quic bulk');
    const quicSink = await listener(upstream('quic', pki, 'discard'));
    const quicProxy = await child(wirelayerProxy('quic', quicSink.address[1], pki, dir));
    const qb = await compare(
      [
        { name: 'direct', port: quicSink.address[1] },
        { name: 'wirelayer', port: quicProxy.port },
      ],
      bulk('quic', seconds),
      rounds,
      say,
    );
    rows.push(...beside('intercepted QUIC bulk, one stream', 'MB/s', qb));
    await stop(quicProxy.child);

    say('dtls records');
    const dtlsEcho = await listener(upstream('dtls', pki, 'echo'));
    const dtlsProxy = await child(wirelayerProxy('dtls', dtlsEcho.address[1], pki, dir));
    const dr = await compare(
      [
        { name: 'direct', port: dtlsEcho.address[1] },
        { name: 'wirelayer', port: dtlsProxy.port },
      ],
      records(seconds),
      rounds,
      say,
    );
    rows.push(...beside('intercepted DTLS 1200 B echo, 16 in flight', 'records/s', dr));
    await stop(dtlsProxy.child);

    for (const scheme of ['tls', 'udp', 'dtls', 'quic'] as const) {
      say(`memory: ${flows} idle ${scheme} flows`);
      const up = await listener(upstream(scheme, pki, 'echo'));
      const proxy = await child(wirelayerProxy(scheme, up.address[1], pki, dir));
      const plain = await child(wirelayerListen(scheme, pki, dir));
      const proxied = [await perFlow(proxy.child.pid!, scheme, proxy.port, flows)];
      const alone = [await perFlow(plain.child.pid!, scheme, plain.port, flows)];
      rows.push(
        row(
          `idle intercepted ${scheme} flow, RSS (vs a listener's session; lower is better)`,
          'KiB',
          proxied,
          alone,
          'wirelayer listen',
        ),
      );
      await stop(proxy.child);
      await stop(plain.child);
    }
  } finally {
    for (const c of children) await stop(c);
    for (const l of listeners) await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
