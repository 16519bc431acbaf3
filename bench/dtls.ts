/**
 * The DTLS driver on loopback: application records per second and MB/s from our client to our
 * listener (1200-byte records, one direction), beside, in the same run:
 * - the bare engine pair over the same kind of loopback dgram sockets (what the driver adds:
 *   flows, channels, events; the target is >= 0.90x),
 * - the bare engine pair in one process, no sockets (what the kernel's UDP path costs),
 * - werift-dtls (pure TypeScript DTLS) pair in one process, as the pure-JS reference,
 * and full handshakes per second through the driver beside the in-memory engine pair.
 *
 * UDP drops when the receiver falls behind, so senders keep a window of records in flight
 * (counted at the receiver, which lives in the same process); rounds alternate and the median is
 * kept, as the machine is shared.
 *
 * Run: `npm run build && node dist/bench/dtls.js` (prints a Markdown table), or import
 * `runDtlsBench()` from the bench runner.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CertificateAuthority } from '../src/certs/index.js';
import type { DatagramBackend } from '../src/transport/datagram/index.js';
import { DtlsContext, type DtlsSession, DtlsStatus } from '../src/transport/dtls/engine.js';
import { DtlsListener, dtls } from '../src/transport/dtls/index.js';
import { handshakeInMemory } from './dtls-engine.js';
import { formatTable, median, progress, type Row } from './report.js';

const HOST = '127.0.0.1';
const RECORD = 1200;
const WINDOW = 128;
const CIPHER = 'ECDHE-RSA-AES256-GCM-SHA384';
const BUFFERS = { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 };

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Sends for `ms` with at most WINDOW records in flight; a window that makes no progress for 5 ms
 * is written off as lost (UDP). Returns records delivered per second.
 */
async function pump(send: () => void, delivered: () => number, ms: number): Promise<number> {
  const base = delivered();
  let sent = 0;
  let lost = 0;
  let last = base;
  let stalledSince = performance.now();
  const start = performance.now();
  while (performance.now() - start < ms) {
    while (sent - (delivered() - base) - lost < WINDOW) {
      send();
      sent++;
    }
    await tick();
    const now = performance.now();
    if (delivered() !== last) {
      last = delivered();
      stalledSince = now;
    } else if (now - stalledSince > 5) {
      lost = sent - (delivered() - base);
      stalledSince = now;
    }
  }
  return (delivered() - base) / ((performance.now() - start) / 1000);
}

interface Contexts {
  server: DtlsContext;
  client: DtlsContext;
}

/** Records through the engine pair in memory. */
function engineMemoryRecords(client: DtlsSession, server: DtlsSession, ms: number): number {
  const payload = randomBytes(RECORD);
  let records = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < 64; i++) client.write(payload);
    const out = client.takeOutgoing() ?? [];
    for (let i = 0; i < out.length; i++) server.receive(out[i] as Buffer);
    records += server.readAll()?.length ?? 0;
  }
  return records / ((performance.now() - start) / 1000);
}

/** The engine pair over two loopback dgram sockets: no driver, the least a socket path costs. */
class EngineOverDgram {
  received = 0;
  private constructor(
    readonly client: DtlsSession,
    readonly server: DtlsSession,
    readonly a: Socket,
    readonly b: Socket,
  ) {
    const port = b.address().port;
    b.on('message', (d: Buffer) => {
      if (server.receive(d) & DtlsStatus.DATA) this.received += server.readAll()?.length ?? 0;
    });
    this.send = (payload: Uint8Array): void => {
      if (client.write(payload) & DtlsStatus.OUTGOING) {
        const out = client.takeOutgoing() ?? [];
        for (let i = 0; i < out.length; i++) a.send(out[i] as Buffer, port, HOST);
      }
    };
  }
  send: (payload: Uint8Array) => void;

  static async open(ctx: Contexts): Promise<EngineOverDgram> {
    const a = createSocket({ type: 'udp4', ...BUFFERS });
    const b = createSocket({ type: 'udp4', ...BUFFERS });
    a.bind(0, HOST);
    b.bind(0, HOST);
    await Promise.all([once(a, 'listening'), once(b, 'listening')]);
    const client = ctx.client.createSession({ servername: 'localhost' });
    const server = ctx.server.createSession({ peer: '10.0.0.1:1' });
    handshakeInMemory(client, server);
    return new EngineOverDgram(client, server, a, b);
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.server.destroy();
    await Promise.all([
      new Promise<void>((r) => this.a.close(() => r())),
      new Promise<void>((r) => this.b.close(() => r())),
    ]);
  }
}

/**
 * Our client -> our listener over loopback; the listener counts records. `backend`: the datagram
 * socket under both (default: the native one where it loads).
 */
