import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectionState } from '../../src/connection/index.js';
import { type UdpFlowSession, UdpListener } from '../../src/transport/udp/index.js';

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

/**
 * Sockets bound to `address(i)` (default 127.0.0.1) and `port` (default: any). Linux routes all
 * of 127/8 to the loopback interface, so each socket can have an address of its own.
 */
async function boundSockets(
  count: number,
  address: (i: number) => string = () => '127.0.0.1',
  port = 0,
): Promise<Socket[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const s = createSocket('udp4');
      s.on('error', () => undefined);
      s.bind(port, address(i));
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
    const keeperReplies: string[] = [];
    keeper!.on('message', (m) => keeperReplies.push(m.toString()));
    let sent = 0;
    try {
      for (let b = 0; b < BATCHES; b++) {
        // an address per source: Linux hands freed ephemeral ports out again, and a source on
        // 127.0.0.1 that drew the port of a flow still live would touch it instead of opening one
        const sockets = await boundSockets(BATCH, (i) => `127.20.${b}.${i + 1}`);
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
      const keeperFlow = live.find(
        (s) => s.conn.peername[0] === '127.0.0.1' && s.conn.peername[1] === keeper!.address().port,
      );
      expect(keeperFlow?.closed).toBe(false);
      // each source sent once: activity order is opening order, so the survivors are the last opened
      const sources = opened.filter((s) => s !== keeperFlow);
      expect(new Set(live.filter((s) => s !== keeperFlow))).toEqual(new Set(sources.slice(-(CAP - 1))));

      // the listener and the keeper's flow still work
      // (the echoes of the batches' keeper datagrams may still be arriving: wait for this one)
      keeper!.send(Buffer.from('still there?'), port, '127.0.0.1');
      while (!keeperReplies.includes('still there?')) await once(keeper!, 'message');
      expect(keeperReplies.filter((r) => r === 'still there?')).toHaveLength(1);
    } finally {
      await closeSocket(keeper!);
    }
  });

  it('a collision flood from 2,000 sources 127.x.y.123 on one port: lookups stay flat, a legitimate flow goes on', async () => {
    // every source shared one bucket under the old key (the last three characters of the
    // address and the port): each of their datagrams walked a chain of up to 2,000 flows
    const SOURCES = 2000;
    const ROUNDS = 10;
    const PINGS = 20;
    await using listener = await UdpListener.listen();
    const port = listener.address[1];
    let legit: UdpFlowSession | undefined;
    listener.on('session', (s: UdpFlowSession) => {
      if (s.conn.peername[0] === '127.0.0.1') legit = s;
      s.datagrams.on('datagram', (d: Uint8Array) => s.datagrams.send(d));
    });
    const address = (i: number): string => `127.${1 + (i >> 8)}.${i & 255}.123`;
    const [first] = await boundSockets(1, address);
    const floodPort = first!.address().port;
    const flood = [first!, ...(await boundSockets(SOURCES - 1, (i) => address(i + 1), floodPort))];
    expect(new Set(flood.map((s) => s.address().port))).toEqual(new Set([floodPort]));
    const [client] = await boundSockets(1);
    const replies: string[] = [];
    client!.on('message', (m) => replies.push(m.toString()));
    const ping = async (text: string): Promise<void> => {
      const deadline = performance.now() + 5000;
      client!.send(text, port, '127.0.0.1');
      while (replies.at(-1) !== text && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1));
      }
      expect(replies.at(-1)).toBe(text);
    };
    let sent = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, s] of flood.entries()) {
          s.send(`flood ${round}`, port, '127.0.0.1');
          sent++;
          if (i % 50 === 49) await new Promise((r) => setImmediate(r));
          // the legitimate flow's round trips, in the middle of the flood
          if (i % 100 === 0) await ping(`ping ${round}.${i}`);
        }
        await settle(listener, sent + PINGS * (round + 1));
      }
      const stats = listener.stats;
      expect(replies.length).toBe(ROUNDS * PINGS);
      expect(legit?.closed).toBe(false);
      expect(legit?.conn.error).toBeNull();
      expect(stats.bucketFull).toBe(0);
      expect(stats.evictions).toBe(0);
      // the datagrams the kernel dropped under load opened no flow, but most get through
      expect(stats.flowsOpened).toBeGreaterThan(SOURCES * 0.9);
      expect(stats.datagramsIn).toBeGreaterThan(ROUNDS * SOURCES * 0.9);
      // one entry compared per datagram (give or take a chance collision), where the old key
      // made it about a thousand
      expect(stats.lookupProbes).toBeLessThanOrEqual(stats.datagramsIn + 100);
    } finally {
      await Promise.all([...flood, client!].map(closeSocket));
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
