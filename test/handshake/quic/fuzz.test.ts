/** Property tests: garbage and mutated datagrams give results or typed errors, never exceptions. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HandshakeParseError, type ParseResult } from '../../../src/handshake/errors.js';
import {
  CryptoStream,
  decryptInitial,
  InitialKeyCache,
  InitialTracker,
  parseDatagram,
  parseInitialFrames,
  type QuicSender,
} from '../../../src/handshake/quic/index.js';
import { FIXTURES, fixtureText, hex, hexAfter } from './helpers.js';

const capture = JSON.parse(readFileSync(`${FIXTURES}captures/hello-retry-request.json`, 'utf8')) as {
  datagrams: { from: QuicSender; hex: string }[];
};
const REAL = capture.datagrams.map((d) => ({ from: d.from, bytes: hex(d.hex) }));
const RFC_CLIENT = hexAfter(fixtureText('rfc9001-appendix-a.txt'), 'The resulting protected packet is:');
const DCID = hex('8394c8f03e515708');

function expectTyped<T>(result: ParseResult<T>): void {
  if (result.status === 'error') {
    expect(result.error).toBeInstanceOf(HandshakeParseError);
    expect(result.error.code).toMatch(/^quic-/);
  }
}

/** A real datagram with some bytes flipped, cut or extended. */
const mutated = fc
  .record({
    index: fc.nat(REAL.length - 1),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
    cut: fc.option(fc.nat()),
    tail: fc.uint8Array({ maxLength: 40 }),
  })
  .map(({ index, flips, cut, tail }) => {
    const source = REAL[index]!;
    const bytes = Uint8Array.from(source.bytes);
    for (const [at, xor] of flips) bytes[at % bytes.length]! ^= xor;
    const cutAt = cut === null ? bytes.length : cut % (bytes.length + 1);
    return { from: source.from, bytes: Uint8Array.from([...bytes.subarray(0, cutAt), ...tail]) };
  });

/** Bytes that look like a QUIC long header often enough to get past the first checks. */
const quicish = fc
  .tuple(
    fc.constantFrom(0xc0, 0xd0, 0xe0, 0xf0, 0x80, 0x40, 0x00, 0xc3, 0xd3),
    fc.constantFrom('00000001', '6b3343cf', '00000000', '1a2a3a4a'),
    fc.uint8Array({ maxLength: 1300 }),
  )
  .map(([first, version, rest]) => Uint8Array.from([first, ...hex(version), ...rest]));

const sender = fc.constantFrom<QuicSender>('client', 'server');

describe('robustness', () => {
  it('parseDatagram and decryptInitial on arbitrary bytes', () => {
    const cache = new InitialKeyCache(8);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1500 }), quicish), sender, (bytes, from) => {
        expectTyped(parseDatagram(bytes));
        expectTyped(parseDatagram(bytes, 8));
        expectTyped(decryptInitial(bytes, DCID, from, { keyCache: cache }));
      }),
      { numRuns: 2000 },
    );
  });

  it('parseInitialFrames on arbitrary payloads', () => {
    const frameish = fc
      .array(
        fc.oneof(
          fc
            .constantFrom(0x00, 0x01, 0x02, 0x03, 0x06, 0x1c, 0x40, 0x80, 0xc0, 0xff)
            .map((b) => Uint8Array.of(b)),
          fc.uint8Array({ maxLength: 12 }),
        ),
        { maxLength: 30 },
      )
      .map((parts) => Uint8Array.from(parts.flatMap((p) => [...p])));
    fc.assert(
      fc.property(frameish, (payload) => {
        expectTyped(parseInitialFrames(payload));
      }),
      { numRuns: 5000 },
    );
  });

  it('the tracker on mutated real datagrams', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            mutated,
            quicish.map((bytes) => ({ from: 'client' as const, bytes })),
          ),
          { maxLength: 12 },
        ),
        (datagrams) => {
          const tracker = new InitialTracker();
          tracker.receive(REAL[0]!.bytes, 'client');
          for (const d of datagrams) expectTyped(tracker.receive(d.bytes, d.from));
          expect(tracker.handshake.clientHello).toBeDefined();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a mutated protected RFC packet fails authentication or parsing, typed', () => {
    fc.assert(
      fc.property(fc.nat(RFC_CLIENT.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bytes = Uint8Array.from(RFC_CLIENT);
        bytes[at]! ^= xor;
        const result = decryptInitial(bytes, DCID, 'client');
        expectTyped(result);
        // Header fields outside the DCID are authenticated too: a change never goes unnoticed,
        // unless it only turned the packet into something that is not an Initial.
        if (result.status === 'done') expect(result.value).toHaveLength(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('CryptoStream on arbitrary writes stays within its bound', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(70000), fc.uint8Array({ maxLength: 3000 })), { maxLength: 40 }),
        (writes) => {
          const stream = new CryptoStream(65536, 16);
          for (const [offset, data] of writes) {
            const problem = stream.write(offset, data);
            if (problem) expect(problem.code).toMatch(/^quic-crypto-/);
            const messages = stream.takeMessages();
            if (!Array.isArray(messages)) expect(messages.code).toBe('quic-crypto-buffer-exceeded');
          }
          expect(stream.highestOffset).toBeLessThanOrEqual(65536);
        },
      ),
      { numRuns: 300 },
    );
  });
});
