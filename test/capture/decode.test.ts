import { describe, expect, it } from 'vitest';
import {
  type CapturedPacket,
  type DecodedPacket,
  decodeLinkLayer,
  formatIpv6,
  LinkType,
  PacketDecoder,
  type Skipped,
} from '../../src/capture/index.js';
import {
  concat,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ethernet,
  extensionBody,
  fragmentBody,
  hex,
  ipv4,
  ipv6,
  loopback,
  sll,
  sll2,
  TCP,
  tcp,
  text,
  udp,
  v6,
} from './synth.js';

const packet = (linkType: number, data: Uint8Array, timestamp = 1): CapturedPacket => ({
  timestamp,
  linkType,
  data,
  originalLength: data.length,
  interfaceId: 0,
  offset: 0,
});

function decode(linkType: number, data: Uint8Array, decoder = new PacketDecoder()): DecodedPacket | Skipped {
  return decoder.decode(packet(linkType, data));
}

function decoded(linkType: number, data: Uint8Array, decoder?: PacketDecoder): DecodedPacket {
  const result = decode(linkType, data, decoder);
  if (result.kind !== 'decoded') throw new Error(`skipped: ${result.reason}`);
  return result;
}

const udpV4 = ipv4({ protocol: 17, payload: udp(5353, 443, text('quic?')) });
const udpV6 = ipv6({ protocol: 17, payload: udp(5353, 443, text('quic6')) });

describe('link layers', () => {
  it('Ethernet, with and without 802.1Q / 802.1ad tags, padding trimmed by the IP length', () => {
    for (const tags of [[], [100], [200, 100], [1, 2, 3]]) {
      const d = decoded(LinkType.ETHERNET, ethernet(ETHERTYPE_IPV4, udpV4, tags, 128));
      expect(d).toMatchObject({ source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 4 });
      expect(Buffer.from(d.transport.payload).toString()).toBe('quic?');
    }
    expect(decoded(LinkType.ETHERNET, ethernet(ETHERTYPE_IPV6, udpV6, [7])).source).toBe('2001:db8::1');
    expect(decode(LinkType.ETHERNET, ethernet(0x0806, new Uint8Array(28)))).toEqual({
      kind: 'skipped',
      reason: 'not-ip',
    });
    expect(decode(LinkType.ETHERNET, ethernet(46, new Uint8Array(46)))).toMatchObject({ reason: 'not-ip' }); // 802.3 length
    expect(decode(LinkType.ETHERNET, new Uint8Array(10))).toMatchObject({ reason: 'truncated' });
  });

  it('Linux cooked v1 and v2', () => {
    expect(decoded(LinkType.LINUX_SLL, sll(ETHERTYPE_IPV4, udpV4)).transport.destinationPort).toBe(443);
    expect(decoded(LinkType.LINUX_SLL, sll(ETHERTYPE_IPV6, udpV6)).ipVersion).toBe(6);
    expect(decoded(LinkType.LINUX_SLL2, sll2(ETHERTYPE_IPV4, udpV4)).ipVersion).toBe(4);
    expect(decoded(LinkType.LINUX_SLL2, sll2(ETHERTYPE_IPV6, udpV6)).ipVersion).toBe(6);
    expect(decode(LinkType.LINUX_SLL, sll(0x0010, new Uint8Array(20), 824))).toMatchObject({
      reason: 'not-ip',
    });
    expect(decode(LinkType.LINUX_SLL2, sll2(0x0003, new Uint8Array(20)))).toMatchObject({ reason: 'not-ip' });
  });

  it('DLT_NULL in either host byte order, DLT_LOOP big-endian, every BSD AF_INET6', () => {
    for (const le of [true, false]) {
      expect(decoded(LinkType.NULL, loopback(2, udpV4, le)).ipVersion).toBe(4);
      for (const family of [24, 28, 30])
        expect(decoded(LinkType.NULL, loopback(family, udpV6, le)).ipVersion).toBe(6);
    }
    expect(decoded(LinkType.LOOP, loopback(2, udpV4, false)).ipVersion).toBe(4);
    expect(decoded(LinkType.LOOP, loopback(24, udpV6, false)).ipVersion).toBe(6);
    expect(decode(LinkType.NULL, loopback(7, udpV4, true))).toMatchObject({ reason: 'not-ip' });
  });

  it('raw IP under every link type number that means it', () => {
    for (const linkType of [101, 12, 14]) {
      expect(decoded(linkType, udpV4).ipVersion).toBe(4);
      expect(decoded(linkType, udpV6).ipVersion).toBe(6);
    }
    expect(decoded(228, udpV4).ipVersion).toBe(4);
    expect(decoded(229, udpV6).ipVersion).toBe(6);
    expect(decode(101, Uint8Array.of(0x50, 1, 2))).toMatchObject({ reason: 'malformed' });
    expect(decodeLinkLayer(147, udpV4)).toMatchObject({ reason: 'unsupported-link-type' });
  });
});

