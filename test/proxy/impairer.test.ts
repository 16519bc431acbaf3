/**
 * The impairer, one direction at a time: what each fault does to a known sequence of datagrams
 * (each carrying its index), that a seed replays the same decisions, and the socket seam with
 * NAT rebinding against a real UDP echo on loopback.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { DatagramImpairer, LinkClock, type Wire, zeroCounters } from '../../src/proxy/impair/impairer.js';
import { SeededRandom } from '../../src/proxy/impair/random.js';
import { impairSocket } from '../../src/proxy/impair/socket.js';
import { parseImpairSpec } from '../../src/proxy/impair/spec.js';
import {
  type DatagramSocket,
  type DatagramSocketOptions,
  openDatagramSocket,
} from '../../src/transport/datagram/index.js';
import { waitUntil } from '../helpers/wait.js';

interface Received {
  index: number;
  bytes: Uint8Array;
  at: number;
}

interface Link {
  impairer: DatagramImpairer;
  wire: Wire;
  out: Received[];
}

const open: DatagramImpairer[] = [];
afterEach(() => {
  for (const i of open.splice(0)) i.close();
});

/** An impairer for the `up` direction of `spec`, and what reached its wire. */
function made(spec: string, seed = 1): Link {
  const out: Received[] = [];
  const wire: Wire = {
    send: (d) => void out.push({ index: (d[0]! << 8) | d[1]!, bytes: d, at: performance.now() }),
  };
  const impairer = new DatagramImpairer(parseImpairSpec(spec).up, new SeededRandom(seed), new LinkClock());
  open.push(impairer);
  return { impairer, wire, out };
}

/** Datagram `i` (1-based, as the drop list counts): its index in the first two bytes, `size` bytes in all. */
function datagram(i: number, size = 100): Uint8Array {
  const d = new Uint8Array(size).fill(0xaa);
  d[0] = i >> 8;
  d[1] = i & 0xff;
  return d;
}

function push(l: Link, d: Uint8Array): void {
  l.impairer.push(d, undefined, undefined, l.wire);
}

function send(l: Link, from: number, to: number, size = 100): void {
  for (let i = from; i <= to; i++) push(l, datagram(i, size));
}

