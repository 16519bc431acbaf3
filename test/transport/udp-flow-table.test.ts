import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FlowEntry, FlowTable, flowKey } from '../../src/transport/udp/flow-table.js';

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

describe('flowKey', () => {
  it('is a small integer (V8 keeps it unboxed) for any IPv4 or IPv6 peer', () => {
    fc.assert(
      fc.property(fc.oneof(ipv4, ipv6), fc.integer({ min: 0, max: 65535 }), (address, port) => {
        const key = flowKey(address, port);
        expect(Number.isInteger(key)).toBe(true);
        expect(key).toBeGreaterThanOrEqual(0);
        expect(key).toBeLessThan(2 ** 30);
        expect(key % 65536).toBe(port);
      }),
    );
  });
});

describe('FlowTable', () => {
  it('finds each peer by address and port, peers sharing a key included', () => {
    const table = new FlowTable<FlowEntry>();
    // same port, addresses whose last three characters agree: one bucket, told apart by address
    const peers = [
      entry('10.0.0.1', 5000),
      entry('10.1.0.1', 5000),
      entry('::1', 5000),
      entry('10.0.0.1', 5001),
    ];
    expect(flowKey('10.0.0.1', 5000)).toBe(flowKey('10.1.0.1', 5000));
    for (const p of peers) table.insert(p);
    expect(table.size).toBe(4);
    for (const p of peers) expect(table.find(p.address, p.port)).toBe(p);
    expect(table.find('10.2.0.1', 5000)).toBeUndefined();
    expect(table.remove(peers[0]!)).toBe(true);
    expect(table.remove(peers[0]!)).toBe(false);
    expect(table.find('10.0.0.1', 5000)).toBeUndefined();
    expect(table.find('10.1.0.1', 5000)).toBe(peers[1]);
    expect(table.size).toBe(3);
  });

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
