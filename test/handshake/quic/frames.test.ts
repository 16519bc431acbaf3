import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CryptoStream, encodeVarint, parseInitialFrames } from '../../../src/handshake/quic/index.js';
import { concat, cryptoFrame, hex, toHex } from './helpers.js';

describe('parseInitialFrames', () => {
  it('reads PADDING, PING, ACK with ranges, ACK with ECN counts, CRYPTO and CONNECTION_CLOSE', () => {
    const payload = concat(
      hex('0000'),
      hex('01'),
      // ACK: largest 10, delay 3, 1 range, first range 2 (8..10), gap 1 len 1 (4..5)
      hex('020a0301020101'),
      // ACK_ECN: largest 5, delay 0, 0 ranges, first range 5, ECT0 7, ECT1 0, CE 1
      hex('03050000050700' + '01'),
      cryptoFrame(5, hex('aabbcc')),
      // CONNECTION_CLOSE: error 0x128 (TLS alert 40), frame type 6, reason "nope"
      concat(hex('1c'), encodeVarint(0x128), hex('06'), hex('04'), Buffer.from('nope')),
      new Uint8Array(10),
    );
    const result = parseInitialFrames(payload);
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    const frames = result.value;
    expect(frames.ping).toBe(true);
    expect(frames.paddingLength).toBe(12);
    expect(frames.acks).toEqual([
      { largestAcknowledged: 10, ackDelay: 3, rangeCount: 1, firstRange: 2 },
      { largestAcknowledged: 5, ackDelay: 0, rangeCount: 0, firstRange: 5, ecn: { ect0: 7, ect1: 0, ce: 1 } },
    ]);
    expect(frames.crypto.map((f) => [f.offset, toHex(f.data)])).toEqual([[5, 'aabbcc']]);
    expect(frames.connectionClose).toEqual({ errorCode: 0x128n, frameType: 6, reason: 'nope' });
  });

  it('keeps an error code above 2^53 exact', () => {
    const result = parseInitialFrames(concat(hex('1c'), hex('ffffffffffffffff'), hex('00'), hex('00')));
    expect(result.status === 'done' && result.value.connectionClose?.errorCode).toBe(2n ** 62n - 1n);
  });

  it.each([
    ['STREAM', '0800', 'quic-frame-not-allowed'],
    ['NEW_TOKEN', '070100', 'quic-frame-not-allowed'],
    ['application CONNECTION_CLOSE', '1d000000', 'quic-frame-not-allowed'],
    ['HANDSHAKE_DONE', '1e', 'quic-frame-not-allowed'],
    ['DATAGRAM', '3000', 'quic-frame-not-allowed'],
    ['an unknown two-byte type', '4f00', 'quic-frame-not-allowed'],
    ['CRYPTO with a two-byte type', '4006000100', 'quic-frame-encoding'],
    ['a truncated CRYPTO frame', '06000aaabb', 'quic-frame-encoding'],
    ['a truncated ACK', '0205', 'quic-frame-encoding'],
    ['an ACK below packet 0', '0201000002', 'quic-frame-encoding'],
    ['an ACK range below packet 0', '020a00010205', 'quic-frame-encoding'],
    ['a truncated CONNECTION_CLOSE reason', '1c010005616263', 'quic-frame-encoding'],
    ['an empty payload', '', 'quic-empty-payload'],
  ])('rejects %s', (_, payload, code) => {
    const result = parseInitialFrames(hex(payload));
    expect(result.status === 'error' && result.error.code).toBe(code);
  });

  it('rejects a CRYPTO frame beyond 2^62-1', () => {
    const result = parseInitialFrames(concat(hex('06'), hex('ffffffffffffffff'), hex('01'), hex('00')));
    expect(result.status === 'error' && result.error.code).toBe('quic-frame-encoding');
  });
});

