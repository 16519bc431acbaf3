/**
 * Property tests: no parser or detector throws on any input (random or mutated real hellos),
 * and feeding bytes in any split gives the same result as feeding them at once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DtlsHandshakeReassembler,
  detectDatagram,
  detectStream,
  HandshakeParseError,
  ja3,
  ja4,
  type ParseResult,
  parseClientHello,
  parseClientHelloRecords,
  parseHelloVerifyRequest,
  parseServerHello,
  parseServerHelloRecords,
  splitDtlsHandshakeFragments,
  splitDtlsRecords,
  TlsRecordReader,
  type TlsStreamItem,
} from '../../src/handshake/index.js';
import { chromeLikeClientHello } from './build.js';
import { dtlsDatagrams, tlsStream } from './fixtures.js';

const seeds: Uint8Array[] = [
  tlsStream('openssl-tls13', 'client'),
  tlsStream('openssl-tls12', 'server'),
  tlsStream('openssl-tls13-frag', 'client'),
  tlsStream('gnutls-tls13', 'client'),
  chromeLikeClientHello(),
  ...dtlsDatagrams('openssl-dtls12-frag').map((d) => d.bytes),
];

/** A real input with a few bytes changed, cut or spliced. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([seed, flips, cut]) => {
    const b = seed.slice();
    for (const [at, v] of flips) b[at % b.length] = v;
    return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
  });

const anyInput = fc.oneof(fc.uint8Array({ maxLength: 2048 }), mutated);

function wellFormed<T>(r: ParseResult<T>): void {
  expect(['done', 'need-more', 'error']).toContain(r.status);
  if (r.status === 'error') {
    expect(r.error).toBeInstanceOf(HandshakeParseError);
    expect(typeof r.error.code).toBe('string');
    expect(Number.isInteger(r.error.offset)).toBe(true);
  }
}

describe('no parser throws', () => {
  it('TLS hello parsers, record helpers and fingerprints', () => {
    fc.assert(
      fc.property(anyInput, (b) => {
        const ch = parseClientHello(b);
        wellFormed(ch);
        if (ch.status === 'done') {
          ja3(ch.value);
          ja4(ch.value);
        }
        wellFormed(parseClientHello(b, 'dtls'));
        wellFormed(parseServerHello(b));
        wellFormed(parseClientHelloRecords(b));
        wellFormed(parseServerHelloRecords(b));
        const body = b.subarray(Math.min(b.length, 9)); // a ClientHello body inside a real stream
        const inner = parseClientHello(body);
        wellFormed(inner);
        if (inner.status === 'done') ja4(inner.value);
        expect(['tls', 'other', 'need-more']).toContain(detectStream(b));
        expect(['dtls', 'quic', 'raw']).toContain(detectDatagram(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('DTLS records, fragments, reassembler and HelloVerifyRequest', () => {
    fc.assert(
      fc.property(fc.array(anyInput, { minLength: 1, maxLength: 6 }), (datagrams) => {
        const r = new DtlsHandshakeReassembler({ maxMessageLength: 4096 });
        for (const d of datagrams) {
          wellFormed(splitDtlsRecords(d));
          wellFormed(splitDtlsHandshakeFragments(d));
          wellFormed(parseHelloVerifyRequest(d));
          const out = r.pushDatagram(d);
          wellFormed(out);
          if (out.status === 'done') for (const m of out.value) wellFormed(parseClientHello(m.body, 'dtls'));
        }
        expect(r.bufferedBytes).toBeLessThanOrEqual(4 * 4096);
      }),
      { numRuns: 1500 },
    );
  });

  it('the record reader, pushed random chunks', () => {
    fc.assert(
      fc.property(fc.array(anyInput, { maxLength: 6 }), (chunks) => {
        const reader = new TlsRecordReader({ maxMessageLength: 8192, maxBuffered: 16384 });
        for (const c of chunks) {
          reader.push(c);
          for (let i = 0; i < 50; i++) {
            const r = reader.read();
            wellFormed(r);
            if (r.status !== 'done') break;
          }
        }
      }),
      { numRuns: 1500 },
    );
  });
});

function drain(reader: TlsRecordReader, out: string[]): ParseResult<TlsStreamItem> {
  for (;;) {
    const r = reader.read();
    if (r.status !== 'done') return r;
    const v = r.value;
    out.push(
      v.kind === 'handshake'
        ? `h${v.msgType}:${Buffer.from(v.body).toString('hex')}`
        : `r${v.contentType}:${Buffer.from(v.fragment).toString('hex')}`,
    );
  }
}

describe('split feeding equals one-shot feeding', () => {
  it('the record reader yields the same items for any split of a real stream', () => {
    const streams = [
      tlsStream('openssl-tls13-frag', 'client'),
      tlsStream('openssl-tls12', 'server'),
      tlsStream('openssl-tls13-hrr', 'client'),
      chromeLikeClientHello(),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...streams),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 40 }),
        (stream, sizes) => {
          const whole: string[] = [];
          const oneShot = new TlsRecordReader();
          oneShot.push(stream);
          const endWhole = drain(oneShot, whole);
          const pieces: string[] = [];
          const split = new TlsRecordReader();
          let o = 0;
          let last: ParseResult<TlsStreamItem> = { status: 'need-more' };
          for (let i = 0; o < stream.length; i++) {
            const n = sizes[i % sizes.length];
            split.push(stream.subarray(o, o + n));
            o += n;
            last = drain(split, pieces);
          }
          expect(pieces).toEqual(whole);
          expect(last.status).toBe(endWhole.status);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('byte at a time equals one shot for every captured client stream', () => {
    for (const name of ['openssl-tls13', 'openssl-tls10', 'gnutls-tls13', 'openssl-tls13-frag']) {
      const stream = tlsStream(name, 'client');
      const whole: string[] = [];
      const a = new TlsRecordReader();
      a.push(stream);
      drain(a, whole);
      const bytes: string[] = [];
      const b = new TlsRecordReader();
      for (let i = 0; i < stream.length; i++) {
        b.push(stream.subarray(i, i + 1));
        drain(b, bytes);
      }
      expect(bytes).toEqual(whole);
    }
  });
});