describe('IPv4', () => {
  it('steps over IP options', () => {
    const options = hex('94040000 01010100'); // router alert, NOP NOP NOP, end
    const d = decoded(101, ipv4({ protocol: 17, payload: udp(1, 2, text('opt')), options }));
    expect(Buffer.from(d.transport.payload).toString()).toBe('opt');
  });

  it('takes the captured length when the total length is 0 (segmentation offload)', () => {
    const d = decoded(101, ipv4({ protocol: 17, payload: udp(1, 2, text('tso')), totalLength: 0 }));
    expect(Buffer.from(d.transport.payload).toString()).toBe('tso');
  });

  it('marks a datagram cut by the snapshot length', () => {
    const whole = ipv4({ protocol: 17, payload: udp(1, 2, text('0123456789')) });
    const d = decoded(101, whole.subarray(0, whole.length - 4));
    expect(d.truncated).toBe(true);
    expect(Buffer.from(d.transport.payload).toString()).toBe('012345');
  });

  it('skips what it cannot use, with a reason', () => {
    expect(decode(101, ipv4({ protocol: 1, payload: new Uint8Array(8) }))).toMatchObject({
      reason: 'not-tcp-udp',
    });
    expect(decode(101, ipv4({ protocol: 6, payload: new Uint8Array(10) }))).toMatchObject({
      reason: 'truncated',
    });
    const badIhl = ipv4({ protocol: 17, payload: udp(1, 2, text('x')) });
    badIhl[0] = 0x44;
    expect(decode(101, badIhl)).toMatchObject({ reason: 'malformed' });
    const badTcp = ipv4({ protocol: 6, payload: tcp({ sport: 1, dport: 2, seq: 0, flags: 0 }) });
    badTcp[20 + 12] = 0x30; // data offset 3 words
    expect(decode(101, badTcp)).toMatchObject({ reason: 'malformed' });
  });

  it('reassembles fragments in any order (first bytes received win), and counts them as skipped until whole', () => {
    const payload = udp(4000, 53, text('A'.repeat(30) + 'B'.repeat(30)));
    const parts = [
      ipv4({ protocol: 17, id: 77, payload: payload.subarray(0, 24), moreFragments: true }),
      ipv4({
        protocol: 17,
        id: 77,
        payload: payload.subarray(24, 48),
        fragmentOffset: 24,
        moreFragments: true,
      }),
      ipv4({ protocol: 17, id: 77, payload: payload.subarray(48), fragmentOffset: 48 }),
    ];
    for (const order of [
      [0, 1, 2],
      [2, 0, 1],
      [1, 2, 0],
    ]) {
      const decoder = new PacketDecoder();
      const results = order.map((i) => decode(101, parts[i]!, decoder));
      expect(results.slice(0, 2)).toEqual([
        { kind: 'skipped', reason: 'fragment' },
        { kind: 'skipped', reason: 'fragment' },
      ]);
      const last = results[2]!;
      expect(last.kind).toBe('decoded');
      if (last.kind === 'decoded') {
        expect(Buffer.from(last.transport.payload).toString()).toBe('A'.repeat(30) + 'B'.repeat(30));
      }
      expect(decoder.skips.fragment).toBe(2);
    }
  });

  it('never completes a datagram with a missing fragment, and forgets the oldest beyond its limit', () => {
    const decoder = new PacketDecoder({ maxDatagrams: 2 });
    for (let id = 0; id < 5; id++) {
      expect(
        decode(101, ipv4({ protocol: 17, id, payload: new Uint8Array(16), moreFragments: true }), decoder),
      ).toMatchObject({
        reason: 'fragment',
      });
    }
    // id 0 was evicted: its last fragment alone cannot complete it.
    expect(
      decode(101, ipv4({ protocol: 17, id: 0, payload: new Uint8Array(8), fragmentOffset: 16 }), decoder),
    ).toMatchObject({
      reason: 'fragment',
    });
  });
});