describe('CryptoStream', () => {
  const message = (type: number, body: string) =>
    concat(Uint8Array.of(type, 0, 0, body.length / 2), hex(body));

  it('cuts the in-order prefix into handshake messages', () => {
    const stream = new CryptoStream();
    const data = concat(message(1, 'aabbcc'), message(1, 'ddee'));
    expect(stream.write(0, data.subarray(0, 5))).toBeUndefined();
    expect(stream.takeMessages()).toEqual([]);
    expect(stream.write(5, data.subarray(5))).toBeUndefined();
    expect((stream.takeMessages() as Uint8Array[]).map(toHex)).toEqual(['01000003aabbcc', '01000002ddee']);
    expect(stream.takeMessages()).toEqual([]);
  });

  it('reassembles out of order, with duplicates and overlaps', () => {
    const data = message(1, '00112233445566778899aabbccddeeff');
    const stream = new CryptoStream();
    stream.write(12, data.subarray(12));
    stream.write(4, data.subarray(4, 10));
    stream.write(8, data.subarray(8, 14));
    stream.write(12, data.subarray(12));
    expect(stream.contiguousLength).toBe(0);
    expect(stream.highestOffset).toBe(data.length);
    expect(stream.takeMessages()).toEqual([]);
    stream.write(0, data.subarray(0, 6));
    expect(stream.contiguousLength).toBe(data.length);
    expect((stream.takeMessages() as Uint8Array[]).map(toHex)).toEqual([toHex(data)]);
    // Data below the delivered prefix is never rewritten.
    stream.write(0, new Uint8Array(data.length));
    expect(stream.takeMessages()).toEqual([]);
  });

  it('bounds the bytes it buffers', () => {
    const stream = new CryptoStream(1024);
    expect(stream.write(1000, new Uint8Array(24))).toBeUndefined();
    expect(stream.write(1000, new Uint8Array(25))?.code).toBe('quic-crypto-buffer-exceeded');
    expect(stream.write(2 ** 40, new Uint8Array(1))?.code).toBe('quic-crypto-buffer-exceeded');
  });

  it('rejects a handshake message that could never fit', () => {
    const stream = new CryptoStream(1024);
    stream.write(0, hex('01000400'));
    const result = stream.takeMessages();
    expect(result instanceof Error && (result as { code?: string }).code).toBe('quic-crypto-buffer-exceeded');
  });

  it('bounds the number of holes', () => {
    const stream = new CryptoStream(65536, 4);
    for (let i = 1; i <= 4; i++) expect(stream.write(i * 10, hex('00'))).toBeUndefined();
    expect(stream.write(50, hex('00'))?.code).toBe('quic-crypto-fragmented');
    // Filling next to an existing range adds no hole.
    expect(stream.write(41, hex('00'))).toBeUndefined();
    expect(stream.write(0, new Uint8Array(10))).toBeUndefined();
    expect(stream.contiguousLength).toBe(11);
    expect(stream.write(50, hex('00'))).toBeUndefined();
  });

  it("checks a packet's frames together, exactly as writing them in turn would go", () => {
    const frame = fc.tuple(fc.nat(300), fc.uint8Array({ minLength: 1, maxLength: 40 }));
    fc.assert(
      fc.property(fc.array(fc.array(frame, { maxLength: 4 }), { maxLength: 8 }), (packets) => {
        const stream = new CryptoStream(320, 3);
        const history: { offset: number; data: Uint8Array }[] = [];
        for (const frames of packets) {
          const list = frames.map(([offset, data]) => ({ offset, data }));
          const verdict = stream.checkAll(list);
          const trial = new CryptoStream(320, 3);
          for (const f of history) trial.write(f.offset, f.data);
          const sequential = list.map((f) => trial.write(f.offset, f.data)).find((e) => e !== undefined);
          expect(verdict?.code).toBe(sequential?.code);
          if (verdict === undefined) {
            for (const f of list) expect(stream.write(f.offset, f.data)).toBeUndefined();
            history.push(...list);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
