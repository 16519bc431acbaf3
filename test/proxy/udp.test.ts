import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Client, ConnectionState, type Server } from '../../src/connection/index.js';
import type { UdpFlow } from '../../src/proxy/hooks.js';
import { type DatagramClass, UdpRelay } from '../../src/proxy/layers/udp.js';
import { dtlsDatagrams } from '../handshake/fixtures.js';
import { freeUdpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

async function bound(host = '127.0.0.1'): Promise<Socket> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('error', () => undefined);
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

/** An echo server that tags each reply with the port it came from, to prove routing. */
async function echoServer(host = '127.0.0.1'): Promise<Socket> {
  const s = await bound(host);
  // room for a whole turn of the relay (the native socket forwards a batch at once; this echo,
  // in the same process, reads 32 a turn)
  s.setRecvBufferSize(4 << 20);
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  return s;
}

/** Records the relay's events in order, as `event:role`. */
function record(relay: UdpRelay): string[] {
  const log: string[] = [];
  for (const event of [
    'clientConnected',
    'serverConnect',
    'serverConnected',
    'serverConnectError',
    'serverDisconnected',
    'clientDisconnected',
  ]) {
    relay.on(event, () => log.push(event));
  }
  return log;
}

describe('UdpRelay', () => {
  it('300 concurrent clients each get their own echo back, through their own upstream socket', async () => {
    const echo = await echoServer();
    await using relay = await UdpRelay.start({ upstream: { host: '127.0.0.1', port: echo.address().port } });
    const clients = await Promise.all(Array.from({ length: 300 }, () => bound()));
    try {
      const replies = clients.map((c, i) => {
        const got: string[] = [];
        c.on('message', (m) => got.push(m.toString()));
        return { got, expected: [0, 1, 2].map((k) => `client ${i} datagram ${k}`) };
      });
      // all together: every flow opens while the others connect upstream. The relay shares this
      // process, so let it catch up now and then, or the kernel drops what overflows the
      // listener's socket buffer (about 200 small datagrams by default)
      let sent = 0;
      for (let k = 0; k < 3; k++) {
        for (const [i, c] of clients.entries()) {
          c.send(`client ${i} datagram ${k}`, relay.address[1], '127.0.0.1');
          if (++sent % 50 === 0) {
            for (let t = 0; t < 1000 && relay.stats.datagramsIn < sent - 50; t++) {
              await new Promise((r) => setImmediate(r));
            }
          }
        }
      }
      const deadline = Date.now() + 10_000;
      while (replies.some((r) => r.got.length < 3) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      for (const r of replies) expect(r.got.sort()).toEqual(r.expected);
      const stats = relay.stats;
      expect(stats.flows).toBe(300);
      expect(relay.flows).toBe(300);
      expect(stats.classified).toEqual({ dtls: 0, quic: 0, raw: 300 });
      expect(stats.upstreamDatagramsOut).toBe(900);
      expect(stats.upstreamDatagramsIn).toBe(900);
      expect(stats.datagramsOut).toBe(900);
      expect(stats.upstreamFailures).toBe(0);
    } finally {
      await Promise.all([...clients.map(closeSocket), closeSocket(echo)]);
    }
  });

  it("fires mitmproxy's hooks in order and fills both models of a flow", async () => {
    const echo = await echoServer('::1');
    const upstreamPort = echo.address().port;
    await using relay = await UdpRelay.start({
      upstream: { host: '::1', port: upstreamPort },
      host: '::1',
      idleTimeout: 150,
    });
    const log = record(relay);
    const models: { client?: Client; server?: Server } = {};
    relay.on('clientConnected', (c: Client) => {
      models.client = c;
    });
    relay.on('serverConnected', (s: Server) => {
      models.server = s;
    });
    const client = await bound('::1');
    try {
      const reply = once(client, 'message');
      client.send('hello', relay.address[1], '::1');
      expect(((await reply)[0] as Buffer).toString()).toBe('hello');
      const { client: c, server: s } = models as { client: Client; server: Server };
      expect(c.peername).toEqual(['::1', client.address().port]);
      expect(c.sockname).toEqual(['::1', relay.address[1]]);
      expect(c.proxyMode).toBe(`reverse:udp://[::1]:${upstreamPort}`);
      expect(c.transportProtocol).toBe('udp');
      expect(s.address).toEqual(['::1', upstreamPort]);
      expect(s.peername).toEqual(['::1', upstreamPort]);
      expect(s.sockname?.[1]).toBeGreaterThan(0);
      expect(s.transportProtocol).toBe('udp');
      expect(s.timestampTcpSetup).toBeNull();
      expect(s.state).toBe(ConnectionState.OPEN);
      expect(s.timestampStart).toBeGreaterThanOrEqual(c.timestampStart);

      // idle: the client flow ends, then its upstream, then the hooks close in mitmproxy's order
      await once(relay, 'clientDisconnected');
      expect(log).toEqual([
        'clientConnected',
        'serverConnect',
        'serverConnected',
        'serverDisconnected',
        'clientDisconnected',
      ]);
      for (const conn of [c, s]) {
        expect(conn.state).toBe(ConnectionState.CLOSED);
        expect(conn.error).toBeNull();
        expect(conn.timestampEnd).not.toBeNull();
      }
      expect(relay.flows).toBe(0);
    } finally {
      await Promise.all([closeSocket(client), closeSocket(echo)]);
    }
  });

  it('an upstream that refuses (ICMP port unreachable) ends the flow with the error on the Server', async () => {
    const port = await freeUdpPort('127.0.0.1');
    await using relay = await UdpRelay.start({ upstream: { host: '127.0.0.1', port } });
    const log = record(relay);
    const servers: Server[] = [];
    relay.on('serverDisconnected', (s: Server) => servers.push(s));
    const client = await bound();
    try {
      client.send('anyone?', relay.address[1], '127.0.0.1');
      await once(relay, 'clientDisconnected');
      expect(log).toEqual([
        'clientConnected',
        'serverConnect',
        'serverConnected',
        'serverDisconnected',
        'clientDisconnected',
      ]);
      expect(servers[0]!.error).toMatch(/^Connection refused/);
      expect(relay.stats.flows).toBe(0);
      // the relay goes on: the next datagram is a new flow, refused again
      client.send('again?', relay.address[1], '127.0.0.1');
      await once(relay, 'clientDisconnected');
      expect(relay.stats.flowsOpened).toBe(2);
    } finally {
      await closeSocket(client);
    }
  });

  it('detects DTLS and QUIC flows by default from real first datagrams, and passes them through', async () => {
    const echo = await echoServer();
    await using relay = await UdpRelay.start({ upstream: { host: '127.0.0.1', port: echo.address().port } });
    const dtlsHello = dtlsDatagrams('openssl-dtls12').find((d) => d.dir === 'c')!.bytes; // first record 0xfeff
    const capture = JSON.parse(
      readFileSync(new URL('../fixtures/quic/captures/aes-128-gcm.json', import.meta.url), 'utf8'),
    );
    const quicInitial = Buffer.from(capture.datagrams[0].hex as string, 'hex');
    const firsts = [Buffer.from(dtlsHello), quicInitial, Buffer.from('plain')];
    const sockets = await Promise.all(firsts.map(() => bound()));
    try {
      for (const [i, s] of sockets.entries()) {
        const reply = once(s!, 'message');
        s!.send(firsts[i]!, relay.address[1], '127.0.0.1');
        expect(((await reply)[0] as Buffer).equals(firsts[i]!)).toBe(true);
      }
      expect(relay.stats.classified).toEqual({ dtls: 1, quic: 1, raw: 1 });
    } finally {
      await Promise.all([...sockets, echo].map((s) => closeSocket(s!)));
    }
  });

  it('asks a given classify about the first datagram of each flow only, and relays every class', async () => {
    const echo = await echoServer();
    const asked: number[] = [];
    const classify = (d: Uint8Array): DatagramClass => {
      asked.push(d[0]!);
      return d[0] === 0x16 ? 'dtls' : (d[0]! & 0x80) !== 0 ? 'quic' : 'raw';
    };
    await using relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echo.address().port },
      classify,
    });
    const [a, b, c] = await Promise.all([bound(), bound(), bound()]);
    try {
      const firsts = [Buffer.from([0x16, 0xfe, 0xff]), Buffer.from([0xc0, 0, 0, 0, 1]), Buffer.from('plain')];
      for (const [i, s] of [a!, b!, c!].entries()) {
        const replies = once(s, 'message');
        s.send(firsts[i]!, relay.address[1], '127.0.0.1');
        expect(((await replies)[0] as Buffer).equals(firsts[i]!)).toBe(true);
        const second = once(s, 'message');
        s.send(Buffer.from([0x16, 0x16]), relay.address[1], '127.0.0.1');
        await second;
      }
      expect(asked).toEqual([0x16, 0xc0, 'p'.charCodeAt(0)]);
      expect(relay.stats.classified).toEqual({ dtls: 1, quic: 1, raw: 1 });
    } finally {
      await Promise.all([a!, b!, c!, echo].map(closeSocket));
    }
  });

  it('a serverConnect handler can veto the upstream (server.error set): no connect, the flow ends', async () => {
    const echo = await echoServer();
    await using relay = await UdpRelay.start({ upstream: { host: '127.0.0.1', port: echo.address().port } });
    const log = record(relay);
    relay.on('serverConnect', (s: Server) => {
      s.error = 'Blocked by policy';
    });
    const client = await bound();
    try {
      client.send('x', relay.address[1], '127.0.0.1');
      await once(relay, 'clientDisconnected');
      expect(log).toEqual(['clientConnected', 'serverConnect', 'serverConnectError', 'clientDisconnected']);
      expect(relay.stats.upstreamFailures).toBe(1);
    } finally {
      await Promise.all([closeSocket(client), closeSocket(echo)]);
    }
  });

  it('evicting a client flow at the cap closes its upstream too; close() ends everything', async () => {
    const echo = await echoServer();
    await using relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echo.address().port },
      maxFlows: 2,
    });
    const disconnected: Server[] = [];
    relay.on('serverDisconnected', (s: Server) => disconnected.push(s));
    const clients = await Promise.all([bound(), bound(), bound()]);
    try {
      for (const c of clients) {
        const reply = once(c, 'message');
        c.send('hi', relay.address[1], '127.0.0.1');
        await reply;
      }
      while (disconnected.length < 1) await once(relay, 'serverDisconnected');
      expect(relay.stats).toMatchObject({ flows: 2, evictions: 1, flowsOpened: 3 });
      expect(disconnected[0]!.state).toBe(ConnectionState.CLOSED);
      await relay.close();
      expect(disconnected.length).toBe(3);
      expect(relay.flows).toBe(0);
    } finally {
      await Promise.all([...clients.map(closeSocket), closeSocket(echo)]);
    }
  });
});

