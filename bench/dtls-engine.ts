/**
 * DTLS engine, engine <-> engine in one process (no sockets): application records per second
 * and MB/s with 1200-byte records, and full handshakes per second (cookie exchange included).
 * The records run beside a baseline measured in the same run: node:crypto AES-256-GCM sealing
 * and opening the same records (the cipher the engine negotiates here), i.e. what a DTLS
 * record layer written in JavaScript could at best do. Rounds alternate and the median is
 * kept, as the machine is shared.
 *
 * Run: `npm run build && node dist/bench/dtls-engine.js` (prints a Markdown table), or import
 * `runDtlsEngineBench()` from the bench runner.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CertificateAuthority } from '../src/certs/index.js';
import { DtlsContext, type DtlsSession, DtlsStatus } from '../src/transport/dtls/engine.js';
import { formatTable, median, type Row } from './report.js';

const RECORD = 1200;
const BATCH = 64;

/** An RSA-2048 leaf for localhost from a throwaway wirelayer CA. */
function selfSigned(): { cert: string; key: string } {
  const leaf = CertificateAuthority.create({ type: 'rsa' }).issue('localhost', { keyType: 'rsa' });
  return { cert: leaf.certPem, key: leaf.keyPem };
}

/** Drives a handshake to completion in memory (no loss, so no timers). */
export function handshakeInMemory(client: DtlsSession, server: DtlsSession): void {
  client.start();
  for (let i = 0; i < 32 && !(client.isEstablished && server.isEstablished); i++) {
    for (const d of client.takeOutgoing() ?? []) server.receive(d);
    for (const d of server.takeOutgoing() ?? []) client.receive(d);
    if ((client.status | server.status) & DtlsStatus.FAILED) throw client.error ?? server.error;
  }
  if (!client.isEstablished || !server.isEstablished) throw new Error('bench handshake did not complete');
}

/** Records through the engine: returns records per second. */
function engineRecords(client: DtlsSession, server: DtlsSession, ms: number): number {
  const payload = randomBytes(RECORD);
  let records = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let i = 0; i < BATCH; i++) client.write(payload);
    const out = client.takeOutgoing()!;
    for (let i = 0; i < out.length; i++) server.receive(out[i]!);
    for (let m = server.read(); m !== null; m = server.read()) records++;
  }
  return records / ((performance.now() - start) / 1000);
}

/** The same records sealed and opened with node:crypto AES-256-GCM: records per second. */
function cryptoRecords(ms: number): number {
  const key = randomBytes(32);
  const salt = randomBytes(4);
  const aad = Buffer.alloc(13);
  const payload = randomBytes(RECORD);
  let seq = 0n;
  let records = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let i = 0; i < BATCH; i++) {
      const nonce = Buffer.alloc(12);
      salt.copy(nonce);
      nonce.writeBigUInt64BE(seq++, 4);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      c.setAAD(aad);
      const sealed = Buffer.concat([c.update(payload), c.final()]);
      const tag = c.getAuthTag();
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      d.setAAD(aad);
      d.setAuthTag(tag);
      d.update(sealed);
      d.final();
      records++;
    }
  }
  return records / ((performance.now() - start) / 1000);
}

function handshakesPerSecond(serverCtx: DtlsContext, clientCtx: DtlsContext, ms: number): number {
  let n = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    const c = clientCtx.createSession({ servername: 'localhost' });
    const s = serverCtx.createSession({ peer: `10.0.0.1:${n & 0xffff}` });
    handshakeInMemory(c, s);
    c.destroy();
    s.destroy();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

/** Runs the benchmark (about 4 s) and returns its rows. */
export async function runDtlsEngineBench(
  options: { roundMs?: number; rounds?: number } = {},
): Promise<Row[]> {
  const roundMs = options.roundMs ?? 400;
  const rounds = options.rounds ?? 3;
  const { cert, key } = selfSigned();
  const serverCtx = new DtlsContext({ role: 'server', cert, key, ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' });
  const clientCtx = new DtlsContext({ role: 'client', rejectUnauthorized: false });
  const client = clientCtx.createSession({ servername: 'localhost' });
  const server = serverCtx.createSession({ peer: '10.0.0.1:1' });
  handshakeInMemory(client, server);
  const cipher = client.handshake().cipher;

  engineRecords(client, server, 100); // warm-up
  cryptoRecords(100);
  const ours: number[] = [];
  const base: number[] = [];
  for (let r = 0; r < rounds; r++) {
    ours.push(engineRecords(client, server, roundMs));
    base.push(cryptoRecords(roundMs));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const hs: number[] = [];
  for (let r = 0; r < rounds; r++) hs.push(handshakesPerSecond(serverCtx, clientCtx, roundMs));
  client.destroy();
  server.destroy();
  serverCtx.destroy();
  clientCtx.destroy();

  const recordsPerSecond = median(ours);
  const baselineRecords = median(base);
  const mb = (records: number): number => (records * RECORD) / 1e6;
  return [
    {
      name: `app records, ${RECORD} B, write+receive+read (${cipher})`,
      value: recordsPerSecond,
      unit: 'records/s',
      baseline: baselineRecords,
      baselineName: 'node:crypto AES-256-GCM seal+open',
      ratio: recordsPerSecond / baselineRecords,
    },
    {
      name: `app data, ${RECORD} B records`,
      value: mb(recordsPerSecond),
      unit: 'MB/s',
      baseline: mb(baselineRecords),
      baselineName: 'node:crypto AES-256-GCM seal+open',
      ratio: recordsPerSecond / baselineRecords,
    },
    { name: 'full handshakes (cookie exchange, ECDHE-RSA-2048)', value: median(hs), unit: 'handshakes/s' },
  ];
}

// Run directly (node dist/bench/dtls-engine.js): print the table.
if (process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  runDtlsEngineBench().then(
    (rows) => console.log(formatTable('DTLS engine (native, sans-IO)', rows)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