async function openDriverPair(
  cert: { cert: string; key: string },
  backend?: DatagramBackend,
): Promise<{
  backend: DatagramBackend | 'tunnel';
  send: (p: Uint8Array) => void;
  received: () => number;
  cipher: string | null;
  close: () => Promise<void>;
}> {
  const listener = await DtlsListener.listen({
    host: HOST,
    ...cert,
    ciphers: CIPHER,
    ...BUFFERS,
    datagramBackend: backend,
  });
  let received = 0;
  listener.on('session', (s) => s.datagrams.on('datagram', () => received++));
  const out = await dtls.connect({
    host: HOST,
    port: listener.address[1],
    rejectUnauthorized: false,
    ...BUFFERS,
    datagramBackend: backend,
  });
  return {
    backend: listener.datagramBackend,
    send: (p) => out.datagrams.send(p),
    received: () => received,
    cipher: out.conn.cipher,
    close: async () => {
      await out.close();
      await listener.close();
    },
  };
}

/** werift-dtls client and server in one process over an in-memory transport, if installed. */
async function weriftRecords(
  cert: { cert: string; key: string },
  ms: number,
  rounds: number,
): Promise<number[] | string> {
  // 0.5.8's package.json names lib/index.js as its main, which it does not ship: import the entry itself
  let werift: typeof import('werift-dtls/lib/dtls/src/index.js');
  try {
    werift = await import('werift-dtls/lib/dtls/src/index.js');
  } catch (err) {
    return `werift-dtls not installed (${(err as Error).message})`;
  }
  type Transport = ConstructorParameters<typeof werift.DtlsClient>[0]['transport'];
  const link = (): [Transport, Transport] => {
    const ends: Transport[] = [];
    const make = (i: number): Transport => ({
      type: 'memory',
      address: { address: HOST, family: 'IPv4', port: 1 + i },
      closed: false,
      onData: () => undefined,
      send: (data: Buffer) => {
        const peer = ends[1 - i];
        // async, as a socket is: the handshake code awaits its sends
        if (peer) queueMicrotask(() => peer.onData(data, [HOST, 1 + i] as never));
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    });
    ends.push(make(0), make(1));
    return [ends[0]!, ends[1]!];
  };
  const [ct, st] = link();
  const server = new werift.DtlsServer({
    transport: st,
    cert: cert.cert,
    key: cert.key,
    signatureHash: { hash: 4, signature: 1 },
  });
  const client = new werift.DtlsClient({
    transport: ct,
    cert: cert.cert,
    key: cert.key,
    signatureHash: { hash: 4, signature: 1 },
  });
  let received = 0;
  server.onData.subscribe(() => {
    received++;
  });
  const connected = new Promise<void>((r) => client.onConnect.subscribe(() => r()));
  void client.connect();
  await Promise.race([
    connected,
    new Promise((_, reject) => setTimeout(() => reject(new Error('werift handshake timed out')), 5000)),
  ]);
  const payload = randomBytes(RECORD);
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    results.push(
      await pump(
        () => void client.send(payload),
        () => received,
        ms,
      ),
    );
  }
  client.close();
  server.close();
  return results;
}

async function driverHandshakes(cert: { cert: string; key: string }, ms: number): Promise<number> {
  const listener = await DtlsListener.listen({ host: HOST, ...cert, ciphers: CIPHER });
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    const s = await dtls.connect({ host: HOST, port: listener.address[1], rejectUnauthorized: false });
    await s.close();
    n++;
  }
  const rate = n / ((performance.now() - start) / 1000);
  await listener.close();
  return rate;
}

