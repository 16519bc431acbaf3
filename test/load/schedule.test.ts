/** The open-loop schedule and the in-flight bookkeeping, with a clock the test sets. */
import { describe, expect, it } from 'vitest';
import { OpenLoopSchedule } from '../../src/load/schedule.js';
import {
  REPLY_DUPLICATE,
  REPLY_LATE,
  REPLY_UNMATCHED,
  ReplyTracker,
  TimeQueue,
} from '../../src/load/tracker.js';

describe('OpenLoopSchedule', () => {
  it('spaces messages 1/rate apart from the start, whatever the caller does', () => {
    const s = new OpenLoopSchedule(1000, 2000, 4000);
    expect(s.due(999)).toBe(0);
    expect(s.due(1000)).toBe(1); // message 0 at the start
    expect(s.due(1001)).toBe(3); // 0, 0.5, 1.0 ms
    expect(s.take()).toBe(1000);
    expect(s.take()).toBe(1000.5);
    expect(s.due(1001)).toBe(1);
    // a caller that fell behind by a second owes every message of that second, at their times
    expect(s.due(2001)).toBe(2003 - 2);
    expect(s.timeOf(3999)).toBe(1000 + 1999.5);
  });

  it('stops at its limit: rate x duration messages in all', () => {
    const s = new OpenLoopSchedule(0, 2000, 4000);
    let n = 0;
    while (s.dueBy(10_000)) {
      s.take();
      n++;
    }
    expect(n).toBe(4000);
    expect(s.done).toBe(true);
    expect(s.delay(10_000)).toBe(Number.POSITIVE_INFINITY);
  });

  it('says how long until the next one', () => {
    const s = new OpenLoopSchedule(0, 100);
    s.take();
    expect(s.delay(2)).toBe(8);
    expect(s.delay(50)).toBe(0);
    expect(s.dueBy(9.9)).toBe(false);
    expect(s.dueBy(10)).toBe(true);
  });
});

describe('ReplyTracker', () => {
  it('times an answer from its send time and knows each datagram once', () => {
    const t = new ReplyTracker(16, 100);
    const a = t.next(10);
    const b = t.next(11);
    expect(t.outstanding).toBe(2);
    expect(t.reply(b, 11, 15)).toBe(4);
    expect(t.reply(b, 11, 16)).toBe(REPLY_DUPLICATE);
    expect(t.reply(a, 10, 20)).toBe(10);
    expect(t.outstanding).toBe(0);
  });

  it('counts what the timeout passed as lost, and an answer after that as late', () => {
    const t = new ReplyTracker(16, 100);
    const a = t.next(0);
    const b = t.next(50);
    expect(t.expire(99)).toBe(0);
    expect(t.expire(120)).toBe(1); // a, not b
    expect(t.reply(a, 0, 130)).toBe(REPLY_LATE);
    expect(t.reply(b, 50, 130)).toBe(80);
    expect(t.expire(1000)).toBe(0);
  });

  it('refuses answers to datagrams never sent, or whose send time differs', () => {
    const t = new ReplyTracker(16, 100);
    expect(t.reply(0, 0, 1)).toBe(REPLY_UNMATCHED); // nothing sent yet
    const a = t.next(5);
    expect(t.reply(a + 1, 5, 6)).toBe(REPLY_UNMATCHED);
    expect(t.reply(a, 6, 7)).toBe(REPLY_UNMATCHED);
    expect(t.reply(-1, 5, 7)).toBe(REPLY_UNMATCHED);
  });

  it('gives up the oldest unanswered datagram when the ring is full', () => {
    const t = new ReplyTracker(16, 1e9);
    for (let i = 0; i < 17; i++) t.next(i);
    expect(t.outstanding).toBe(16);
    expect(t.expire(17)).toBe(1);
    expect(t.reply(0, 0, 20)).toBe(REPLY_LATE);
    expect(t.reply(16, 16, 20)).toBe(4);
  });

  it('expireAll: everything unanswered is lost', () => {
    const t = new ReplyTracker(16, 1e9);
    t.next(0);
    t.next(1);
    t.reply(1, 1, 2);
    expect(t.expireAll()).toBe(1);
    expect(t.outstanding).toBe(0);
  });
});

describe('TimeQueue', () => {
  it('is first in first out and grows past its first ring', () => {
    const q = new TimeQueue();
    for (let i = 0; i < 200; i++) q.push(i);
    for (let i = 0; i < 100; i++) expect(q.shift()).toBe(i);
    for (let i = 200; i < 400; i++) q.push(i);
    expect(q.length).toBe(300);
    expect(q.at(0)).toBe(100);
    for (let i = 100; i < 400; i++) expect(q.shift()).toBe(i);
    expect(q.shift()).toBeNaN();
  });
});
