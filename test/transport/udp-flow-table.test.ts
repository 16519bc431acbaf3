import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUCKET_CAP, type FlowEntry, FlowTable, flowKey } from '../../src/transport/udp/flow-table.js';

const entry = (address: string, port: number): FlowEntry => ({
  address,
  port,
  lastSeen: 0,
  nextInBucket: null,
  older: null,
  newer: null,
});

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
const ipv6 = fc.ipV6();

/** The key before issue 11: the address's last three characters and the port, unseeded. */
const oldKey = (address: string, port: number): number => {
  const n = address.length;
  const tail = address.charCodeAt(n - 1) + 31 * address.charCodeAt(n - 2) + 961 * address.charCodeAt(n - 3);
  return (tail & 0x3fff) * 65536 + port;
};

/** 10,000 peers on one port that all shared one bucket under the old key: *.*.*.123, or a /64. */
const colliding = (family: 4 | 6): FlowEntry[] =>
  Array.from({ length: 10_000 }, (_, i) =>
    entry(family === 4 ? `10.${i >> 8}.${i & 255}.123` : `2001:db8::${i.toString(16)}:123`, 4433),
  );

/** A table whose every peer has one key: the worst an attacker could ever do. */
class OneBucket extends FlowTable<FlowEntry> {
  protected override keyOf(): number {
    return 7;
  }
}

/** The old key, as an attacker aims it: a table to show the cap bounds even that. */
class OldKeyTable extends FlowTable<FlowEntry> {
  protected override keyOf(address: string, port: number): number {
    return oldKey(address, port);
  }
}

describe('flowKey', () => {
  it('is a small integer (V8 keeps it unboxed) for any seed and any IPv4 or IPv6 peer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.oneof(ipv4, ipv6),
        fc.integer({ min: 0, max: 65535 }),
        (seed, address, port) => {
          const key = flowKey(seed, address, port);
          expect(Number.isInteger(key)).toBe(true);
          expect(key).toBeGreaterThanOrEqual(0);
          expect(key).toBeLessThan(2 ** 30);
        },
      ),
    );
  });

  it('spreads peers that collided under the old key, differently for each seed', () => {
    for (const family of [4, 6] as const) {
      const peers = colliding(family);
      expect(new Set(peers.map((p) => oldKey(p.address, p.port))).size).toBe(1);
      const bySeed = [1, 2, 0x7fffffff].map((seed) => peers.map((p) => flowKey(seed, p.address, p.port)));
      for (const keys of bySeed) expect(new Set(keys).size).toBeGreaterThan(9_990);
      // the seed decides the key: another seed puts the same peer elsewhere
      const moved = bySeed[0]!.filter((key, i) => key !== bySeed[1]![i]).length;
      expect(moved).toBeGreaterThan(9_990);
    }
  });

  it('depends on every character of the address and on the port', () => {
    const base = flowKey(99, '192.168.1.123', 5000);
    expect(flowKey(99, '292.168.1.123', 5000)).not.toBe(base);
    expect(flowKey(99, '192.168.1.124', 5000)).not.toBe(base);
    expect(flowKey(99, '192.168.1.123', 5001)).not.toBe(base);
    expect(flowKey(98, '192.168.1.123', 5000)).not.toBe(base);
  });
});

