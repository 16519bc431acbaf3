import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpFlag, TcpStreamReassembler } from '../../src/capture/index.js';
import { concat, text } from './synth.js';

const str = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe('TcpStreamReassembler', () => {
  it('starts after the SYN and delivers in-order data as it comes', () => {
    const stream = new TcpStreamReassembler();
    expect(stream.push(1000, TcpFlag.SYN, new Uint8Array(0))).toEqual([]);
    expect(stream.initialSequence).toBe(1001);
    expect(stream.push(1001, TcpFlag.ACK, text('hello ')).map(str)).toEqual(['hello ']);
    expect(stream.push(1007, TcpFlag.ACK | TcpFlag.FIN, text('world')).map(str)).toEqual(['world']);
    expect(str(stream.bytes())).toBe('hello world');
    expect(stream).toMatchObject({
      sawSyn: true,
      sawFin: true,
      gapAt: null,
      capped: false,
      retransmittedBytes: 0,
    });
  });

  it('holds out-of-order segments until the hole fills', () => {
    const stream = new TcpStreamReassembler();
    stream.push(0, TcpFlag.SYN, new Uint8Array(0));
    expect(stream.push(7, TcpFlag.ACK, text('three'))).toEqual([]);
    expect(stream.push(4, TcpFlag.ACK, text('two'))).toEqual([]);
    expect(stream.gapAt).toBe(0);
    expect(str(stream.bytes())).toBe('');
    expect(stream.push(1, TcpFlag.ACK, text('one')).map(str)).toEqual(['one', 'two', 'three']);
    expect(stream.gapAt).toBeNull();
  });

  it('drops retransmissions and keeps the first bytes received where segments overlap', () => {
    const stream = new TcpStreamReassembler();
    stream.push(99, TcpFlag.SYN, new Uint8Array(0));
    stream.push(100, TcpFlag.ACK, text('abcdef'));
    stream.push(100, TcpFlag.ACK, text('abcdef')); // exact retransmission
    stream.push(103, TcpFlag.ACK, text('XYZghi')); // overlaps the delivered "def"
    stream.push(112, TcpFlag.ACK, text('mno')); // out of order
    stream.push(110, TcpFlag.ACK, text('QQQQQ')); // overlaps the waiting "mno" at 112..114
    stream.push(109, TcpFlag.ACK, text('j'));
    expect(str(stream.bytes())).toBe('abcdefghijQQmno');
    expect(stream.retransmittedBytes).toBe(6 + 3 + 3);
  });

  it('follows sequence numbers across 2^32', () => {
    const stream = new TcpStreamReassembler();
    stream.push(0xfffffff0, TcpFlag.SYN, new Uint8Array(0));
    // 17 bytes from 0xfffffff1 end at 0x00000001, so the next byte is 0x00000002.
    stream.push(0x00000002, TcpFlag.ACK, text('-after-wrap')); // out of order, past the wrap
    stream.push(0xfffffff1, TcpFlag.ACK, text('0123456789abcdef-'));
    stream.push(0xfffffffa, TcpFlag.ACK, text('9ab')); // retransmitted from before the wrap
    expect(str(stream.bytes())).toBe('0123456789abcdef--after-wrap');
    expect(stream.retransmittedBytes).toBe(3);
  });

  it('takes the first segment seen as the start when there was no SYN', () => {
    const stream = new TcpStreamReassembler();
    stream.push(5000, TcpFlag.ACK, text('mid-'));
    stream.push(4990, TcpFlag.ACK, text('earlier')); // before the start: unknowable, dropped
    stream.push(5004, TcpFlag.ACK, text('stream'));
    expect(str(stream.bytes())).toBe('mid-stream');
    expect(stream.sawSyn).toBe(false);
  });

  it('reads data carried on the SYN (TCP Fast Open) and ignores RST payloads', () => {
    const stream = new TcpStreamReassembler();
    stream.push(10, TcpFlag.SYN, text('tfo'));
    stream.push(14, TcpFlag.RST, text('diagnostic'));
    expect(str(stream.bytes())).toBe('tfo');
  });

  it('keeps at most maxBytes, delivered and waiting together', () => {
    const stream = new TcpStreamReassembler({ maxBytes: 8 });
    stream.push(0, TcpFlag.SYN, new Uint8Array(0));
    stream.push(20, TcpFlag.ACK, text('far-away')); // entirely past the cap
    stream.push(7, TcpFlag.ACK, text('WXYZ')); // partly past the cap: kept up to it
    stream.push(1, TcpFlag.ACK, text('abcdef'));
    expect(str(stream.bytes())).toBe('abcdefWX');
    expect(stream.capped).toBe(true);
    expect(stream.push(9, TcpFlag.ACK, text('more'))).toEqual([]);
    expect(stream.length).toBe(8);
  });

  it('rebuilds any stream from any segmentation, order and duplication (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 600 }),
        fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xfffffe00, max: 0xffffffff })),
        fc.array(fc.tuple(fc.nat(), fc.nat(80)), { minLength: 1, maxLength: 60 }),
        fc.array(fc.nat(), { minLength: 0, maxLength: 30 }),
        fc.option(fc.integer({ min: 1, max: 700 }), { nil: undefined }),
        (data, isn, extraSegments, shuffleKeys, maxBytes) => {
          // A covering segmentation, plus arbitrary extra (re)transmissions of any range.
          const segments: [number, number][] = [];
          for (let at = 0, i = 0; at < data.length; i++) {
            const length = 1 + ((extraSegments[i % extraSegments.length]![1] + i) % 90);
            segments.push([at, Math.min(data.length, at + length)]);
            at += length;
          }
          for (const [start, length] of extraSegments) {
            if (data.length === 0) break;
            const from = start % data.length;
            segments.push([from, Math.min(data.length, from + length + 1)]);
          }
          // Deterministic shuffle driven by the generated keys.
          for (let i = segments.length - 1; i > 0; i--) {
            const j = (shuffleKeys[i % Math.max(1, shuffleKeys.length)] ?? i) % (i + 1);
            [segments[i], segments[j]] = [segments[j]!, segments[i]!];
          }
          const stream = new TcpStreamReassembler(maxBytes === undefined ? {} : { maxBytes });
          stream.push(isn, TcpFlag.SYN, new Uint8Array(0));
          const streamed: Uint8Array[] = [];
          for (const [from, to] of segments) {
            streamed.push(...stream.push((isn + 1 + from) >>> 0, TcpFlag.ACK, data.subarray(from, to)));
          }
          const expected = data.subarray(0, Math.min(data.length, maxBytes ?? Number.POSITIVE_INFINITY));
          expect(Buffer.from(stream.bytes()).equals(Buffer.from(expected))).toBe(true);
          expect(Buffer.from(concat(...streamed)).equals(Buffer.from(expected))).toBe(true);
          expect(stream.gapAt).toBeNull();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('TcpStreamReassembler under hostile input', () => {
  it('stays fast with many tiny segments in reverse order, dropping past maxPendingSegments', () => {
    const stream = new TcpStreamReassembler({ maxPendingSegments: 8192 });
    stream.push(0, TcpFlag.SYN, new Uint8Array(0));
    const one = Uint8Array.of(0x61);
    const started = performance.now();
    for (let offset = 100_000; offset >= 1; offset--) stream.push(1 + offset, TcpFlag.ACK, one);
    stream.push(1, TcpFlag.ACK, one);
    expect(performance.now() - started).toBeLessThan(5000);
    // Offsets 100000 down to 91809 waited; 91808 .. 1 were dropped; then offset 0 came.
    expect(stream.droppedSegments).toBe(100_000 - 8192);
    expect(stream.length).toBe(1);
    expect(stream.gapAt).toBe(1);
  });

  it('reassembles thousands of reordered segments exactly', () => {
    const data = Uint8Array.from({ length: 6000 }, (_, i) => (i * 7) & 0xff);
    const stream = new TcpStreamReassembler();
    stream.push(4242, TcpFlag.SYN, new Uint8Array(0));
    for (let offset = data.length - 1; offset >= 0; offset -= 2)
      stream.push(4243 + offset, TcpFlag.ACK, data.subarray(offset, offset + 1));
    for (let offset = data.length - 2; offset >= 0; offset -= 2)
      stream.push(4243 + offset, TcpFlag.ACK, data.subarray(offset, offset + 1));
    expect(Buffer.from(stream.bytes()).equals(Buffer.from(data))).toBe(true);
  });
});