function memoryHandshakes(ctx: Contexts, ms: number): number {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    const c = ctx.client.createSession({ servername: 'localhost' });
    const s = ctx.server.createSession({ peer: `10.0.0.1:${n & 0xffff}` });
    handshakeInMemory(c, s);
    c.destroy();
    s.destroy();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

/** Runs the benchmark (about 15 s) and returns its rows. */
export async function runDtlsBench(options: { roundMs?: number; rounds?: number } = {}): Promise<Row[]> {
  const roundMs = options.roundMs ?? 700;
  const rounds = options.rounds ?? 3;
  const leaf = CertificateAuthority.create({ type: 'rsa' }).issue('localhost', { keyType: 'rsa' });
  const cert = { cert: leaf.certPem, key: leaf.keyPem };
  const ctx: Contexts = {
    server: new DtlsContext({ role: 'server', ...cert, ciphers: CIPHER }),
    client: new DtlsContext({ role: 'client', rejectUnauthorized: false }),
  };
  const payload = randomBytes(RECORD);

  progress('dtls: driver (native socket and node:dgram) vs engine over dgram vs engine in memory');
  const driver = await openDriverPair(cert);
  const onDgram = await openDriverPair(cert, 'dgram');
  const raw = await EngineOverDgram.open(ctx);
  const memClient = ctx.client.createSession({ servername: 'localhost' });
  const memServer = ctx.server.createSession({ peer: '10.0.0.2:1' });
  handshakeInMemory(memClient, memServer);
  await pump(() => driver.send(payload), driver.received, 150); // warm-up
  await pump(() => onDgram.send(payload), onDgram.received, 150);
  await pump(
    () => raw.send(payload),
    () => raw.received,
    150,
  );
  const ours: number[] = [];
  const oursOnDgram: number[] = [];
  const overDgram: number[] = [];
  const inMemory: number[] = [];
  for (let r = 0; r < rounds; r++) {
    ours.push(await pump(() => driver.send(payload), driver.received, roundMs));
    oursOnDgram.push(await pump(() => onDgram.send(payload), onDgram.received, roundMs));
    overDgram.push(
      await pump(
        () => raw.send(payload),
        () => raw.received,
        roundMs,
      ),
    );
    inMemory.push(engineMemoryRecords(memClient, memServer, roundMs));
  }
  const cipher = driver.cipher;
  const backend = driver.backend;
  await driver.close();
  await onDgram.close();
  await raw.close();
  memClient.destroy();
  memServer.destroy();

  progress('dtls: werift-dtls in memory');
  const werift = await weriftRecords(cert, roundMs, rounds).catch(
    (err: unknown) => `werift-dtls failed: ${(err as Error).message}`,
  );

  progress('dtls: handshakes');
  const hsDriver: number[] = [];
  const hsMemory: number[] = [];
  for (let r = 0; r < rounds; r++) {
    hsDriver.push(await driverHandshakes(cert, roundMs));
    hsMemory.push(memoryHandshakes(ctx, roundMs));
  }
  ctx.server.destroy();
  ctx.client.destroy();

  const v = median(ours);
  const mb = (records: number): number => (records * RECORD) / 1e6;
  const vs = (
    name: string,
    base: number,
    baselineName: string,
    unit = 'records/s',
    scale = (x: number) => x,
  ): Row => ({
    name,
    value: scale(v),
    unit,
    baseline: scale(base),
    baselineName,
    ratio: v / base,
  });
  const rows: Row[] = [
    vs(
      `driver (${backend} socket): client -> listener, ${RECORD} B records (${cipher})`,
      median(overDgram),
      'engine pair over node:dgram',
    ),
    vs(
      `driver (${backend} socket): app data, ${RECORD} B records`,
      median(overDgram),
      'engine pair over node:dgram',
      'MB/s',
      mb,
    ),
    vs(
      `driver (${backend} socket): client -> listener, ${RECORD} B records`,
      median(inMemory),
      'engine pair in memory, no sockets',
    ),
    vs(
      `driver (${backend} socket): client -> listener, ${RECORD} B records`,
      median(oursOnDgram),
      'the driver on node:dgram',
    ),
    {
      name: `driver (node:dgram socket): client -> listener, ${RECORD} B records`,
      value: median(oursOnDgram),
      unit: 'records/s',
      baseline: median(inMemory),
      baselineName: 'engine pair in memory, no sockets',
      ratio: median(oursOnDgram) / median(inMemory),
    },
  ];
  if (typeof werift === 'string') {
    progress(`dtls: ${werift}`);
  } else {
    const w = median(werift);
    rows.push({
      name: `engine in memory vs pure JS, ${RECORD} B records`,
      value: median(inMemory),
      unit: 'records/s',
      baseline: w,
      baselineName: 'werift-dtls in memory (AES-128-GCM)',
      ratio: median(inMemory) / w,
    });
    rows.push({
      name: `driver over loopback vs pure JS in memory, ${RECORD} B records`,
      value: v,
      unit: 'records/s',
      baseline: w,
      baselineName: 'werift-dtls in memory (AES-128-GCM)',
      ratio: v / w,
    });
  }
  const hs = median(hsDriver);
  const hsm = median(hsMemory);
  rows.push({
    name: 'full handshakes, connect+close (cookie exchange, ECDHE-RSA-2048)',
    value: hs,
    unit: 'handshakes/s',
    baseline: hsm,
    baselineName: 'engine pair in memory',
    ratio: hs / hsm,
  });
  return rows;
}

// Run directly (node dist/bench/dtls.js): print the table.
if (process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  runDtlsBench().then(
    (rows) => console.log(formatTable('DTLS driver (loopback)', rows)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