describe('FlowTable', () => {
  it('finds each peer by address and port, peers sharing a key included', () => {
    const table = new OneBucket();
    const peers = [
      entry('10.0.0.1', 5000),
      entry('10.1.0.1', 5000),
      entry('::1', 5000),
      entry('10.0.0.1', 5001),
    ];
    for (const p of peers) expect(table.insert(p)).toBe(true);
    expect(table.size).toBe(4);
    for (const p of peers) expect(table.find(p.address, p.port)).toBe(p);
    expect(table.find('10.2.0.1', 5000)).toBeUndefined();
    expect(table.remove(peers[0]!)).toBe(true);
    expect(table.remove(peers[0]!)).toBe(false);
    expect(table.find('10.0.0.1', 5000)).toBeUndefined();
    expect(table.find('10.1.0.1', 5000)).toBe(peers[1]);
    expect(table.size).toBe(3);
  });

  it(`caps a bucket at ${BUCKET_CAP} flows: the newcomer is refused, the flows in it stay`, () => {
    const table = new OneBucket();
    const peers = Array.from({ length: BUCKET_CAP }, (_, i) => entry(`10.0.0.${i}`, 9));
    for (const p of peers) {
      expect(table.canInsert(p.address, p.port)).toBe(true);
      expect(table.insert(p)).toBe(true);
    }
    const late = entry('10.0.0.200', 9);
    expect(table.canInsert(late.address, late.port)).toBe(false);
    expect(table.insert(late)).toBe(false);
    expect(table.size).toBe(BUCKET_CAP);
    expect(table.entries()).toEqual(peers);
    expect(table.find(late.address, late.port)).toBeUndefined();
    // a miss walks the whole bucket, and no further
    expect(table.probes).toBe(BUCKET_CAP);
    for (const p of peers) expect(table.find(p.address, p.port)).toBe(p);
    // a flow leaving makes room again
    table.remove(peers[3]!);
    expect(table.insert(late)).toBe(true);
    expect(table.find(late.address, late.port)).toBe(late);
  });

  for (const family of [4, 6] as const) {
    it(`keeps lookups flat for 10,000 IPv${family} peers that all shared one bucket under the old key`, () => {
      const peers = colliding(family);
      // fixed seeds make the counts exact; the default seed is random, as in a listener
      for (const table of [
        new FlowTable<FlowEntry>(1),
        new FlowTable<FlowEntry>(-5),
        new FlowTable<FlowEntry>(),
      ]) {
        for (const p of peers) expect(table.insert(p)).toBe(true);
        expect(table.size).toBe(10_000);
        for (const p of peers) expect(table.find(p.address, p.port)).toBe(p);
        // one entry compared per lookup, give or take a chance collision of two peers
        expect(table.probes).toBeGreaterThanOrEqual(10_000);
        expect(table.probes).toBeLessThanOrEqual(10_010);
        const before = table.probes;
        expect(table.find(family === 4 ? '10.200.200.123' : '2001:db8::ffff:123', 4433)).toBeUndefined();
        expect(table.probes - before).toBeLessThanOrEqual(1);
      }
      // under the old key the same peers would walk one chain of 10,000 (50,005,000 compares for
      // these lookups); with the cap, even a key the attacker controls stops at BUCKET_CAP
      const old = new OldKeyTable();
      let inserted = 0;
      for (const p of peers) if (old.insert(p)) inserted++;
      expect(inserted).toBe(BUCKET_CAP);
      for (const p of peers) old.find(p.address, p.port);
      expect(old.probes).toBeLessThanOrEqual(10_000 * BUCKET_CAP);
    });
  }

  it('keeps activity order exact to the tick: idle expiry and the idlest flow', () => {
    const table = new FlowTable<FlowEntry>();
    const [a, b, c] = [entry('127.0.0.1', 1), entry('127.0.0.1', 2), entry('127.0.0.1', 3)];
    table.insert(a!);
    table.insert(b!);
    table.insert(c!);
    expect(table.idlest()).toBe(a);
    table.advance(0);
    table.touch(a!); // a is now the most recent
    expect(table.idlest()).toBe(b);
    expect(table.entries()).toEqual([b, c, a]);
    // idle for more than 2 ticks: b and c (stamped at tick 0) expire at tick 3, a (tick 1) at 4
    expect(table.advance(2)).toEqual([]);
    expect(table.advance(2)).toEqual([b, c]);
    table.remove(b!);
    table.remove(c!);
    expect(table.advance(2)).toEqual([a]);
  });

  it('matches a model under random inserts, touches, removals and ticks', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), port: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('touch' as const), port: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('remove' as const), port: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('tick' as const), port: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const table = new FlowTable<FlowEntry>();
        const model = new Map<number, { e: FlowEntry; seen: number; order: number }>();
        let order = 0;
        for (const o of ops) {
          const known = model.get(o.port);
          if (o.kind === 'insert' && !known) {
            const e = entry(o.port % 2 ? '127.0.0.1' : '::1', o.port);
            table.insert(e);
            model.set(o.port, { e, seen: table.tick, order: order++ });
          } else if (o.kind === 'touch' && known) {
            table.touch(known.e);
            if (known.seen !== table.tick) known.order = order++;
            known.seen = table.tick;
          } else if (o.kind === 'remove' && known) {
            table.remove(known.e);
            model.delete(o.port);
          } else if (o.kind === 'tick') {
            table.advance(0);
          }
        }
        const expected = [...model.values()]
          .sort((x, y) => x.seen - y.seen || x.order - y.order)
          .map((x) => x.e);
        expect(table.size).toBe(model.size);
        expect(table.entries()).toEqual(expected);
        expect(table.idlest()).toBe(expected[0] ?? null);
        for (const { e } of model.values()) expect(table.find(e.address, e.port)).toBe(e);
      }),
    );
  });
});
