/**
 * Mutation fuzzer for the handshake parsers: every parser gets N mutated real inputs (default
 * 1,000,000) and must return done / need-more / a HandshakeParseError, never throw.
 *
 *   npm run fuzz -- [cases-per-parser] [seed]     (node dist/scripts/fuzz-handshake.js after a build)
 *
 * Seeds are the captured fixtures in test/fixtures/{tls,dtls}. Exit status 1 on the first
 * failure, with the input in hex.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { detectDatagram, detectStream } from '../src/handshake/detect.js';
import { parseHelloVerifyRequest } from '../src/handshake/dtls/hello.js';
import { DtlsHandshakeReassembler } from '../src/handshake/dtls/reassembler.js';
import { splitDtlsHandshakeFragments, splitDtlsRecords } from '../src/handshake/dtls/records.js';
import { HandshakeParseError, type ParseResult } from '../src/handshake/errors.js';
import { ja3 } from '../src/handshake/ja3.js';
import { ja4 } from '../src/handshake/ja4.js';
import { parseClientHello } from '../src/handshake/tls/client-hello.js';
import { parseClientHelloRecords, parseServerHelloRecords } from '../src/handshake/tls/hello-records.js';
import { TlsRecordReader } from '../src/handshake/tls/records.js';
import { parseServerHello } from '../src/handshake/tls/server-hello.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const perParser = Number(args[0] ?? 1_000_000);
let state = Number(args[1] ?? 0x9e3779b9) >>> 0 || 1;

function rand(): number {
  // xorshift32
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}

const streams: Uint8Array[] = [];
const datagrams: Uint8Array[] = [];
for (const f of readdirSync('test/fixtures/tls')) {
  if (f.endsWith('.bin'))
    streams.push(new Uint8Array(readFileSync(`test/fixtures/tls/${f}`)).subarray(0, 4096));
}
for (const f of readdirSync('test/fixtures/dtls')) {
  if (!f.endsWith('.hex')) continue;
  for (const line of readFileSync(`test/fixtures/dtls/${f}`, 'utf8').trim().split('\n')) {
    datagrams.push(new Uint8Array(Buffer.from(line.slice(2), 'hex')));
  }
}
// Handshake bodies (ClientHello/ServerHello without record and handshake headers).
const bodies = streams.map((s) => s.subarray(9, 5 + ((s[3] << 8) | s[4])));

const scratch = new Uint8Array(8192);

/** A mutated copy of a random seed: byte flips, truncation, splices, length-field pokes. */
function mutate(seeds: readonly Uint8Array[]): Uint8Array {
  const seed = seeds[rand() % seeds.length];
  let n = seed.length;
  scratch.set(seed);
  const ops = 1 + (rand() % 6);
  for (let i = 0; i < ops; i++) {
    const at = n === 0 ? 0 : rand() % n;
    switch (rand() % 6) {
      case 0:
        scratch[at] = rand() & 0xff;
        break;
      case 1:
        scratch[at] ^= 1 << (rand() % 8);
        break;
      case 2:
        n = at;
        break;
      case 3: {
        // Poke a plausible length: 0, small, or 0xff.. at a random place.
        const v = [0, 1, 2, 0xff, 0x7f, 0x80][rand() % 6];
        scratch[at] = v;
        break;
      }
      case 4: {
        // Duplicate a slice forward (repeats structures).
        const len = Math.min(1 + (rand() % 64), n - at, scratch.length - n);
        scratch.copyWithin(n, at, at + len);
        n += Math.max(0, len);
        break;
      }
      default:
        scratch[at] = 0;
    }
  }
  return scratch.slice(0, n);
}

function check(r: ParseResult<unknown>): void {
  if (r.status === 'error' && !(r.error instanceof HandshakeParseError))
    throw new Error('untyped error result');
  if (r.status !== 'done' && r.status !== 'need-more' && r.status !== 'error') throw new Error('bad status');
}

interface Target {
  readonly name: string;
  readonly seeds: readonly Uint8Array[];
  readonly run: (b: Uint8Array) => void;
}

const targets: Target[] = [
  {
    name: 'parseClientHello (tls) + ja3/ja4',
    seeds: bodies,
    run: (b) => {
      const r = parseClientHello(b);
      check(r);
      if (r.status === 'done') {
        ja3(r.value);
        ja4(r.value);
      }
    },
  },
  {
    name: 'parseClientHello (dtls)',
    seeds: datagrams.map((d) => d.subarray(25)),
    run: (b) => check(parseClientHello(b, 'dtls')),
  },
  { name: 'parseServerHello', seeds: bodies, run: (b) => check(parseServerHello(b)) },
  { name: 'parseClientHelloRecords', seeds: streams, run: (b) => check(parseClientHelloRecords(b)) },
  { name: 'parseServerHelloRecords', seeds: streams, run: (b) => check(parseServerHelloRecords(b)) },
  {
    name: 'TlsRecordReader (3 chunks)',
    seeds: streams,
    run: (b) => {
      const reader = new TlsRecordReader();
      const a = rand() % (b.length + 1);
      const c = a + (rand() % (b.length - a + 1));
      for (const chunk of [b.subarray(0, a), b.subarray(a, c), b.subarray(c)]) {
        reader.push(chunk);
        for (let i = 0; i < 64; i++) {
          const r = reader.read();
          check(r);
          if (r.status !== 'done') break;
        }
      }
    },
  },
  { name: 'splitDtlsRecords', seeds: datagrams, run: (b) => check(splitDtlsRecords(b)) },
  {
    name: 'splitDtlsHandshakeFragments',
    seeds: datagrams.map((d) => d.subarray(13)),
    run: (b) => check(splitDtlsHandshakeFragments(b)),
  },
  {
    name: 'DtlsHandshakeReassembler (4 datagrams)',
    seeds: datagrams,
    run: (b) => {
      const r = new DtlsHandshakeReassembler();
      check(r.pushDatagram(b));
      for (let i = 0; i < 3; i++) check(r.pushDatagram(mutate(datagrams)));
    },
  },
  {
    name: 'parseHelloVerifyRequest',
    seeds: datagrams.map((d) => d.subarray(25)),
    run: (b) => check(parseHelloVerifyRequest(b)),
  },
  {
    name: 'detectStream + detectDatagram',
    seeds: [...streams, ...datagrams],
    run: (b) => {
      detectStream(b);
      detectDatagram(b);
    },
  },
];

let failed = false;
console.log(`${perParser.toLocaleString('en-US')} mutated cases per parser`);
for (const t of targets) {
  const inputs = 1024;
  const pool = Array.from({ length: inputs }, () => mutate(t.seeds));
  const start = process.hrtime.bigint();
  for (let i = 0; i < perParser; i++) {
    // Refresh a pool entry now and then: fresh mutations without paying for one per case.
    if ((i & 7) === 0) pool[i % inputs] = mutate(t.seeds);
    const input = pool[i % inputs];
    try {
      t.run(input);
    } catch (e) {
      console.error(`FAIL ${t.name}: ${(e as Error).stack}\ninput ${Buffer.from(input).toString('hex')}`);
      failed = true;
      break;
    }
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `${t.name.padEnd(42)} ${Math.round(perParser / secs)
      .toLocaleString('en-US')
      .padStart(12)} cases/s`,
  );
}
process.exit(failed ? 1 : 0);
