import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaptureError, iteratePackets, readCapture, readPackets } from '../../src/capture/index.js';
import { concat, hex, pcapFile, pcapng, text } from './synth.js';

const fixture = (name: string) => join(import.meta.dirname, '../fixtures/capture', name);

describe('pcap', () => {
  const packets = [
    { seconds: 1_700_000_000, fraction: 250_000, data: text('first') },
    { seconds: 1_700_000_001, fraction: 999_999, data: text('second!'), originalLength: 100 },
  ];

  it.each([true, false])('reads both byte orders (little-endian: %s)', (le) => {
    const { format, packets: read, error } = readPackets(pcapFile({ linkType: 1, le, packets }));
    expect(error).toBeNull();
    expect(format).toBe('pcap');
    expect(read.map((p) => Buffer.from(p.data).toString())).toEqual(['first', 'second!']);
    expect(read[0]!.timestamp).toBeCloseTo(1_700_000_000.25, 6);
    expect(read[1]!.timestamp).toBeCloseTo(1_700_000_001.999999, 6);
    expect(read[1]!.originalLength).toBe(100);
    expect(read.every((p) => p.linkType === 1 && p.interfaceId === 0)).toBe(true);
    expect(read[0]!.offset).toBe(24);
    expect(read[1]!.offset).toBe(24 + 16 + 5);
  });

  it('reads nanosecond timestamps', () => {
    const bytes = pcapFile({
      linkType: 101,
      nano: true,
      le: false,
      packets: [{ seconds: 10, fraction: 123_456_789, data: text('x') }],
    });
    expect(readPackets(bytes).packets[0]!.timestamp).toBeCloseTo(10.123456789, 9);
  });

  it('keeps only the link type from the FCS-carrying link type field', () => {
    const bytes = pcapFile({ linkType: 0x1400_0001, packets: [{ seconds: 1, data: text('x') }] });
    expect(readPackets(bytes).packets[0]!.linkType).toBe(1);
  });

  it('returns the packets before a truncated record and a CaptureError at its offset', () => {
    const whole = pcapFile({ linkType: 1, packets });
    const cut = whole.subarray(0, whole.length - 3);
    const { packets: read, error } = readPackets(cut);
    expect(read).toHaveLength(1);
    expect(error).toBeInstanceOf(CaptureError);
    expect(error!.code).toBe('truncated');
    expect(error!.offset).toBe(24 + 16 + 5);
  });

  it('rejects a cut file header, an absurd record length and an unknown magic', () => {
    const whole = pcapFile({ linkType: 1, packets });
    expect(readPackets(whole.subarray(0, 10)).error!.code).toBe('truncated');
    const absurd = whole.slice();
    new DataView(absurd.buffer).setUint32(24 + 8, 0x7fffffff, true);
    expect(readPackets(absurd).error).toMatchObject({ code: 'bad-length', offset: 24 });
    expect(readPackets(text('GET / HTTP/1.1\r\n')).error).toMatchObject({
      code: 'unknown-format',
      offset: 0,
    });
    expect(readPackets(new Uint8Array(0)).error).toMatchObject({ code: 'truncated', offset: 0 });
    expect(readPackets(new Uint8Array(0)).format).toBeNull();
  });

  it('reads the patched Kuznetzov format (24-byte record headers)', () => {
    const header = hex('34cdb2a1 0200 0400 00000000 00000000 00000400 01000000');
    const record = concat(hex('01000000 00000000 03000000 03000000'), new Uint8Array(8), text('abc'));
    const { packets: read, error } = readPackets(concat(header, record));
    expect(error).toBeNull();
    expect(Buffer.from(read[0]!.data).toString()).toBe('abc');
  });

  it('reads the real loopback captures', async () => {
    const micro = await readCapture(fixture('tls13-ipv4.pcap'));
    expect(micro).toMatchObject({ format: 'pcap', error: null });
    expect(micro.packets).toHaveLength(17);
    expect(micro.packets.every((p) => p.linkType === 1)).toBe(true);
    const nano = await readCapture(fixture('tcp-nanosecond.pcap'));
    expect(nano.packets).toHaveLength(16);
    // Nanosecond precision survives (to what a double holds at this magnitude).
    expect(nano.packets[1]!.timestamp - nano.packets[0]!.timestamp).toBeCloseTo(0.000018869, 6);
    expect((await readCapture(fixture('udp-any-sll.pcap'))).packets[0]!.linkType).toBe(113);
    expect((await readCapture(fixture('dtls12-any-sll2.pcap'))).packets[0]!.linkType).toBe(276);
  });

  it('turns a file that cannot be read into an io CaptureError', async () => {
    const { error, packets: read } = await readCapture(fixture('no-such-file.pcap'));
    expect(read).toEqual([]);
    expect(error).toBeInstanceOf(CaptureError);
    expect(error!.code).toBe('io');
  });
});