describe('IPv6', () => {
  it('steps over hop-by-hop, routing, destination options and AH headers', () => {
    const d = decoded(
      101,
      ipv6({
        protocol: 6,
        extensions: [
          { type: 0, body: extensionBody(0) },
          { type: 43, body: extensionBody(1) },
          { type: 60, body: extensionBody(2) },
          { type: 51, body: concat(Uint8Array.of(2), new Uint8Array(14)) }, // AH: (2+2)*4 = 16 bytes
        ],
        payload: tcp({ sport: 50000, dport: 443, seq: 1, flags: TCP.ACK, payload: text('after-ext') }),
      }),
    );
    expect(d.transport.kind).toBe('tcp');
    expect(Buffer.from(d.transport.payload).toString()).toBe('after-ext');
  });

  it('treats an atomic fragment header as no fragment, and reassembles real fragments', () => {
    const atomic = ipv6({
      protocol: 17,
      extensions: [{ type: 44, body: fragmentBody(0, false, 9) }],
      payload: udp(1, 2, text('atomic')),
    });
    expect(Buffer.from(decoded(101, atomic).transport.payload).toString()).toBe('atomic');

    // The fragmentable part holds a destination options header, then UDP.
    const fragmentable = concat(Uint8Array.of(17), extensionBody(0), udp(7000, 443, text('x'.repeat(40))));
    const first = ipv6({
      protocol: 60,
      extensions: [{ type: 44, body: fragmentBody(0, true, 0xabcdef) }],
      payload: fragmentable.subarray(0, 32),
    });
    const second = ipv6({
      protocol: 60,
      extensions: [{ type: 44, body: fragmentBody(32, false, 0xabcdef) }],
      payload: fragmentable.subarray(32),
    });
    const decoder = new PacketDecoder();
    expect(decode(101, second, decoder)).toMatchObject({ reason: 'fragment' });
    const whole = decoded(101, first, decoder);
    expect(whole.transport.destinationPort).toBe(443);
    expect(Buffer.from(whole.transport.payload).toString()).toBe('x'.repeat(40));
  });

  it('skips a lone non-first fragment', () => {
    const later = ipv6({
      protocol: 17,
      extensions: [{ type: 44, body: fragmentBody(1024, false, 5) }],
      payload: new Uint8Array(30),
    });
    expect(decode(101, later)).toMatchObject({ reason: 'fragment' });
  });

  it('formats addresses as RFC 5952 says', () => {
    expect(formatIpv6(v6('::1'))).toBe('::1');
    expect(formatIpv6(v6('::'))).toBe('::');
    expect(formatIpv6(v6('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(v6('2001:db8:0:1:1:1:1:1'))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIpv6(v6('fe80::abcd:ef'))).toBe('fe80::abcd:ef');
    expect(formatIpv6(v6('1:0:0:2:0:0:0:3'))).toBe('1:0:0:2::3');
    expect(formatIpv6(v6('::ffff:7f00:1'))).toBe('::ffff:127.0.0.1');
  });
});