describe('UdpRelay with addons (the UDP layer of the proxy)', () => {
  it("runs mitmproxy's raw UDP hooks in order; udpMessage rewrites and drops, the flow holding one message", async () => {
    const echo = await echoServer();
    const log: string[] = [];
    const seenAtEnd: { messages: number; current: unknown }[] = [];
    await using relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echo.address().port },
      idleTimeout: 200,
      addons: [
        {
          clientConnected: () => void log.push('clientConnected'),
          udpStart: () => void log.push('udpStart'),
          serverConnect: () => void log.push('serverConnect'),
          serverConnected: () => void log.push('serverConnected'),
          async udpMessage(flow: UdpFlow) {
            log.push('udpMessage');
            await new Promise((r) => setTimeout(r, 2));
            const m = flow.message!;
            const text = Buffer.from(m.content).toString();
            if (text === 'drop') m.drop();
            else if (m.fromClient) m.content = Buffer.from(`${text}!`);
          },
          udpEnd: (flow: UdpFlow) => {
            log.push('udpEnd');
            seenAtEnd.push({
              messages: flow.messagesFromClient + flow.messagesFromServer,
              current: flow.message,
            });
          },
          serverDisconnected: () => void log.push('serverDisconnected'),
          clientDisconnected: () => void log.push('clientDisconnected'),
        },
      ],
    });
    const client = await bound();
    const got: string[] = [];
    client.on('message', (m) => got.push(m.toString()));
    client.send('one', relay.address[1], '127.0.0.1');
    client.send('drop', relay.address[1], '127.0.0.1');
    client.send('two', relay.address[1], '127.0.0.1');
    await waitUntil(() => got.length === 2, 'two echoes');
    expect(got).toEqual(['one!', 'two!']);
    await waitUntil(() => log.includes('clientDisconnected'), 'the idle flow to end');
    expect(log.filter((h) => h !== 'udpMessage')).toEqual([
      'clientConnected',
      'udpStart',
      'serverConnect',
      'serverConnected',
      'udpEnd',
      'serverDisconnected',
      'clientDisconnected',
    ]);
    // 3 from the client, 2 echoes back
    expect(log.filter((h) => h === 'udpMessage')).toHaveLength(5);
    expect(seenAtEnd).toEqual([{ messages: 5, current: null }]);
    expect(relay.stats.hookDrops).toBe(1);
    await closeSocket(client);
    await closeSocket(echo);
  });

  it('a slow udpMessage hook: the flow queues a bounded number of datagrams and drops (counts) the rest', async () => {
    const echo = await echoServer();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    await using relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echo.address().port },
      pendingLimit: 8,
      addons: [
        {
          async udpMessage(flow: UdpFlow) {
            calls++;
            if (flow.message!.fromClient) await gate;
          },
        },
      ],
    });
    const client = await bound();
    const got: string[] = [];
    client.on('message', (m) => got.push(m.toString()));
    client.send('first', relay.address[1], '127.0.0.1');
    await waitUntil(() => calls === 1, 'the first hook call');
    for (let i = 0; i < 50; i++) client.send(`d${i}`, relay.address[1], '127.0.0.1');
    await waitUntil(() => relay.stats.datagramsIn === 51, 'all 51 datagrams in');
    // one in the hook, 8 queued: the other 42 dropped
    expect(relay.stats.queueDrops).toBe(42);
    release();
    await waitUntil(() => got.length === 9, 'nine echoes');
    expect(got).toEqual(['first', ...Array.from({ length: 8 }, (_, i) => `d${i}`)]);
    await closeSocket(client);
    await closeSocket(echo);
  });

  it('a hook that throws fails its flow alone (flowError, counted); other flows go on', async () => {
    const echo = await echoServer();
    const errors: unknown[] = [];
    await using relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echo.address().port },
      addons: [
        {
          udpMessage(flow: UdpFlow) {
            if (Buffer.from(flow.message!.content).toString() === 'boom') throw new Error('boom');
          },
        },
      ],
    });
    relay.on('flowError', (err: unknown) => errors.push(err));
    const [bad, good] = [await bound(), await bound()];
    const closed = new Promise<Client>((r) => relay.on('clientDisconnected', r));
    bad.send('boom', relay.address[1], '127.0.0.1');
    const c = await closed;
    expect(c.error).toBe('Addon hook udpMessage failed: boom');
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code: string }).code).toBe('ERR_PROXY_HOOK');
    expect(relay.stats.hookFailures).toBe(1);
    const reply = once(good, 'message');
    good.send('fine', relay.address[1], '127.0.0.1');
    expect(String((await reply)[0])).toBe('fine');
    await Promise.all([bad, good, echo].map(closeSocket));
  });
});
