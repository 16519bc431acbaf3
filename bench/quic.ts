/**
 * The QUIC driver beside the raw binding, in the same run: bulk throughput over one stream
 * (the driver: endpoint routing, sessions, Duplex streams, the model) against a minimal loop
 * that drives the same quiche binding with the same settings over two connected `dgram`
 * sockets (no routing, no model, no streams API), and handshakes per second the same way.
 * Rounds alternate ours/baseline and medians are reported; every measurement is bounded.
 *
 *   node dist/bench/quic.js [--mb N] [--rounds N]
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../src/certs/index.js';
import { type DatagramBackend, datagramBackend } from '../src/transport/datagram/index.js';
import {
  type HostPort,
  type QuicheConfig,
  type QuicheConnection,
  quiche,
} from '../src/transport/quic/binding.js';
import { newCid } from '../src/transport/quic/cid.js';
import { applyEngineSettings, MAX_SEND_UDP_PAYLOAD } from '../src/transport/quic/config.js';
import { quic } from '../src/transport/quic/index.js';
import { formatTable, median, progress, type Row } from './report.js';

const HOST = '127.0.0.1';
const ALPN = ['bench'];
const CHUNK = 64 * 1024;
/** Datagrams sent per flush before yielding, as the driver's endpoint does. */
const MAX_BURST = 64;
/** No single measurement runs longer than this. */
const MEASURE_CAP_MS = 20_000;

/**
 * The listener's certificate, issued by a throwaway CA on first use: benchmarks ship in the
 * package, test fixtures do not.
 */
let leaf: { cert: string; key: string } | null = null;
function serverCert(): { cert: string; key: string } {
  if (leaf) return leaf;
  const issued = CertificateAuthority.create().issue('localhost', { altNames: [HOST, '::1'] });
  leaf = { cert: issued.certPem, key: issued.keyPem };
  return leaf;
}
const SETTINGS = { alpn: ALPN, idleTimeoutMs: 30_000, activeCidLimit: 2, keylog: false };

const payload = randomBytes(1024 * 1024);

/** Waits for `done`, at most MEASURE_CAP_MS (and leaves no timer behind). */
async function capped(done: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, MEASURE_CAP_MS)))]);
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// The baseline: the binding driven directly, one engine per connected socket.

class RawPeer {
  readonly recvInfo: { from: HostPort; to: HostPort };
  #slab = Buffer.allocUnsafe(128 * 1024);
  #used = 0;
  #immediate: NodeJS.Immediate | null = null;
  #timer: NodeJS.Timeout | null = null;
  onFlush: (() => void) | null = null;

  constructor(
    readonly socket: Socket,
    readonly engine: QuicheConnection,
    local: HostPort,
    remote: HostPort,
  ) {
    this.recvInfo = { from: remote, to: local };
    socket.on('message', (msg: Buffer) => {
      try {
        engine.recv(msg, this.recvInfo);
      } catch {
        // dropped packet
      }
      this.schedule();
    });
  }

  schedule(): void {
    this.#immediate ??= setImmediate(this.flush);
  }

  readonly flush = (): void => {
    this.#immediate = null;
    this.onFlush?.();
    const engine = this.engine;
    // the driver's burst: past it, yield so ACKs get in (unbounded bursts overflow the socket
    // buffers on a busy machine and collapse into retransmissions)
    for (let burst = 0; ; burst++) {
      if (burst === MAX_BURST) {
        this.schedule();
        break;
      }
      if (this.#used + MAX_SEND_UDP_PAYLOAD > this.#slab.length) {
        this.#slab = Buffer.allocUnsafe(128 * 1024);
        this.#used = 0;
      }
      const out = this.#slab.subarray(this.#used, this.#used + MAX_SEND_UDP_PAYLOAD);
      const sent = engine.send(out);
      if (sent === null) break;
      this.#used += (sent[0] + 7) & ~7;
      this.socket.send(out.subarray(0, sent[0]));
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    const t = engine.timeout();
    this.#timer =
      t === null
        ? null
        : setTimeout(() => {
            this.#timer = null;
            engine.onTimeout();
            this.flush();
          }, t);
  };

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.socket.close();
  }
}

