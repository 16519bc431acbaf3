/**
 * `wirelayer bench load`: the load generator's own ceiling on loopback, beside iperf3 on the
 * same path, in the same run.
 *
 * - TCP, one connection, 128 KiB writes, one way: `wirelayer load --mode send` against our
 *   discard server, beside `iperf3 -c -l 128K` against `iperf3 -s` (bytes/s).
 * - UDP, 1200-byte datagrams, one way, as fast as the sender goes: `wirelayer load --mode send`
 *   beside `iperf3 -u -b 0 -l 1200`, both at the sender and as counted by the receiver; and
 *   beside a bare `node:dgram` loop (a connected socket, the same bursts), the ceiling of the
 *   socket layer under both.
 * - Echo round trips against C servers: UDP (64 B, one in flight) against `wirelayer listen
 *   --echo` and socat; TLS (100 B, 4 in flight) against `wirelayer listen --echo` and
 *   `openssl s_server -rev`.
 *
 * Each generator is its own process (the built CLI), as a user runs it; our receivers count in
 * this process. Rounds alternate ours and the baseline; medians are reported (the machine is
 * shared). Needs iperf3 (Debian package `iperf3`), socat and openssl.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '../src/connection/index.js';
import type { LoadRecord } from '../src/load/report.js';
import { serve } from '../src/load/serve.js';
import { drivers } from '../src/transport/index.js';
import type { AnySession, Listener } from '../src/transport/types.js';
import { onPath, output, start, stop } from './processes.js';
import { median, type Row } from './report.js';

const HOST = '127.0.0.1';
/** The built CLI beside this file (dist/bench/load.js -> dist/src/cli/main.js). */
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface LoadBenchOptions {
  /** Seconds per measurement; default 3. */
  seconds?: number;
  /** Measurements per side, medians reported; default 3. */
  rounds?: number;
  /** Progress lines (default none). */
  progress?: (line: string) => void;
}

/** `wirelayer load ... --json`: the summary. */
async function generator(args: readonly string[], seconds: number): Promise<LoadRecord> {
  const stdout = await output(process.execPath, [CLI, 'load', ...args, '--json'], (seconds + 30) * 1000);
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as LoadRecord;
}

/** Our discard server in this process, counting what it receives. */
async function discard(
  scheme: 'tcp' | 'udp',
): Promise<{ port: number; bytes(): number; datagrams(): number; close(): Promise<void> }> {
  let bytes = 0;
  let datagrams = 0;
  const listener: Listener = await drivers[scheme]!.listen({ host: HOST, port: 0 });
  listener.on('session', (session: AnySession<Client>) => {
    serve(session, 'discard');
    if ('stream' in session)
      session.stream.on('data', (d: Buffer) => {
        bytes += d.length;
      });
    else
      session.datagrams.on('datagram', (d: Uint8Array) => {
        datagrams++;
        bytes += d.byteLength;
      });
  });
  return {
    port: listener.address[1],
    bytes: () => bytes,
    datagrams: () => datagrams,
    close: () => listener.close(),
  };
}

interface IperfRun {
  /** Bytes/s (TCP, as received) or datagrams/s sent (UDP). */
  sent: number;
  /** UDP: datagrams/s the iperf3 server received. */
  received: number;
  /** The iperf3 client's CPU use (host_total). */
  cpu: number;
}

async function iperf(udp: boolean, seconds: number, port: number): Promise<IperfRun> {
  const server = await start(
    'iperf3',
    ['-s', '-1', '--forceflush', '-p', String(port), '-B', HOST],
    /Server listening/,
  );
  try {
    const args = ['-c', HOST, '-p', String(port), '-t', String(seconds), '-J'];
    args.push(...(udp ? ['-u', '-b', '0', '-l', '1200'] : ['-l', '128K']));
    const j = JSON.parse(await output('iperf3', args, (seconds + 30) * 1000)) as {
      end: {
        sum?: { packets: number; lost_packets: number; seconds: number };
        sum_sent: { packets?: number; seconds: number };
        sum_received: { bytes: number; seconds: number };
        cpu_utilization_percent: { host_total: number };
      };
    };
    const cpu = j.end.cpu_utilization_percent.host_total;
    if (!udp) return { sent: j.end.sum_received.bytes / j.end.sum_received.seconds, received: 0, cpu };
    const sum = j.end.sum!;
    return {
      sent: (j.end.sum_sent.packets ?? sum.packets) / j.end.sum_sent.seconds,
      received: (sum.packets - sum.lost_packets) / sum.seconds,
      cpu,
    };
  } finally {
    await stop(server.child);
  }
}

