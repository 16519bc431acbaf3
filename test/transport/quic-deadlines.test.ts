/**
 * The QUIC endpoint's deadline heap against a plain list as the model: any sequence of
 * set/remove/popDue leaves the same earliest deadline and pops the same entries in deadline
 * order, and every entry's `heapIndex` says where it is.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeadlineEntry, DeadlineHeap } from '../../src/transport/quic/deadlines.js';

interface Entry extends DeadlineEntry {
  readonly id: number;
}

const entry = (id: number): Entry => ({ id, deadline: Number.POSITIVE_INFINITY, heapIndex: -1 });

type Op =
  | { kind: 'set'; id: number; deadline: number }
  | { kind: 'remove'; id: number }
  | { kind: 'pop'; now: number };

const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('set' as const),
      id: fc.integer({ min: 0, max: 15 }),
      // small integers collide often: equal deadlines must work too; Infinity takes the entry out
      deadline: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(Number.POSITIVE_INFINITY)),
    }),
    fc.record({ kind: fc.constant('remove' as const), id: fc.integer({ min: 0, max: 15 }) }),
    fc.record({ kind: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 50 }) }),
  ),
  // long sequences: the heap only goes wrong once it holds a few levels
  { minLength: 20, maxLength: 200, size: 'max' },
);

describe('QUIC deadline heap', () => {
  it('pops due entries earliest first and moves an entry whose deadline changes', () => {
    const heap = new DeadlineHeap<Entry>();
    const [a, b, c] = [entry(1), entry(2), entry(3)];
    heap.set(a, 30);
    heap.set(b, 10);
    heap.set(c, 20);
    expect(heap.next).toBe(10);
    heap.set(b, 40); // later: b sinks
    expect(heap.peek()).toBe(c);
    heap.set(a, 5); // earlier: a rises
    expect(heap.popDue(4)).toBeUndefined();
    expect([heap.popDue(25), heap.popDue(25), heap.popDue(25)]).toEqual([a, c, undefined]);
    expect(a.heapIndex).toBe(-1);
    heap.remove(b);
    expect(heap.size).toBe(0);
    expect(heap.next).toBe(Number.POSITIVE_INFINITY);
    heap.remove(b); // twice: nothing
    expect(heap.size).toBe(0);
  });

  it('lifts the entry moved into a removed slot when it is earlier than its new parent', () => {
    // slots: [1, 10, 2, 11, 12, 3, 4]; removing 11 (slot 3) moves 4 under 10
    const heap = new DeadlineHeap<Entry>();
    const entries = [1, 10, 2, 11, 12, 3, 4].map((deadline, i) => {
      const e = entry(i);
      heap.set(e, deadline);
      return e;
    });
    expect(entries.map((e) => e.heapIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    heap.remove(entries[3]!);
    expect(entries[6]!.heapIndex).toBe(1);
    expect(entries[1]!.heapIndex).toBe(3);
    const order: number[] = [];
    for (let e = heap.popDue(100); e !== undefined; e = heap.popDue(100)) order.push(e.deadline);
    expect(order).toEqual([1, 2, 3, 4, 10, 12]);
  });

  it('agrees with a plain list on any sequence of operations (property)', () => {
    fc.assert(
      fc.property(ops, (sequence) => {
        const heap = new DeadlineHeap<Entry>();
        const entries = Array.from({ length: 16 }, (_, i) => entry(i));
        const model = new Map<number, number>(); // id -> deadline, for entries in the heap
        for (const op of sequence) {
          if (op.kind === 'set') {
            heap.set(entries[op.id]!, op.deadline);
            if (op.deadline === Number.POSITIVE_INFINITY) model.delete(op.id);
            else model.set(op.id, op.deadline);
          } else if (op.kind === 'remove') {
            heap.remove(entries[op.id]!);
            model.delete(op.id);
          } else {
            const popped = heap.popDue(op.now);
            const earliest = Math.min(...model.values());
            if (earliest <= op.now) {
              expect(popped).toBeDefined();
              expect(popped!.deadline).toBe(earliest);
              expect(model.get(popped!.id)).toBe(earliest);
              model.delete(popped!.id);
            } else {
              expect(popped).toBeUndefined();
            }
          }
          expect(heap.size).toBe(model.size);
          expect(heap.next).toBe(model.size === 0 ? Number.POSITIVE_INFINITY : Math.min(...model.values()));
          // every slot says where its entry is, and no entry is earlier than its parent
          const bySlot = new Map<number, Entry>();
          let wrong = 0;
          for (const e of entries) {
            if (e.heapIndex >= 0 !== model.has(e.id)) wrong++;
            if (e.heapIndex >= 0) bySlot.set(e.heapIndex, e);
          }
          for (const [slot, e] of bySlot)
            if (slot > 0 && bySlot.get((slot - 1) >> 1)!.deadline > e.deadline) wrong++;
          expect(wrong).toBe(0);
        }
        // drained, deadlines come out in order
        let last = Number.NEGATIVE_INFINITY;
        for (let e = heap.popDue(Infinity); e !== undefined; e = heap.popDue(Infinity)) {
          expect(e.deadline).toBeGreaterThanOrEqual(last);
          last = e.deadline;
        }
        expect(heap.size).toBe(0);
      }),
      { numRuns: 200, seed: 11 },
    );
  });
});
