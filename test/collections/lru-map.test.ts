import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/collections/lru-map.js';

describe('LruMap', () => {
  it('evicts the least recently used entry past its capacity, and counts it', () => {
    const evicted: string[] = [];
    const m = new LruMap<string, number>(2, (k) => evicted.push(k));
    m.set('a', 1).set('b', 2);
    expect(m.get('a')).toBe(1); // a is now the most recent
    m.set('c', 3);
    expect([...m.entries()]).toEqual([
      ['a', 1],
      ['c', 3],
    ]);
    expect(evicted).toEqual(['b']);
    expect(m.evictions).toBe(1);
  });

  it('peek leaves the order alone; getOrSet makes once', () => {
    const m = new LruMap<string, number>(2);
    m.set('a', 1).set('b', 2);
    expect(m.peek('a')).toBe(1);
    m.set('c', 3);
    expect(m.has('a')).toBe(false);
    let made = 0;
    const make = () => ++made;
    expect(m.getOrSet('x', make)).toBe(1);
    expect(m.getOrSet('x', make)).toBe(1);
    expect(made).toBe(1);
  });

  it('refuses a capacity below 1', () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
    expect(() => new LruMap(Number.NaN)).toThrow(RangeError);
  });

  it('behaves as a model LRU under any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('get' as const), key: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 7 }), value: fc.nat() }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 7 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const m = new LruMap<number, number>(capacity);
        let model: [number, number][] = []; // least recent first
        for (const o of ops) {
          const at = model.findIndex(([k]) => k === o.key);
          if (o.kind === 'get') {
            expect(m.get(o.key)).toBe(at >= 0 ? model[at]![1] : undefined);
            if (at >= 0) model.push(...model.splice(at, 1));
          } else if (o.kind === 'set') {
            m.set(o.key, o.value);
            if (at >= 0) model.splice(at, 1);
            model.push([o.key, o.value]);
            if (model.length > capacity) model = model.slice(1);
          } else {
            expect(m.delete(o.key)).toBe(at >= 0);
            if (at >= 0) model.splice(at, 1);
          }
          expect(m.size).toBeLessThanOrEqual(capacity);
        }
        expect([...m.entries()]).toEqual(model);
      }),
    );
  });
});
