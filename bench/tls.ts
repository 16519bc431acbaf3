/**
 * TLS driver benchmarks on loopback, each beside raw node:tls measured in the same run:
 * bulk throughput, handshakes per second, and the cost of a ClientHello hook that does nothing.
 * Rounds alternate between the two sides and the median is kept (the machine is shared).
 *
 * Run: `npm run build && node dist/bench/tls.js`.
 */
import { once } from 'node:events';
import { resolve } from 'node:path';
import {
  createSecureContext,
  type Server as RawServer,
  connect as rawConnect,
  createServer as rawCreateServer,
  type SecureContext,
} from 'node:tls';
import { pathToFileURL } from 'node:url';
import { CertificateAuthority } from '../src/certs/index.js';
import { type TlsListener, type TlsListenOptions, tls } from '../src/transport/tls/index.js';
import { formatTable, median, pairedRatio, type Row } from './report.js';

const HOST = '127.0.0.1';
/** One ECDSA P-256 leaf for 127.0.0.1 from a throwaway CA, the same on both sides; made on first use. */
let material: { cert: string; key: string; ca: string } | undefined;
function pki(): { cert: string; key: string; ca: string } {
  if (!material) {
    const ca = CertificateAuthority.create();
    const leaf = ca.issue(HOST);
    material = { cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem };
  }
  return material;
}

export interface TlsBenchOptions {
  /** Bytes sent per bulk round (default 32 MiB). */
  bulkBytes?: number;
  /** Handshakes per handshake round (default 150). */
  handshakes?: number;
  /** Paired rounds per measure (default 9); medians are reported. */
  rounds?: number;
}

/** A bulk sink: counts bytes until `total`, then resolves the round. */
interface Sink {
  port: number;
  expect(total: number): Promise<void>;
  close(): Promise<void>;
}

async function ourSink(options: Partial<TlsListenOptions> = {}): Promise<Sink & { listener: TlsListener }> {
  const listener = await tls.listen({ host: HOST, cert: pki().cert, key: pki().key, ...options });
  let pending: { total: number; got: number; resolve: () => void } | null = null;
  listener.on('session', (s) => {
    s.stream.on('data', (chunk: Buffer) => {
      if (!pending) return;
      pending.got += chunk.length;
      if (pending.got >= pending.total) pending.resolve();
    });
    s.stream.on('error', () => undefined);
  });
  return {
    listener,
    port: listener.address[1],
    expect: (total) =>
      new Promise<void>((resolve) => {
        pending = { total, got: 0, resolve };
      }),
    close: () => listener.close(),
  };
}

