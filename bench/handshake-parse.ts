/**
 * ClientHello parse rate for a Chrome-sized hello (about 1.8 KB with an X25519MLKEM768 share),
 * beside baselines measured in the same run: a bare loop that only walks the extension list
 * (the least any parser must do) and a Buffer copy of the same bytes.
 *
 *   npm run bench handshake    or, after `npm run build`, node dist/bench/handshake-parse.js
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { detectDatagram, detectStream } from '../src/handshake/detect.js';
import { ja3 } from '../src/handshake/ja3.js';
import { ja4 } from '../src/handshake/ja4.js';
import { parseClientHello } from '../src/handshake/tls/client-hello.js';
import { parseClientHelloRecords } from '../src/handshake/tls/hello-records.js';
import { formatTable, type Row } from './report.js';

/** Builds the Chrome-like hello as one TLS record (no test helpers: bench/ ships). */
function chromeLikeRecord(): Uint8Array {
  const bytes: number[] = [];
  const u16 = (v: number) => bytes.push((v >> 8) & 0xff, v & 0xff);
  const ext = (type: number, data: number[]) => {
    u16(type);
    u16(data.length);
    bytes.push(...data);
  };
  const vec16 = (values: number[]) => [
    (values.length * 2) >> 8,
    (values.length * 2) & 0xff,
    ...values.flatMap((v) => [v >> 8, v & 0xff]),
  ];
  u16(0x0303);
  bytes.push(...new Array<number>(32).fill(7), 32, ...new Array<number>(32).fill(0x33));
  const ciphers = [
    0x8a8a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x9c,
    0x9d, 0x2f, 0x35,
  ];
  bytes.push(...vec16(ciphers), 1, 0);
  const extStart = bytes.length;
  u16(0);
  ext(0x3a3a, []);
  ext(0x2d, [1, 1]);
  const share = (g: number, n: number) => [
    g >> 8,
    g & 0xff,
    n >> 8,
    n & 0xff,
    ...new Array<number>(n).fill(0x5a),
  ];
  const shares = [...share(0x4a4a, 1), ...share(0x11ec, 1216), ...share(29, 32)];
  ext(0x33, [shares.length >> 8, shares.length & 0xff, ...shares]);
  const alpn = [2, 0x68, 0x32, 8, ...Buffer.from('http/1.1')];
  ext(0x10, [0, alpn.length, ...alpn]);
  ext(0xfe0d, new Array<number>(218).fill(0x42));
  ext(0x17, []);
  ext(0x44cd, [0, 3, 2, 0x68, 0x32]);
  const host = [...Buffer.from('www.example.com')];
  ext(0, [0, host.length + 3, 0, 0, host.length, ...host]);
  ext(0x0b, [1, 0]);
  ext(0x0a, vec16([0x4a4a, 0x11ec, 29, 23, 24]));
  ext(0x2b, [6, 0x7a, 0x7a, 3, 4, 3, 3]);
  ext(0xff01, [0]);
  ext(0x23, []);
  ext(0x12, []);
  ext(5, [1, 0, 0, 0, 0]);
  ext(0x0d, vec16([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]));
  ext(0x1b, [2, 0, 2]);
  ext(0x1a1a, [0]);
  const extLen = bytes.length - extStart - 2;
  bytes[extStart] = extLen >> 8;
  bytes[extStart + 1] = extLen & 0xff;
  const body = bytes;
  const hs = [1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff, ...body];
  return Uint8Array.from([0x16, 3, 1, hs.length >> 8, hs.length & 0xff, ...hs]);
}

/** The least work a parser does: walk cipher and extension lists, reading each type. */
function walkExtensions(b: Uint8Array): number {
  let o = 34;
  o += 1 + b[o];
  o += 2 + ((b[o] << 8) | b[o + 1]);
  o += 1 + b[o];
  const end = o + 2 + ((b[o] << 8) | b[o + 1]);
  o += 2;
  let sum = 0;
  while (o + 4 <= end) {
    sum += (b[o] << 8) | b[o + 1];
    o += 4 + ((b[o + 2] << 8) | b[o + 3]);
  }
  return sum;
}

let sink = 0;

/** Operations per second of `fn`, run for about `ms` milliseconds. */
function rate(fn: () => unknown, ms: number): number {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let n = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < 1000; i++) if (fn()) sink++;
    n += 1000;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return (n * 1e9) / Number(elapsed);
}

function row(name: string, value: number, baseline: number, unit = 'ops/s'): Row {
  return { name, value: Math.round(value), unit, baseline: Math.round(baseline), ratio: value / baseline };
}

/** Runs the handshake micro-benchmarks (a few seconds) and returns one row per measurement. */
export async function runHandshakeBench(ms = 400): Promise<Row[]> {
  const record = chromeLikeRecord();
  const body = record.subarray(9);
  const parsed = parseClientHello(body);
  if (parsed.status !== 'done') throw new Error('bench hello does not parse');
  const hello = parsed.value;
  const quic = Uint8Array.from([
    0xc3,
    0,
    0,
    0,
    1,
    8,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    0,
    ...new Array<number>(1185).fill(0),
  ]);

  const walk = rate(() => walkExtensions(body), ms);
  const copy = rate(() => Buffer.from(record).length, ms);
  const rows: Row[] = [
    row(
      `parseClientHello (${record.length} B Chrome-like) vs extension walk`,
      rate(() => parseClientHello(body), ms),
      walk,
    ),
    row(
      'parseClientHello vs Buffer.from copy of the record',
      rate(() => parseClientHello(body), ms),
      copy,
    ),
    row(
      'parseClientHelloRecords (from the stream) vs extension walk',
      rate(() => parseClientHelloRecords(record), ms),
      walk,
    ),
    row(
      'ja4 vs two SHA-256 of the body',
      rate(() => ja4(hello), ms),
      rate(
        () =>
          createHash('sha256').update(body).digest().length +
          createHash('sha256').update(body).digest().length,
        ms,
      ),
    ),
    row(
      'ja3 vs one MD5 of the body',
      rate(() => ja3(hello), ms),
      rate(() => createHash('md5').update(body).digest().length, ms),
    ),
    row(
      'detectStream vs reading byte 0',
      rate(() => detectStream(record) === 'tls', ms),
      rate(() => record[0] === 0x16, ms),
    ),
    row(
      'detectDatagram (QUIC Initial) vs reading byte 0',
      rate(() => detectDatagram(quic) === 'quic', ms),
      rate(() => quic[0] === 0xc3, ms),
    ),
  ];
  if (sink < 0) console.error(sink); // reads the sink, so the measured calls are not optimised away
  return rows;
}

if (import.meta.url === pathToFileURL(resolve(process.argv[1] ?? '')).href) {
  console.log(formatTable('Handshake parsing', await runHandshakeBench()));
}
