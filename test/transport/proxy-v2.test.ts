/**
 * The PROXY v2 codec (haproxy's proxy-protocol.txt, 2.2): vectors written byte by byte from the
 * spec, every refusal rule, and properties: the parser throws nothing but ProxyHeaderError on any
 * input, the receive path's reader agrees with it, and headers round-trip.
 */
import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressSet } from '../../src/transport/datagram/address-set.js';
import {
  encodeProxyHeader,
  hasProxyV2Signature,
  type ProxyAddresses,
  ProxyHeaderError,
  type ProxyHeaderInit,
  ProxyHeaderReader,
  parseProxyHeader,
} from '../../src/transport/datagram/proxy-v2.js';
import { udpProxyHeader } from '../../src/transport/udp/proxy-protocol.js';

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const bytes = (...parts: (number | number[])[]): Uint8Array => new Uint8Array(parts.flat());

/** UDP over IPv4, 192.0.2.1:51234 -> 198.51.100.2:443, then the payload "hi". */
const V4_UDP = bytes(
  SIG,
  0x21,
  0x12,
  [0x00, 0x0c],
  [192, 0, 2, 1],
  [198, 51, 100, 2],
  [0xc8, 0x22],
  [0x01, 0xbb],
  [0x68, 0x69],
);

/** UDP over IPv6, [2001:db8::1]:5353 -> [2001:db8::2]:53, one TLV (PP2_TYPE_AUTHORITY "a.test"). */
const V6_UDP = bytes(
  SIG,
  0x21,
  0x22,
  [0x00, 36 + 3 + 6],
  [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
  [0x14, 0xe9],
  [0x00, 0x35],
  [0x02, 0x00, 0x06, ...Buffer.from('a.test')],
);

function refusal(input: Uint8Array): ProxyHeaderError {
  try {
    parseProxyHeader(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyHeaderError);
    return e as ProxyHeaderError;
  }
  throw new Error('parsed');
}

describe('parseProxyHeader', () => {
  it('reads UDP over IPv4 and leaves the payload after the header', () => {
    const header = parseProxyHeader(V4_UDP);
    expect(header).toEqual({
      command: 'proxy',
      addresses: {
        family: 'inet',
        transport: 'dgram',
        source: '192.0.2.1',
        sourcePort: 51234,
        destination: '198.51.100.2',
        destinationPort: 443,
      },
      tlvs: [],
      length: 28,
    });
    expect(Buffer.from(V4_UDP.subarray(header.length)).toString()).toBe('hi');
  });

  it('reads UDP over IPv6 and its TLVs', () => {
    const header = parseProxyHeader(V6_UDP);
    expect(header.addresses).toEqual({
      family: 'inet6',
      transport: 'dgram',
      source: '2001:db8::1',
      sourcePort: 5353,
      destination: '2001:db8::2',
      destinationPort: 53,
    });
    expect(header.tlvs).toHaveLength(1);
    expect(header.tlvs[0]!.type).toBe(0x02);
    expect(Buffer.from(header.tlvs[0]!.value).toString()).toBe('a.test');
    expect(header.length).toBe(V6_UDP.length);
  });

  it('reads LOCAL with UNSPEC, TCP and UNIX families', () => {
    expect(parseProxyHeader(bytes(SIG, 0x20, 0x00, [0, 0]))).toEqual({
      command: 'local',
      addresses: { family: 'unspec' },
      tlvs: [],
      length: 16,
    });
    const tcp = parseProxyHeader(
      bytes(SIG, 0x21, 0x11, [0, 12], [10, 0, 0, 1], [10, 0, 0, 2], [0, 1], [0, 2]),
    );
    expect(tcp.addresses).toMatchObject({ family: 'inet', transport: 'stream', source: '10.0.0.1' });
    const path = Buffer.alloc(108);
    path.write('/run/a.sock');
    const unix = parseProxyHeader(bytes(SIG, 0x21, 0x32, [0, 216], [...path], [...Buffer.alloc(108)]));
    expect(unix.addresses.family).toBe('unix');
    expect(Buffer.from((unix.addresses as { source: Uint8Array }).source)).toEqual(path);
  });

  it('refuses each malformed form with its code', () => {
    const v4 = Array.from(V4_UDP.subarray(0, 28));
    const cases: [number[], string][] = [
      [
        [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b, 0x21, 0x12, 0, 0],
        'SIGNATURE',
      ],
      [[...Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')], 'SIGNATURE'],
      [SIG.slice(0, 7), 'TRUNCATED'],
      [[...SIG, 0x21, 0x12, 0], 'TRUNCATED'],
      [[...SIG, 0x11, 0x12, 0, 12, ...v4.slice(16)], 'VERSION'],
      [[...SIG, 0x22, 0x12, 0, 12, ...v4.slice(16)], 'COMMAND'],
      [[...SIG, 0x21, 0x13, 0, 12, ...v4.slice(16)], 'FAMILY'],
      [[...SIG, 0x21, 0x42, 0, 12, ...v4.slice(16)], 'FAMILY'],
      [[...SIG, 0x21, 0x02, 0, 0], 'FAMILY'],
      [[...SIG, 0x21, 0x12, 0, 11, ...v4.slice(16, 27)], 'LENGTH'],
      [[...SIG, 0x21, 0x22, 0, 12, ...v4.slice(16)], 'LENGTH'],
      [[...SIG, 0x21, 0x12, 0, 13, ...v4.slice(16)], 'TRUNCATED'],
      [[...SIG, 0x21, 0x12, 0, 14, ...v4.slice(16), 0x04, 0x00], 'TLV'],
      [[...SIG, 0x21, 0x12, 0, 16, ...v4.slice(16), 0x04, 0x00, 0x02, 0xaa], 'TLV'],
    ];
    for (const [input, code] of cases) {
      const error = refusal(new Uint8Array(input));
      expect(error.code, `${Buffer.from(input).toString('hex')}`).toBe(`ERR_PROXY_HEADER_${code}`);
      expect(error.offset).toBeGreaterThanOrEqual(0);
    }
  });

  it('checks the signature without parsing', () => {
    expect(hasProxyV2Signature(V4_UDP)).toBe(true);
    expect(hasProxyV2Signature(V4_UDP.subarray(0, 11))).toBe(false);
    expect(hasProxyV2Signature(Buffer.from('\r\n\r\n\0\r\nQUIT!'))).toBe(false);
  });
});

describe('encodeProxyHeader', () => {
  it('writes the vectors byte for byte', () => {
    const v4 = encodeProxyHeader({
      command: 'proxy',
      addresses: {
        family: 'inet',
        transport: 'dgram',
        source: '192.0.2.1',
        sourcePort: 51234,
        destination: '198.51.100.2',
        destinationPort: 443,
      },
    });
    expect(v4).toEqual(Buffer.from(V4_UDP.subarray(0, 28)));
    const v6 = encodeProxyHeader({
      command: 'proxy',
      addresses: {
        family: 'inet6',
        transport: 'dgram',
        source: '2001:db8:0:0::1',
        sourcePort: 5353,
        destination: '2001:0db8::0.0.0.2',
        destinationPort: 53,
      },
      tlvs: [{ type: 2, value: Buffer.from('a.test') }],
    });
    expect(v6).toEqual(Buffer.from(V6_UDP));
  });

  it('maps families for a datagram header (udpProxyHeader)', () => {
    expect(udpProxyHeader(['::ffff:192.0.2.1', 51234], ['198.51.100.2', 443])).toEqual(
      Buffer.from(V4_UDP.subarray(0, 28)),
    );
    const mixed = parseProxyHeader(udpProxyHeader(['192.0.2.1', 1], ['2001:db8::2', 2]));
    expect(mixed.addresses).toMatchObject({
      family: 'inet6',
      source: '::ffff:192.0.2.1',
      destination: '2001:db8::2',
    });
  });

  it('refuses what it cannot write, with ERR_PROXY_HEADER_INVALID', () => {
    const inet = (source: string, sourcePort = 1): ProxyHeaderInit => ({
      command: 'proxy',
      addresses: {
        family: 'inet',
        transport: 'dgram',
        source,
        sourcePort,
        destination: '1.2.3.4',
        destinationPort: 2,
      },
    });
    for (const init of [
      inet('::1'),
      inet('example.test'),
      inet('1.2.3.4', 65536),
      inet('1.2.3.4', -1),
      {
        command: 'proxy',
        addresses: {
          family: 'unix',
          transport: 'dgram',
          source: new Uint8Array(109),
          destination: new Uint8Array(0),
        },
      },
      {
        command: 'local',
        addresses: { family: 'unspec' },
        tlvs: [{ type: 1, value: new Uint8Array(65536) }],
      },
      { command: 'local', addresses: { family: 'unspec' }, tlvs: [{ type: 256, value: new Uint8Array(0) }] },
    ] as ProxyHeaderInit[]) {
      expect(() => encodeProxyHeader(init)).toThrow(
        expect.objectContaining({ name: 'ProxyHeaderError', code: 'ERR_PROXY_HEADER_INVALID' }),
      );
    }
  });
});

const port = fc.integer({ min: 0, max: 65535 });
const transport = fc.constantFrom('stream' as const, 'dgram' as const);
const addresses: fc.Arbitrary<ProxyAddresses> = fc.oneof(
  fc.constant({ family: 'unspec' as const }),
  fc.record({
    family: fc.constant('inet' as const),
    transport,
    source: fc.ipV4(),
    sourcePort: port,
    destination: fc.ipV4(),
    destinationPort: port,
  }),
  fc.record({
    family: fc.constant('inet6' as const),
    transport,
    source: fc.ipV6(),
    sourcePort: port,
    destination: fc.ipV6(),
    destinationPort: port,
  }),
  fc.record({
    family: fc.constant('unix' as const),
    transport,
    source: fc.uint8Array({ minLength: 108, maxLength: 108 }),
    destination: fc.uint8Array({ minLength: 108, maxLength: 108 }),
  }),
);
const init: fc.Arbitrary<ProxyHeaderInit> = fc.record({
  command: fc.constantFrom('local' as const, 'proxy' as const),
  addresses,
  tlvs: fc.array(
    fc.record({ type: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ maxLength: 40 }) }),
    { maxLength: 4 },
  ),
});

/** A valid header with a few bytes changed, cut short or lengthened. */
const mutated = fc
  .tuple(
    init,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.uint8Array({ maxLength: 8 }),
  )
  .map(([h, flips, cut, tail]) => {
    const b = Buffer.concat([encodeProxyHeader(h), tail]);
    // flips mostly land in the fixed part and the lengths, where the rules are
    for (const [at, v] of flips) b[at % Math.min(b.length, 24)] = v;
    return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
  });
const anyInput = fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated);

