/**
 * `impair` on the proxy's modes, end to end on loopback: raw UDP through `reverse:udp` (drops,
 * duplicates, the same decisions for the same seed, NAT rebinding seen by the upstream), what a
 * spec may ask of stream modes, and that a proxy without impairment leaves its sockets alone.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Impairment } from '../../src/proxy/impair/index.js';
import { ImpairSpecError, parseImpairSpec } from '../../src/proxy/impair/spec.js';
import { UdpRelay } from '../../src/proxy/layers/udp.js';
import { Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { waitUntil } from '../helpers/wait.js';

const sockets: UdpSocket[] = [];
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function bound(): Promise<UdpSocket> {
  const s = createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

/** A UDP echo that records each datagram's text and its source. */
async function echo(): Promise<{ port: number; got: string[]; sources: Set<string> }> {
  const s = await bound();
  const got: string[] = [];
  const sources = new Set<string>();
  s.on('message', (m, r) => {
    got.push(m.toString());
    sources.add(`${r.address}:${r.port}`);
    s.send(m, r.port, r.address);
  });
  return { port: s.address().port, got, sources };
}

/** A client of the proxy's UDP mode: what came back, in order. */
async function client(proxyPort: number): Promise<{ send(text: string): void; back: string[] }> {
  const s = await bound();
  const back: string[] = [];
  s.on('message', (m) => back.push(m.toString()));
  return { send: (text) => s.send(text, proxyPort, '127.0.0.1'), back };
}

describe('impair on reverse:udp', () => {
  it('drops datagram 2 toward the server and duplicates every one back, counted per direction', async () => {
    const upstream = await echo();
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:udp://127.0.0.1:${upstream.port}`],
      impair: 'up:drop=2,down:duplicate=1',
    });
    const c = await client(proxy.listening[0]!.address[1]);
    for (const text of ['one', 'two', 'three']) {
      c.send(text);
      await waitUntil(() => upstream.got.includes(text) || proxy.stats.impair!.up.dropped > 0, text);
    }
    await waitUntil(() => c.back.length === 4, 'two echoes, each twice');
    expect(upstream.got).toEqual(['one', 'three']);
    expect(c.back).toEqual(['one', 'one', 'three', 'three']);
    expect(proxy.stats.impair).toMatchObject({
      up: { dropped: 1, duplicated: 0 },
      down: { dropped: 0, duplicated: 2 },
    });
  });

  it('the same seed makes the same decisions', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const upstream = await echo();
      await using proxy = await WirelayerProxy.start({
        modes: [`reverse:udp://127.0.0.1:${upstream.port}`],
        impair: `up:loss=0.5,seed=${seed}`,
      });
      const c = await client(proxy.listening[0]!.address[1]);
      for (let i = 0; i < 40; i++) {
        const before = upstream.got.length + proxy.stats.impair!.up.dropped;
        c.send(`d${i}`);
        await waitUntil(() => upstream.got.length + proxy.stats.impair!.up.dropped > before, `datagram ${i}`);
      }
      return upstream.got;
    };
    const a = await run(99);
    expect(a.length).toBeGreaterThan(5);
    expect(a.length).toBeLessThan(35);
    expect(await run(99)).toEqual(a);
    expect(await run(100)).not.toEqual(a);
  });

  it('rebinds the upstream socket: the server sees new source ports, the client keeps its flow', async () => {
    const upstream = await echo();
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:udp://127.0.0.1:${upstream.port}`],
      impair: 'rebind=30',
    });
    const c = await client(proxy.listening[0]!.address[1]);
    for (let i = 0; i < 10; i++) {
      c.send(`r${i}`);
      await waitUntil(() => c.back.includes(`r${i}`), `echo ${i}`);
      await new Promise((r) => setTimeout(r, 15));
    }
    expect(proxy.stats.impair!.up.rebound).toBeGreaterThanOrEqual(2);
    expect(upstream.sources.size).toBe(proxy.stats.impair!.up.rebound + 1);
    expect(proxy.stats.flows).toBe(1);
  });
});

describe('impair: what each mode takes', () => {
  it('refuses packet faults when every mode is a stream (tcp, tls), naming the fault', async () => {
    await expect(
      WirelayerProxy.start({ modes: ['reverse:tcp://127.0.0.1:1'], impair: 'delay=10,up:loss=0.1' }),
    ).rejects.toThrow(ImpairSpecError);
    await expect(
      WirelayerProxy.start({ modes: ['reverse:tls://127.0.0.1:1'], impair: 'corrupt=0.1' }),
    ).rejects.toThrow(/corrupt needs a packet layer/);
    // a datagram mode beside takes them; the stream mode takes the timing
    const proxy = await WirelayerProxy.start({
      modes: ['reverse:tcp://127.0.0.1:1', 'reverse:udp://127.0.0.1:1'],
      impair: 'delay=10,loss=0.1',
    });
    await proxy.close();
    expect(proxy.stats.impair).toMatchObject({ up: { dropped: 0 }, down: { dropped: 0 } });
  });

  it('a bad spec is an ImpairSpecError naming its term', async () => {
    await expect(
      WirelayerProxy.start({ modes: ['reverse:udp://127.0.0.1:1'], impair: 'loss=0.1,delay=-3' }),
    ).rejects.toMatchObject({ code: 'ERR_IMPAIR_SPEC', term: 'delay=-3' });
  });

  it('without impairment, no socket is touched: stats.impair is null and sends are the socket’s own', async () => {
    const upstream = await echo();
    await using plain = await UdpRelay.start({ upstream: { host: '127.0.0.1', port: upstream.port } });
    const own = Object.getPrototypeOf(plain.listener.socket).send;
    expect(plain.listener.socket.send).toBe(own);
    await using impaired = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: upstream.port },
      impair: new Impairment(parseImpairSpec('down:delay=1')),
    });
    expect(impaired.listener.socket.send).not.toBe(own);
    await using proxy = await WirelayerProxy.start({ modes: [`reverse:udp://127.0.0.1:${upstream.port}`] });
    expect(proxy.stats.impair).toBeNull();
  });
});