describe('DatagramImpairer', () => {
  it('loses in bursts of at most `burst`, and the same seed drops the same datagrams', () => {
    const a = made('loss=0.3,burst=3', 7);
    const b = made('loss=0.3,burst=3', 7);
    const c = made('loss=0.3,burst=3', 8);
    for (const l of [a, b, c]) send(l, 1, 2000);
    const passed = (l: { out: Received[] }) => l.out.map((r) => r.index);
    expect(passed(a)).toEqual(passed(b));
    expect(passed(a)).not.toEqual(passed(c));
    const kept = new Set(passed(a));
    let run = 0;
    let longest = 0;
    for (let i = 1; i <= 2000; i++) {
      run = kept.has(i) ? 0 : run + 1;
      longest = Math.max(longest, run);
    }
    expect(longest).toBeLessThanOrEqual(3);
    expect(longest).toBeGreaterThan(1);
    expect(a.impairer.counters.dropped).toBe(2000 - kept.size);
    // a burst starts with p = 0.3 and lasts 2 on average: about 0.3 * 2 / (1 + 0.3) of all
    expect(a.impairer.counters.dropped / 2000).toBeGreaterThan(0.35);
    expect(a.impairer.counters.dropped / 2000).toBeLessThan(0.55);
  });

  it('drops by index (the first is 1) and above the MTU', () => {
    const l = made('drop=3,4,7');
    send(l, 1, 8);
    expect(l.out.map((r) => r.index)).toEqual([1, 2, 5, 6, 8]);
    const m = made('mtu=300');
    push(m, datagram(1, 300));
    push(m, datagram(2, 301));
    expect(m.out.map((r) => r.index)).toEqual([1]);
    expect(m.impairer.counters.dropped).toBe(1);
  });

  it('corrupts one byte of the first 50, never a QUIC Version Negotiation, and leaves the original alone', () => {
    const l = made('corrupt=1', 3);
    const originals: Uint8Array[] = [];
    for (let i = 1; i <= 200; i++) {
      const d = datagram(i, 120);
      d[0] = 0x00; // a short header: not Version Negotiation
      originals.push(Uint8Array.from(d));
      push(l, d);
      expect(d).toEqual(originals[i - 1]);
    }
    expect(l.impairer.counters.corrupted).toBe(200);
    for (let i = 0; i < 200; i++) {
      const diff = [...l.out[i]!.bytes].flatMap((b, at) => (b === originals[i]![at] ? [] : [at]));
      expect(diff).toHaveLength(1);
      expect(diff[0]).toBeLessThan(50);
    }
    const vn = new Uint8Array([0xc0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 1]);
    push(l, vn);
    expect(l.out.at(-1)!.bytes).toEqual(vn);
    expect(l.impairer.counters.corrupted).toBe(200);
  });

  it('duplicates', () => {
    const l = made('duplicate=1');
    send(l, 1, 3);
    expect(l.out.map((r) => r.index)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(l.impairer.counters.duplicated).toBe(3);
  });

  it('reorders: a held datagram goes after `gap` later ones, each counted once', async () => {
    const l = made('reorder=0.3,gap=2', 11);
    send(l, 1, 500);
    // the last held ones go when nothing overtakes them in time
    await waitUntil(() => l.out.length === 500, 'every datagram out');
    const order = l.out.map((r) => r.index);
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    let late = 0;
    let highest = 0;
    for (const i of order) {
      if (i < highest) late++;
      highest = Math.max(highest, i);
    }
    expect(late).toBeGreaterThan(50);
    expect(l.impairer.counters.reordered).toBe(late);
    // gap 2: a late datagram is never more than a few places behind
    for (let at = 0; at < order.length; at++) expect(at + 1 - order[at]!).toBeLessThanOrEqual(2 * 5);
  });

  it('delays by delay +- jitter', async () => {
    const l = made('delay=40,jitter=10');
    const sent = performance.now();
    send(l, 1, 20);
    expect(l.out).toHaveLength(0);
    await waitUntil(() => l.out.length === 20, 'the delayed datagrams');
    for (const r of l.out) {
      expect(r.at - sent).toBeGreaterThanOrEqual(29);
      expect(r.at - sent).toBeLessThan(40 + 10 + 60);
    }
    expect(l.impairer.counters.delayed).toBe(20);
  });

  it('paces through the token bucket and drops beyond its queue', async () => {
    // 1000 B datagrams at 800 kbit/s: 10 ms each; the bucket lets 3 go at once, 20 wait, the rest are lost
    const l = made('rate=800k,queue=20');
    const start = performance.now();
    send(l, 1, 40, 1000);
    expect(l.impairer.counters.dropped).toBe(40 - 20 - 3);
    await waitUntil(() => l.out.length === 23, 'the queue to drain', { timeoutMs: 2000 });
    expect(l.out.at(-1)!.at - start).toBeGreaterThanOrEqual(20 * 10 - 5);
    expect(l.impairer.counters.delayed).toBe(20);
  });

  it('blackholes: everything sent in an OFF period is lost, ON periods pass', async () => {
    const l = made('blackhole=40/40');
    const start = performance.now();
    let i = 0;
    while (performance.now() - start < 200) {
      i++;
      send(l, i, i);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(l.out.length).toBeGreaterThan(0);
    expect(l.impairer.counters.dropped).toBeGreaterThan(0);
    for (const r of l.out) expect((r.at - start) % 80).toBeLessThan(40 + 3);
  });

  it('counts into the counters it was given', () => {
    const counters = zeroCounters();
    const impairer = new DatagramImpairer(
      parseImpairSpec('drop=1').up,
      new SeededRandom(1),
      new LinkClock(),
      counters,
    );
    impairer.push(datagram(1), undefined, undefined, { send: () => undefined });
    expect(counters.dropped).toBe(1);
  });
});

describe('impairSocket', () => {
  const sockets: Socket[] = [];
  const ours: DatagramSocket[] = [];
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
    await Promise.all(ours.splice(0).map((s) => s.close()));
  });

  async function openSocket(options: DatagramSocketOptions): Promise<DatagramSocket> {
    const s = await openDatagramSocket(options);
    ours.push(s);
    return s;
  }

  async function bound(address = '127.0.0.1'): Promise<Socket> {
    const s = createSocket('udp4');
    sockets.push(s);
    s.bind(0, address);
    await once(s, 'listening');
    return s;
  }

  async function rebinding(
    address: boolean,
  ): Promise<{ sources: Set<string>; echoed: number; rebound: number }> {
    const echo = await bound();
    const sources = new Set<string>();
    echo.on('message', (m, r) => {
      sources.add(`${r.address}:${r.port}`);
      echo.send(m, r.port, r.address);
    });
    const client = await openSocket({
      family: 4,
      address: '127.0.0.1',
      port: 0,
      connect: { address: '127.0.0.1', port: echo.address().port },
    });
    const counters = zeroCounters();
    impairSocket(client, null, { everyMs: 40, address }, counters);
    let echoed = 0;
    client.onMessage(() => echoed++);
    for (let i = 0; i < 20; i++) {
      client.send(Buffer.from(`ping ${i}`));
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitUntil(() => echoed === 20, 'every echo back on the original socket');
    return { sources, echoed, rebound: counters.rebound };
  }

  it('rebinds to a new port toward the server; replies to any of them reach the original socket', async () => {
    const { sources, rebound } = await rebinding(false);
    expect(rebound).toBeGreaterThanOrEqual(2);
    expect(sources.size).toBe(rebound + 1);
    for (const s of sources) expect(s).toMatch(/^127\.0\.0\.1:/);
  });

  it('rebind-addr: a new 127.x address too', async () => {
    const { sources, rebound } = await rebinding(true);
    expect(rebound).toBeGreaterThanOrEqual(2);
    const addresses = new Set([...sources].map((s) => s.split(':')[0]));
    expect(addresses).toContain('127.0.0.1');
    expect(addresses).toContain('127.0.0.2');
    expect(addresses.size).toBe(rebound + 1);
  });

  it('impairs what the socket sends to any destination (a listener socket)', async () => {
    const peer = await bound();
    let got = 0;
    peer.on('message', () => got++);
    const listener = await openSocket({ family: 4, address: '127.0.0.1', port: 0 });
    const counters = zeroCounters();
    const impairer = new DatagramImpairer(
      parseImpairSpec('drop=2').down,
      new SeededRandom(1),
      new LinkClock(),
      counters,
    );
    impairSocket(listener, impairer, null, counters);
    for (let i = 0; i < 3; i++) listener.send(Buffer.from('x'), peer.address().port, '127.0.0.1');
    await waitUntil(() => got === 2, 'two of three datagrams');
    expect(counters.dropped).toBe(1);
  });
});