describe('properties', () => {
  it('throws only ProxyHeaderError, and the receive path reader agrees with the parser', () => {
    const reader = new ProxyHeaderReader();
    fc.assert(
      fc.property(anyInput, (input) => {
        let parsed: ReturnType<typeof parseProxyHeader> | null = null;
        let error: ProxyHeaderError | null = null;
        try {
          parsed = parseProxyHeader(input);
        } catch (e) {
          if (!(e instanceof ProxyHeaderError)) throw e;
          error = e;
        }
        const ok = reader.read(input);
        expect(ok).toBe(parsed !== null);
        if (parsed !== null) {
          expect(reader.length).toBe(parsed.length);
          expect(parsed.length).toBeLessThanOrEqual(input.length);
          if (parsed.addresses.family === 'inet' || parsed.addresses.family === 'inet6') {
            expect(reader.source).toBe(parsed.addresses.source);
            expect(reader.sourcePort).toBe(parsed.addresses.sourcePort);
            expect(reader.destination).toBe(parsed.addresses.destination);
          }
        } else {
          expect(reader.error).toBe(error!.code);
          expect(reader.errorOffset).toBe(error!.offset);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips: parse(encode(h)) is h, and encoding it again gives the same bytes', () => {
    fc.assert(
      fc.property(init, fc.uint8Array({ maxLength: 32 }), (h, payload) => {
        const wire = encodeProxyHeader(h);
        const parsed = parseProxyHeader(Buffer.concat([wire, payload]));
        expect(parsed.length).toBe(wire.length);
        expect(parsed.command).toBe(h.command);
        expect(parsed.addresses.family).toBe(h.addresses.family);
        expect(parsed.tlvs.map((t) => [t.type, Buffer.from(t.value)])).toEqual(
          (h.tlvs ?? []).map((t) => [t.type, Buffer.from(t.value)]),
        );
        const a = parsed.addresses;
        const given = h.addresses;
        if (a.family === 'inet' && given.family === 'inet')
          expect([a.source, a.destination]).toEqual([given.source, given.destination]);
        if (a.family === 'inet6') expect(isIPv6(a.source) && isIPv6(a.destination)).toBe(true);
        if (a.family === 'inet' || a.family === 'inet6')
          expect(isIPv4(a.source) || isIPv6(a.source)).toBe(true);
        expect(encodeProxyHeader(parsed)).toEqual(wire);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('AddressSet', () => {
  it('matches addresses and CIDR blocks of both families, IPv4-mapped senders as IPv4', () => {
    const set = AddressSet.parse('10.0.0.0/8, 192.0.2.7,2001:db8::/32');
    expect(set.has('10.200.3.4')).toBe(true);
    expect(set.has('10.200.3.4')).toBe(true); // cached answer
    expect(set.has('::ffff:10.1.1.1')).toBe(true);
    expect(set.has('192.0.2.7')).toBe(true);
    expect(set.has('192.0.2.8')).toBe(false);
    expect(set.has('2001:db8:ffff::1')).toBe(true);
    expect(set.has('2001:db9::1')).toBe(false);
    expect(set.has('not an address')).toBe(false);
  });

  it('refuses entries that are not addresses or blocks', () => {
    for (const bad of ['10.0.0.0/33', '::/129', 'example.test', '10.0.0.0/', '10.0.0.0/8x', '1.2.3.4/-1']) {
      expect(() => AddressSet.parse(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
      );
    }
  });
});
