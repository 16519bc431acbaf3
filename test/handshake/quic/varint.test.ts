import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePacketNumber,
  encodeVarint,
  readVarint,
  readVarintBigInt,
  VARINT_MAX,
  varintLengthFor,
  varintSize,
} from '../../../src/handshake/quic/index.js';
import { hex, toHex } from './helpers.js';

describe('variable-length integers (RFC 9000, 16 and A.1)', () => {
  it.each([
    ['c2197c5eff14e88c', 151288809941952652n],
    ['9d7f3e7d', 494878333n],
    ['7bbd', 15293n],
    ['25', 37n],
    ['4025', 37n],
  ])('decodes the RFC example %s', (encoded, value) => {
    const bytes = hex(encoded);
    expect(varintSize(bytes[0]!)).toBe(bytes.length);
    expect(readVarintBigInt(bytes, 0)).toBe(value);
    if (value < 2n ** 53n) expect(readVarint(bytes, 0)).toBe(Number(value));
  });

  it('encodes in the shortest form, or in the size asked for', () => {
    expect(toHex(encodeVarint(151288809941952652n))).toBe('c2197c5eff14e88c');
    expect(toHex(encodeVarint(494878333))).toBe('9d7f3e7d');
    expect(toHex(encodeVarint(15293))).toBe('7bbd');
    expect(toHex(encodeVarint(37))).toBe('25');
    expect(toHex(encodeVarint(37, 2))).toBe('4025');
    expect(() => encodeVarint(16384, 2)).toThrow(RangeError);
    expect(() => encodeVarint(VARINT_MAX + 1n)).toThrow(RangeError);
    expect(() => encodeVarint(-1)).toThrow(RangeError);
  });

  it('returns -1 when the bytes end inside the integer', () => {
    expect(readVarint(hex('9d7f3e'), 0)).toBe(-1);
    expect(readVarint(hex(''), 0)).toBe(-1);
    expect(readVarintBigInt(hex('c2197c5eff14e8'), 0)).toBe(-1n);
    expect(readVarint(hex('25'), 1)).toBe(-1);
  });

  it('round-trips every value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: VARINT_MAX }), (value) => {
        const encoded = encodeVarint(value);
        expect(encoded.length).toBe(varintLengthFor(value));
        expect(readVarintBigInt(encoded, 0)).toBe(value);
        if (value <= BigInt(Number.MAX_SAFE_INTEGER)) expect(readVarint(encoded, 0)).toBe(Number(value));
      }),
    );
  });
});

describe('packet number reconstruction (RFC 9000, A.3)', () => {
  it('decodes the RFC example', () => {
    expect(decodePacketNumber(0xa82f30ea, 0x9b32, 16)).toBe(0xa82f9b32);
  });

  it('decodes the first packets of a space', () => {
    expect(decodePacketNumber(-1, 0, 8)).toBe(0);
    expect(decodePacketNumber(-1, 2, 32)).toBe(2);
    expect(decodePacketNumber(0, 1, 8)).toBe(1);
  });

  it('wraps forwards and backwards around the window', () => {
    expect(decodePacketNumber(254, 0x01, 8)).toBe(257);
    expect(decodePacketNumber(300, 0xff, 8)).toBe(255);
  });

  it('recovers any packet number within half a window of the next expected one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 2 ** 40 }),
        fc.constantFrom(8, 16, 24, 32),
        fc.double({ min: -0.499, max: 0.499, noNaN: true }),
        (largest, bits, fraction) => {
          const window = 2 ** bits;
          const actual = largest + 1 + Math.trunc(fraction * window);
          fc.pre(actual >= 0);
          expect(decodePacketNumber(largest, actual % window, bits)).toBe(actual);
        },
      ),
    );
  });
});