async function connectedPair(): Promise<[Socket, Socket]> {
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  a.bind(0, HOST);
  b.bind(0, HOST);
  await Promise.all([once(a, 'listening'), once(b, 'listening')]);
  for (const s of [a, b]) {
    s.setRecvBufferSize(4 * 1024 * 1024);
    s.setSendBufferSize(4 * 1024 * 1024);
  }
  a.connect(b.address().port, HOST);
  b.connect(a.address().port, HOST);
  await Promise.all([once(a, 'connect'), once(b, 'connect')]);
  return [a, b];
}

let serverConfig: QuicheConfig | null = null;
let clientConfig: QuicheConfig | null = null;

/** A raw client/server pair, handshake done. */
async function rawConnection(): Promise<{ client: RawPeer; server: RawPeer }> {
  const q = quiche();
  const { cert, key } = serverCert();
  serverConfig ??= applyEngineSettings(
    q.Config.withBoringSslCtx(false, false, null, [Buffer.from(key)], [Buffer.from(cert)], null),
    SETTINGS,
  );
  clientConfig ??= applyEngineSettings(
    q.Config.withBoringSslCtx(false, false, null, null, null, null),
    SETTINGS,
  );
  const [cs, ss] = await connectedPair();
  const cAddr: HostPort = { host: HOST, port: cs.address().port };
  const sAddr: HostPort = { host: HOST, port: ss.address().port };
  const clientEngine = q.Connection.connect('localhost', newCid(), cAddr, sAddr, clientConfig);
  const client = new RawPeer(cs, clientEngine, cAddr, sAddr);
  let server: RawPeer | null = null;
  // the server engine is made on the first datagram, as a server would
  const first = (msg: Buffer): void => {
    const engine = q.Connection.accept(newCid(), null, sAddr, cAddr, serverConfig!);
    server = new RawPeer(ss, engine, sAddr, cAddr);
    engine.recv(msg, server.recvInfo);
    server.schedule();
  };
  ss.once('message', first);
  client.flush();
  const deadline = Date.now() + 5000;
  while (!(clientEngine.isEstablished() && server !== null && (server as RawPeer).engine.isEstablished())) {
    if (Date.now() > deadline) throw new Error('raw handshake did not complete');
    await new Promise((r) => setImmediate(r));
  }
  return { client, server: server! };
}

/** MB/s of `bytes` over stream 0, raw. */
async function rawBulk(bytes: number): Promise<number> {
  const { client, server } = await rawConnection();
  const scratch = Buffer.allocUnsafe(64 * 1024);
  let received = 0;
  let sent = 0;
  let finished: (() => void) | null = null;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  server.onFlush = () => {
    const engine = server.engine;
    for (const id of engine.readable()) {
      for (let r = engine.streamRecv(id, scratch); r !== null; r = engine.streamRecv(id, scratch)) {
        received += r[0];
        if (r[1] || received >= bytes) finished?.();
      }
    }
  };
  client.onFlush = () => {
    const engine = client.engine;
    while (sent < bytes) {
      const at = sent % payload.length;
      const chunk = payload.subarray(at, Math.min(at + CHUNK, payload.length, at + bytes - sent));
      const n = engine.streamSend(0, chunk, false) ?? 0;
      sent += n;
      if (n < chunk.length) break;
    }
  };
  const t0 = performance.now();
  client.flush();
  await capped(done);
  const seconds = (performance.now() - t0) / 1000;
  client.close();
  server.close();
  return received / seconds / 1e6;
}

/** Handshakes per second, raw: `count` sequential connections. */
async function rawHandshakes(count: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const { client, server } = await rawConnection();
    client.close();
    server.close();
  }
  return count / ((performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------------------------------------
// Ours: the driver, end to end.

async function oursBulk(bytes: number, backend?: DatagramBackend): Promise<number> {
  const listener = await quic.listen({
    host: HOST,
    ...serverCert(),
    ALPNProtocols: ALPN,
    datagramBackend: backend,
  });
  let received = 0;
  let finished: (() => void) | null = null;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  listener.on('session', (session) => {
    session.stream.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= bytes) finished?.();
    });
  });
  const out = await quic.connect({
    host: HOST,
    port: listener.address[1],
    ALPNProtocols: ALPN,
    rejectUnauthorized: false,
    datagramBackend: backend,
  });
  const t0 = performance.now();
  const writing = (async () => {
    for (let sent = 0; sent < bytes; ) {
      const at = sent % payload.length;
      const chunk = payload.subarray(at, Math.min(at + CHUNK, payload.length, at + bytes - sent));
      sent += chunk.length;
      if (!out.stream.write(chunk)) await once(out.stream, 'drain');
      if (performance.now() - t0 > MEASURE_CAP_MS) break;
    }
  })();
  await capped(done);
  const seconds = (performance.now() - t0) / 1000;
  await writing;
  out.destroy();
  await listener.close();
  return received / seconds / 1e6;
}