/** A bare node:dgram sender: a connected socket, bursts of 64 per event-loop turn, for `seconds`. */
const BARE_SENDER = `
import { createSocket } from 'node:dgram';
const [port, size, seconds] = process.argv.slice(1).map(Number);
const s = createSocket('udp4');
s.connect(port, '127.0.0.1');
s.on('connect', () => {
  const ring = Array.from({ length: 1024 }, () => Buffer.alloc(size, 0x78));
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const cpu = process.cpuUsage();
  const began = performance.now();
  const burst = () => {
    for (let i = 0; i < 64; i++) { const b = ring[n % 1024]; b.writeUInt32BE(n % 2 ** 32, 0); s.send(b); n++; }
    if (performance.now() < end) setImmediate(burst);
    else {
      const used = process.cpuUsage(cpu);
      const wall = performance.now() - began;
      console.log(JSON.stringify({ rate: n / (wall / 1000), cpu: ((used.user + used.system) / (wall * 1000)) * 100 }));
      s.close();
    }
  };
  burst();
});
`;

async function bareDgram(port: number, seconds: number): Promise<{ rate: number; cpu: number }> {
  const out = await output(
    process.execPath,
    ['--input-type=module', '-e', BARE_SENDER, String(port), '1200', String(seconds)],
    (seconds + 30) * 1000,
  );
  return JSON.parse(out.trim()) as { rate: number; cpu: number };
}

/** A port that was free a moment ago (iperf3, socat and s_server take no port 0 we could read back). */
async function port(kind: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const { createSocket } = await import('node:dgram');
    const socket = createSocket('udp4');
    socket.bind(0, HOST);
    await once(socket, 'listening');
    const found = socket.address().port;
    await new Promise<void>((r) => socket.close(() => r()));
    return found;
  }
  const { createServer } = await import('node:net');
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const found = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return found;
}

export async function runLoadBench(options: LoadBenchOptions = {}): Promise<Row[]> {
  const seconds = options.seconds ?? 3;
  const rounds = options.rounds ?? 3;
  const say = options.progress ?? (() => {});
  for (const tool of ['iperf3', 'socat', 'openssl']) {
    if (onPath(tool) === null)
      throw new Error(`bench load compares with ${tool}, which is not on PATH: apt-get install ${tool}`);
  }
  const s = String(seconds);
  const tcp = { ours: [] as number[], cpu: [] as number[], iperf: [] as number[], iperfCpu: [] as number[] };
  const udp = {
    ours: [] as number[],
    oursRx: [] as number[],
    cpu: [] as number[],
    iperf: [] as number[],
    iperfRx: [] as number[],
    iperfCpu: [] as number[],
    bare: [] as number[],
    bareRx: [] as number[],
    bareCpu: [] as number[],
  };
  const echo = { udp: [] as number[], socat: [] as number[], tls: [] as number[], openssl: [] as number[] };

  for (let round = 0; round < rounds; round++) {
    // which side goes first alternates, so drift on a shared machine favours neither
    const oursFirst = round % 2 === 0;
    const tcpOurs = async (): Promise<void> => {
      const server = await discard('tcp');
      const r = await generator(
        [`tcp://${HOST}:${server.port}`, '--mode', 'send', '--size', '128K', '--duration', s],
        seconds,
      );
      tcp.ours.push(r.bytes_per_s);
      tcp.cpu.push(r.cpu_percent);
      await server.close();
    };
    const tcpIperf = async (): Promise<void> => {
      const r = await iperf(false, seconds, await port());
      tcp.iperf.push(r.sent);
      tcp.iperfCpu.push(r.cpu);
    };
    const udpOurs = async (): Promise<void> => {
      const server = await discard('udp');
      const r = await generator(
        [`udp://${HOST}:${server.port}`, '--mode', 'send', '--size', '1200', '--duration', s],
        seconds,
      );
      udp.ours.push(r.messages_per_s);
      udp.oursRx.push(server.datagrams() / r.seconds);
      udp.cpu.push(r.cpu_percent);
      await server.close();
    };
    const udpIperf = async (): Promise<void> => {
      const r = await iperf(true, seconds, await port());
      udp.iperf.push(r.sent);
      udp.iperfRx.push(r.received);
      udp.iperfCpu.push(r.cpu);
    };
    const udpBare = async (): Promise<void> => {
      const server = await discard('udp');
      const r = await bareDgram(server.port, seconds);
      udp.bare.push(r.rate);
      udp.bareRx.push(server.datagrams() / seconds);
      udp.bareCpu.push(r.cpu);
      await server.close();
    };
    say(`round ${round + 1}/${rounds}: TCP`);
    for (const run of oursFirst ? [tcpOurs, tcpIperf] : [tcpIperf, tcpOurs]) await run();
    say(`round ${round + 1}/${rounds}: UDP`);
    for (const run of oursFirst ? [udpOurs, udpIperf, udpBare] : [udpBare, udpIperf, udpOurs]) await run();
    say(`round ${round + 1}/${rounds}: echo against wirelayer listen, socat, openssl s_server -rev`);
    await echoRound(echo, seconds, oursFirst);
  }

  const m = median;
  const rows: Row[] = [
    {
      name: `TCP send, 128 KiB writes, 1 connection (generator CPU ${m(tcp.cpu).toFixed(0)}%, iperf3 ${m(tcp.iperfCpu).toFixed(0)}%)`,
      value: m(tcp.ours) / 1e6,
      unit: 'MB/s',
      baseline: m(tcp.iperf) / 1e6,
      baselineName: 'iperf3',
      ratio: m(tcp.ours) / m(tcp.iperf),
    },
    {
      name: `UDP send, 1200 B, as fast as it goes: sent (generator CPU ${m(udp.cpu).toFixed(0)}%, iperf3 ${m(udp.iperfCpu).toFixed(0)}%)`,
      value: m(udp.ours),
      unit: 'dgram/s',
      baseline: m(udp.iperf),
      baselineName: 'iperf3 -u -b 0',
      ratio: m(udp.ours) / m(udp.iperf),
    },
    {
      name: 'UDP send, 1200 B: received (ours by our discard listener, iperf3 by its server)',
      value: m(udp.oursRx),
      unit: 'dgram/s',
      baseline: m(udp.iperfRx),
      baselineName: 'iperf3 -u -b 0',
      ratio: m(udp.oursRx) / m(udp.iperfRx),
    },
    {
      name: `UDP send, 1200 B: sent, beside a bare node:dgram loop (CPU ${m(udp.bareCpu).toFixed(0)}%; received ${Math.round(m(udp.bareRx)).toLocaleString('en-US')}/s)`,
      value: m(udp.ours),
      unit: 'dgram/s',
      baseline: m(udp.bare),
      baselineName: 'node:dgram',
      ratio: m(udp.ours) / m(udp.bare),
    },
    {
      name: 'UDP echo, 64 B, 1 in flight: against wirelayer listen --echo',
      value: m(echo.udp),
      unit: 'rt/s',
      baseline: m(echo.socat),
      baselineName: 'against socat PIPE',
      ratio: m(echo.udp) / m(echo.socat),
    },
    {
      name: 'TLS echo, 100 B, 4 in flight: against wirelayer listen --echo',
      value: m(echo.tls),
      unit: 'rt/s',
      baseline: m(echo.openssl),
      baselineName: 'against openssl s_server -rev',
      ratio: m(echo.tls) / m(echo.openssl),
    },
  ];
  return rows;
}

