import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectionState } from '../../src/connection/index.js';
import { type UdpFlowSession, UdpListener } from '../../src/transport/udp/index.js';

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

async function boundSockets(count: number): Promise<Socket[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const s = createSocket('udp4');
      s.on('error', () => undefined);
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }),
  );
}

/** Waits until the listener has taken in `expected` datagrams, or nothing more arrives. */
async function settle(listener: UdpListener, expected: number): Promise<void> {
  let last = -1;
  for (let quiet = 0; listener.stats.datagramsIn < expected && quiet < 10; ) {
    await new Promise((r) => setTimeout(r, 10));
    const now = listener.stats.datagramsIn;
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

describe('udp listener under floods and garbage', () => {
  it('5,000 sources against a cap of 1,000 flows: flows stay <= cap, the idlest are evicted and counted', async () => {
    const CAP = 1000;
    const BATCH = 100;
    const BATCHES = 50;
    await using listener = await UdpListener.listen({ maxFlows: CAP });
    const port = listener.address[1];
    const evicted: UdpFlowSession[] = [];
    const opened: UdpFlowSession[] = [];
    let maxSeen = 0;
    listener.on('session', (s: UdpFlowSession) => {
      opened.push(s);
      maxSeen = Math.max(maxSeen, listener.stats.flows);
      // every flow echoes: replies to sources already gone come back as ICMP errors, which the
      // listener's unconnected socket must shrug off
      s.datagrams.on('datagram', (d: Uint8Array) => s.datagrams.send(d));
      s.once('close', () => {
        if (s.conn.error) evicted.push(s);
      });
    });
    const [keeper] = await boundSockets(1);
    const keeperReplies: number[] = [];
    keeper!.on('message', (m) => keeperReplies.push(m.length));
    let sent = 0;
    try {
      for (let b = 0; b < BATCHES; b++) {
        const sockets = await boundSockets(BATCH);
        for (const [i, s] of sockets.entries()) {
          // garbage of every size, the largest datagram once per batch
          const size = i === 0 ? 65_507 : i === 1 ? 0 : Math.floor(Math.random() * 1500);
          s.send(randomBytes(size), port, '127.0.0.1');
          sent++;
          // a little pacing: a burst of 100 overflows the kernel's default socket buffer
          if (i % 20 === 19) await new Promise((r) => setImmediate(r));
        }
        keeper!.send(Buffer.from(`keeper ${b}`), port, '127.0.0.1');
        sent++;
        await settle(listener, sent);
        expect(listener.stats.flows).toBeLessThanOrEqual(CAP);
        await Promise.all(sockets.map(closeSocket));
      }
      const stats = listener.stats;
      expect(maxSeen).toBeLessThanOrEqual(CAP);
      expect(stats.flows).toBe(CAP);
      expect(stats.flowsOpened).toBeGreaterThan(3 * CAP);
      expect(stats.evictions).toBe(stats.flowsOpened - stats.flows);
      expect(evicted.length).toBe(stats.evictions);
      expect(stats.idleTimeouts).toBe(0);
      for (const s of evicted) {
        expect(s.conn.state).toBe(ConnectionState.CLOSED);
        expect(s.conn.error).toBe(`Flow evicted: the flow table is full (maxFlows ${CAP})`);
        expect(s.conn.timestampEnd).not.toBeNull();
      }
      // the policy: the least recently active go first, in the order they were last active
      expect(evicted.slice(0, 10)).toEqual(opened.slice(0, 10));
      // what is left: the keeper (active every batch) and the most recent sources
      const live = [...listener.sessions];
      expect(live.length).toBe(CAP);
      const keeperFlow = live.find((s) => s.conn.peername[1] === keeper!.address().port);
      expect(keeperFlow?.closed).toBe(false);
      // each source sent once: activity order is opening order, so the survivors are the last opened
      const sources = opened.filter((s) => s !== keeperFlow);
      expect(new Set(live.filter((s) => s !== keeperFlow))).toEqual(new Set(sources.slice(-(CAP - 1))));

      // the listener and the keeper's flow still work
      const before = keeperReplies.length;
      keeper!.send(Buffer.from('still there?'), port, '127.0.0.1');
      while (keeperReplies.length === before) await once(keeper!, 'message');
      expect(keeperReplies.at(-1)).toBe('still there?'.length);
    } finally {
      await closeSocket(keeper!);
    }
  });

  it('a flood from one source at a reader that never reads keeps memory bounded; other flows go on', async () => {
    await using listener = await UdpListener.listen({ receiveQueue: { datagrams: 128, bytes: 128 * 1024 } });
    const port = listener.address[1];
    const [flooder, other] = await boundSockets(2);
    const flows = new Map<number, UdpFlowSession>();
    listener.on('session', (s: UdpFlowSession) => flows.set(s.conn.peername[1], s));
    try {
      const big = Buffer.alloc(60_000, 1);
      const before = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 2000; i++) {
        flooder!.send(i % 4 === 0 ? big : randomBytes(i % 1400), port, '127.0.0.1');
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
      }
      await settle(listener, 2000);
      const flood = flows.get(flooder!.address().port)!;
      expect(flood.datagrams.queuedBytes).toBeLessThanOrEqual(128 * 1024);
      expect(flood.datagrams.queued).toBeLessThanOrEqual(128);
      expect(flood.datagrams.dropped).toBe(flood.datagrams.received - flood.datagrams.queued);
      expect(flood.datagrams.dropped).toBeGreaterThan(0);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);

      // another flow, read by its consumer, is untouched by the flood
      other!.send(Buffer.from('hello'), port, '127.0.0.1');
      await settle(listener, listener.stats.datagramsIn + 1);
      const calm = flows.get(other!.address().port)!;
      const { value } = await calm.datagrams[Symbol.asyncIterator]().next();
      expect(Buffer.from(value as Uint8Array).toString()).toBe('hello');
      expect(calm.datagrams.dropped).toBe(0);
    } finally {
      await Promise.all([closeSocket(flooder!), closeSocket(other!)]);
    }
  });
});