async function oursHandshakes(count: number, backend?: DatagramBackend): Promise<number> {
  const listener = await quic.listen({
    host: HOST,
    ...serverCert(),
    ALPNProtocols: ALPN,
    datagramBackend: backend,
  });
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const out = await quic.connect({
      host: HOST,
      port: listener.address[1],
      ALPNProtocols: ALPN,
      rejectUnauthorized: false,
      datagramBackend: backend,
    });
    out.destroy();
  }
  const rate = count / ((performance.now() - t0) / 1000);
  await listener.close();
  return rate;
}

// ---------------------------------------------------------------------------------------------

export interface QuicBenchOptions {
  /** Megabytes per bulk measurement. */
  mb?: number;
  /** Handshakes per handshake measurement. */
  handshakes?: number;
  rounds?: number;
}

/**
 * The rows: bulk MB/s and handshakes/s, the driver on its default socket (native on Linux) and
 * on node:dgram, each beside the raw binding loop over node:dgram.
 */
export async function runQuicBench(options: QuicBenchOptions = {}): Promise<Row[]> {
  const bytes = (options.mb ?? 64) * 1024 * 1024;
  const handshakes = options.handshakes ?? 100;
  const rounds = options.rounds ?? 5;
  const native = datagramBackend();
  const bulk = { ours: [] as number[], dgram: [] as number[], raw: [] as number[] };
  const hs = { ours: [] as number[], dgram: [] as number[], raw: [] as number[] };
  // warm up every path (JIT, configs, the binding)
  await oursBulk(4 * 1024 * 1024);
  await oursBulk(4 * 1024 * 1024, 'dgram');
  await rawBulk(4 * 1024 * 1024);
  for (let i = 0; i < rounds; i++) {
    // the order rotates, so drift on a shared machine favours none
    const order = [0, 1, 2].map((k) => (k + i) % 3);
    progress(`quic round ${i + 1}/${rounds}: bulk`);
    for (const k of order) {
      if (k === 0) bulk.ours.push(await oursBulk(bytes));
      else if (k === 1) bulk.dgram.push(await oursBulk(bytes, 'dgram'));
      else bulk.raw.push(await rawBulk(bytes));
    }
    progress(`quic round ${i + 1}/${rounds}: handshakes`);
    for (const k of order) {
      if (k === 0) hs.ours.push(await oursHandshakes(handshakes));
      else if (k === 1) hs.dgram.push(await oursHandshakes(handshakes, 'dgram'));
      else hs.raw.push(await rawHandshakes(handshakes));
    }
  }
  const row = (name: string, unit: string, ours: number[], raw: number[]): Row => {
    const value = median(ours);
    const baseline = median(raw);
    return {
      name,
      value,
      unit,
      baseline,
      baselineName: 'raw quiche loop over node:dgram',
      ratio: value / baseline,
    };
  };
  const mb = bytes / 1024 / 1024;
  return [
    row(`bulk, one stream, ${mb} MB (driver on the ${native} socket)`, 'MB/s', bulk.ours, bulk.raw),
    row(`bulk, one stream, ${mb} MB (driver on node:dgram)`, 'MB/s', bulk.dgram, bulk.raw),
    row(
      `handshakes (sequential, ${handshakes} per round; ${native} socket)`,
      'handshakes/s',
      hs.ours,
      hs.raw,
    ),
    row(`handshakes (sequential, ${handshakes} per round; node:dgram)`, 'handshakes/s', hs.dgram, hs.raw),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { mb: { type: 'string' }, rounds: { type: 'string' }, handshakes: { type: 'string' } },
  });
  const rows = await runQuicBench({
    mb: values.mb ? Number(values.mb) : undefined,
    rounds: values.rounds ? Number(values.rounds) : undefined,
    handshakes: values.handshakes ? Number(values.handshakes) : undefined,
  });
  console.log(formatTable('QUIC driver vs the raw quiche loop', rows));
}