async function rawSink(): Promise<Sink & { server: RawServer }> {
  const server = rawCreateServer({ cert: pki().cert, key: pki().key });
  let pending: { total: number; got: number; resolve: () => void } | null = null;
  server.on('secureConnection', (s) => {
    s.on('data', (chunk: Buffer) => {
      if (!pending) return;
      pending.got += chunk.length;
      if (pending.got >= pending.total) pending.resolve();
    });
    s.on('error', () => undefined);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as { port: number }).port,
    expect: (total) =>
      new Promise<void>((resolve) => {
        pending = { total, got: 0, resolve };
      }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A rate over wall-clock time and over the CPU time this process used (both ends run here). */
interface Rate {
  wall: number;
  cpu: number;
}

async function measure(work: number, run: () => Promise<void>): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { wall: work / wall, cpu: work / ((cpu.user + cpu.system) / 1e6) };
}

/** Writes `total` bytes in 64 KiB chunks, honouring backpressure, until the sink has them all: MB/s. */
function pump(stream: NodeJS.WritableStream, sink: Sink, total: number): Promise<Rate> {
  const chunk = Buffer.alloc(65536, 0x61);
  return measure(total / 1e6, async () => {
    const received = sink.expect(total);
    for (let sent = 0; sent < total; sent += chunk.length) {
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    await received;
  });
}

/**
 * Rows for a measure and its baseline over paired rounds: medians of the rates, and the median
 * of the per-round ratios (pairs cancel the drift of a shared machine). The CPU-time row is the
 * steadier one when other work competes for the cores.
 */
function rows(name: string, unit: string, ours: Rate[], base: Rate[]): Row[] {
  const out: Row[] = [];
  for (const kind of ['wall', 'cpu'] as const) {
    out.push({
      name: kind === 'wall' ? name : `${name}, per CPU-second`,
      value: median(ours.map((r) => r[kind])),
      unit,
      baseline: median(base.map((r) => r[kind])),
      ratio: pairedRatio(
        ours.map((r) => r[kind]),
        base.map((r) => r[kind]),
      ),
    });
  }
  return out;
}

async function bulk(bytes: number, rounds: number): Promise<Row[]> {
  const ours = await ourSink();
  const raw = await rawSink();
  const ourSession = await tls.connect({ host: HOST, port: ours.port, ca: pki().ca });
  const rawSocket = rawConnect({ host: HOST, port: raw.port, ca: pki().ca });
  await once(rawSocket, 'secureConnect');
  const a: Rate[] = [];
  const b: Rate[] = [];
  try {
    await pump(ourSession.stream, ours, bytes / 4);
    await pump(rawSocket, raw, bytes / 4);
    for (let i = 0; i < rounds; i++) {
      // alternate which side goes first
      if (i % 2 === 0) {
        a.push(await pump(ourSession.stream, ours, bytes));
        b.push(await pump(rawSocket, raw, bytes));
      } else {
        b.push(await pump(rawSocket, raw, bytes));
        a.push(await pump(ourSession.stream, ours, bytes));
      }
    }
  } finally {
    await ourSession.close();
    rawSocket.destroy();
    await ours.close();
    await raw.close();
  }
  return rows('tls bulk throughput (vs raw node:tls)', 'MB/s', a, b);
}

/** `n` handshakes, 4 at a time: handshakes per second. */
function handshakeRate(n: number, one: () => Promise<void>): Promise<Rate> {
  return measure(n, async () => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next++ < n) await one();
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  });
}

const ourHandshake = (port: number) => async (): Promise<void> => {
  const s = await tls.connect({ host: HOST, port, ca: pki().ca });
  s.destroy();
  await s.whenClosed();
};

/**
 * A raw node:tls dial. With `context`, one SecureContext reused across dials, as our client keeps
 * one per option set (the fair baseline); without, `tls.connect` as usually written, which builds
 * a context (parsing the CA list) per call.
 */
const rawHandshake = (port: number, context?: SecureContext) => async (): Promise<void> => {
  const s = rawConnect(
    context ? { host: HOST, port, secureContext: context } : { host: HOST, port, ca: pki().ca },
  );
  await once(s, 'secureConnect');
  s.destroy();
  await once(s, 'close');
};

async function handshakes(n: number, rounds: number): Promise<Row[]> {
  const plain = await ourSink();
  const hooked = await ourSink({ clientHello: () => undefined });
  const raw = await rawSink();
  const ours: Rate[] = [];
  const hook: Rate[] = [];
  const base: Rate[] = [];
  const perDial: Rate[] = [];
  const context = createSecureContext({ ca: pki().ca });
  try {
    // warm up all four
    for (const f of [
      ourHandshake(plain.port),
      ourHandshake(hooked.port),
      rawHandshake(raw.port, context),
      rawHandshake(raw.port),
    ])
      await handshakeRate(20, f);
    for (let i = 0; i < rounds; i++) {
      const order = [
        async () => ours.push(await handshakeRate(n, ourHandshake(plain.port))),
        async () => base.push(await handshakeRate(n, rawHandshake(raw.port, context))),
        async () => hook.push(await handshakeRate(n, ourHandshake(hooked.port))),
        async () => perDial.push(await handshakeRate(n, rawHandshake(raw.port))),
      ];
      // rotate the order round by round
      for (let j = 0; j < order.length; j++) await order[(i + j) % order.length]!();
    }
  } finally {
    await plain.close();
    await hooked.close();
    await raw.close();
  }
  return [
    ...rows(
      'tls handshakes/s, both ends ours (vs raw node:tls, one SecureContext reused)',
      'handshakes/s',
      ours,
      base,
    ),
    ...rows(
      'tls handshakes/s, both ends ours (vs raw node:tls, a SecureContext per dial)',
      'handshakes/s',
      ours,
      perDial,
    ),
    ...rows('tls handshakes/s with a no-op ClientHello hook (vs no hook)', 'handshakes/s', hook, ours),
  ];
}

/** Runs every TLS measure; bounded by the options (about 20 s with the defaults on an idle machine). */
export async function runTlsBench(options: TlsBenchOptions = {}): Promise<Row[]> {
  const rounds = options.rounds ?? 9;
  return [
    ...(await bulk(options.bulkBytes ?? 32 * 1024 * 1024, rounds)),
    ...(await handshakes(options.handshakes ?? 150, rounds)),
  ];
}

/** True when this module is the program (`node dist/bench/tls.js`). */
export function isMain(url: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && url === pathToFileURL(resolve(entry)).href;
}

if (isMain(import.meta.url)) {
  runTlsBench().then(
    (rows) => console.log(formatTable('TLS driver vs node:tls', rows)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