/** The generator against our listen (a process of its own) and against a C server. */
async function echoRound(
  echo: { udp: number[]; socat: number[]; tls: number[]; openssl: number[] },
  seconds: number,
  oursFirst: boolean,
): Promise<void> {
  const s = String(seconds);
  const udpArgs = ['--size', '64', '--duration', s];
  const tlsArgs = ['--insecure', '--size', '100', '--window', '4', '--duration', s];
  const ours = async (scheme: 'udp' | 'tls', args: string[], into: number[]): Promise<void> => {
    const listen = await start(
      process.execPath,
      [CLI, 'listen', `${scheme}://${HOST}:0`, '--echo'],
      /listening on \w+:\/\/[\d.]+:(\d+)/,
    );
    try {
      into.push(
        (await generator([`${scheme}://${HOST}:${listen.match[1]}`, ...args], seconds)).messages_per_s,
      );
    } finally {
      await stop(listen.child);
    }
  };
  const socat = async (): Promise<void> => {
    const p = await port('udp');
    const peer = await start(
      'socat',
      ['-d', '-d', '-T', '2', `UDP4-LISTEN:${p},bind=${HOST},reuseaddr,fork`, 'PIPE'],
      /listening on/,
      true,
    );
    try {
      echo.socat.push((await generator([`udp://${HOST}:${p}`, ...udpArgs], seconds)).messages_per_s);
    } finally {
      await stop(peer.child);
    }
  };
  const openssl = async (): Promise<void> => {
    const p = await port();
    const cert = await tlsIdentity();
    const peer = await start(
      'openssl',
      ['s_server', '-accept', `${HOST}:${p}`, '-cert', cert.cert, '-key', cert.key, '-rev', '-quiet'],
      null,
    );
    try {
      await waitForTcp(p);
      echo.openssl.push((await generator([`tls://${HOST}:${p}`, ...tlsArgs], seconds)).messages_per_s);
    } finally {
      await stop(peer.child);
    }
  };
  const pairs: [() => Promise<void>, () => Promise<void>][] = [
    [() => ours('udp', udpArgs, echo.udp), socat],
    [() => ours('tls', tlsArgs, echo.tls), openssl],
  ];
  for (const [a, b] of pairs) for (const run of oursFirst ? [a, b] : [b, a]) await run();
}

/** A certificate and key for openssl s_server, made once (the wirelayer CA issues it). */
let identity: Promise<{ cert: string; key: string }> | null = null;
function tlsIdentity(): Promise<{ cert: string; key: string }> {
  identity ??= (async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { CertificateAuthority } = await import('../src/certs/ca.js');
    const dir = mkdtempSync(join(tmpdir(), 'wirelayer-bench-load-'));
    const ca = await CertificateAuthority.load(dir);
    const leaf = ca.issue('localhost');
    const cert = join(dir, 'leaf.pem');
    const key = join(dir, 'leaf-key.pem');
    writeFileSync(cert, leaf.certPem);
    writeFileSync(key, leaf.keyPem);
    return { cert, key };
  })();
  return identity;
}

async function waitForTcp(p: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(p, HOST, () => {
        sock.destroy();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`openssl s_server did not listen on ${p}`);
}