describe('pcapng', () => {
  const frame = text('frame-bytes');

  it.each([true, false])('reads sections in either byte order (little-endian: %s)', (le) => {
    const bytes = concat(
      pcapng.shb(le),
      pcapng.idb(1, le),
      pcapng.other(0x00000004, new Uint8Array(8), le), // Name Resolution Block: skipped
      pcapng.epb(0, 1_700_000_000_500_000n, frame, le, 60),
      pcapng.other(0x00000005, new Uint8Array(12), le), // Interface Statistics Block: skipped
      pcapng.other(0x0badcafe, new Uint8Array(3), le), // unknown: skipped
    );
    const { format, packets, error } = readPackets(bytes);
    expect(error).toBeNull();
    expect(format).toBe('pcapng');
    expect(packets).toHaveLength(1);
    expect(Buffer.from(packets[0]!.data).toString()).toBe('frame-bytes');
    expect(packets[0]!.timestamp).toBeCloseTo(1_700_000_000.5, 6);
    expect(packets[0]!.originalLength).toBe(60);
  });

  it('gives each interface its link type and timestamp resolution, across sections', () => {
    const bytes = concat(
      pcapng.shb(true),
      pcapng.idb(1, true, { tsresol: 9 }), // nanoseconds
      pcapng.idb(113, true, { tsresol: 0x80 | 10, tsoffset: 100n }), // 2^-10 s, +100 s
      pcapng.epb(0, 1_500_000_000n, frame),
      pcapng.epb(1, 1024n * 5n + 512n, frame),
      pcapng.shb(false), // a new section forgets the interfaces and may switch byte order
      pcapng.idb(276, false, { tsresol: 3 }),
      pcapng.epb(0, 2500n, frame, false),
    );
    const { packets, error } = readPackets(bytes);
    expect(error).toBeNull();
    expect(packets.map((p) => [p.linkType, p.interfaceId])).toEqual([
      [1, 0],
      [113, 1],
      [276, 0],
    ]);
    expect(packets[0]!.timestamp).toBeCloseTo(1.5, 9);
    expect(packets[1]!.timestamp).toBeCloseTo(105.5, 9);
    expect(packets[2]!.timestamp).toBeCloseTo(2.5, 9);
  });

  it('reads Simple Packet Blocks (timestamp of the packet before) and obsolete Packet Blocks', () => {
    const bytes = concat(
      pcapng.shb(),
      pcapng.idb(101),
      pcapng.opb(0, 3_000_000n, text('old')),
      pcapng.spb(text('simple')),
    );
    const { packets, error } = readPackets(bytes);
    expect(error).toBeNull();
    expect(packets.map((p) => Buffer.from(p.data).toString())).toEqual(['old', 'simple']);
    expect(packets.map((p) => p.timestamp)).toEqual([3, 3]);
  });

  it('stops with a typed error at a bad block, keeping the packets before it', () => {
    const good = concat(pcapng.shb(), pcapng.idb(1), pcapng.epb(0, 1n, frame));
    const unknownInterface = concat(good, pcapng.epb(7, 2n, frame));
    expect(readPackets(unknownInterface)).toMatchObject({
      packets: [{ interfaceId: 0 }],
      error: { code: 'unknown-interface', offset: good.length },
    });

    const mismatch = concat(good, pcapng.epb(0, 2n, frame));
    mismatch[mismatch.length - 4] ^= 0x40;
    expect(readPackets(mismatch).error).toMatchObject({ code: 'length-mismatch', offset: good.length });

    const cut = concat(good, pcapng.epb(0, 2n, frame)).subarray(0, good.length + 20);
    expect(readPackets(cut)).toMatchObject({
      packets: [{}],
      error: { code: 'truncated', offset: good.length },
    });

    const odd = concat(good, hex('06000000 0d000000'), new Uint8Array(8));
    expect(readPackets(odd).error).toMatchObject({ code: 'bad-length', offset: good.length });

    const badMagic = pcapng.shb();
    badMagic[8] = 0;
    expect(readPackets(badMagic).error).toMatchObject({ code: 'bad-section-header', offset: 0 });
  });

  it('reads the real dumpcap and tshark captures, two link types in one file', async () => {
    const single = await readCapture(fixture('tls12-ipv6.pcapng'));
    expect(single).toMatchObject({ format: 'pcapng', error: null });
    expect(single.packets).toHaveLength(17);
    const two = await readCapture(fixture('two-interfaces.pcapng'));
    expect(two.error).toBeNull();
    expect(two.packets).toHaveLength(32);
    expect(new Set(two.packets.map((p) => `${p.interfaceId}:${p.linkType}`))).toEqual(
      new Set(['0:1', '1:113']),
    );
  });

  it('cuts a Simple Packet Block to the interface snapshot length', () => {
    const bytes = concat(
      pcapng.shb(),
      pcapng.idb(101, true, { snapLength: 4 }),
      pcapng.spb(text('abcdefgh')),
    );
    expect(readPackets(bytes).packets[0]).toMatchObject({ originalLength: 8, data: text('abcd') });
  });

  it('iterates lazily and returns the error as the generator result', () => {
    const bytes = concat(pcapng.shb(), pcapng.idb(1), pcapng.epb(0, 1n, frame), hex('06000000'));
    const iterator = iteratePackets(bytes);
    expect(iterator.next()).toMatchObject({ done: false, value: { interfaceId: 0 } });
    const end = iterator.next();
    expect(end.done).toBe(true);
    expect(end.value).toMatchObject({ code: 'truncated' });
  });

  it('gives views into the file, not copies', () => {
    const bytes = concat(pcapng.shb(), pcapng.idb(1), pcapng.epb(0, 1n, frame));
    const packet = readPackets(bytes).packets[0]!;
    expect(packet.data.buffer).toBe(bytes.buffer);
  });
});

describe('real captures against tshark timestamps', () => {
  it('agrees with frame.time_epoch on every packet', () => {
    // tshark printed these for tls13-ipv4.pcap (`tshark -r ... -T fields -e frame.time_epoch`).
    const { packets } = readPackets(readFileSync(fixture('tls13-ipv4.pcap')));
    expect(packets[0]!.timestamp).toBeCloseTo(1795567352.39935, 6);
    expect(packets[1]!.timestamp).toBeCloseTo(1795567352.399453, 6);
  });
});
