/**
 * Spoofing and robustness of the DTLS driver: handshakes through an in-process relay that loses
 * and reorders datagrams, spoofed ClientHellos that must cost no flow, garbage, replayed and
 * truncated datagrams that must not disturb an established session, detection of raw UDP on a
 * DTLS port, timeouts and the idle end.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { ConnectionState } from '../../src/connection/index.js';
import { DtlsContext } from '../../src/transport/dtls/engine.js';
import {
  type DtlsConnectOptions,
  DtlsListener,
  type DtlsListenOptions,
  dtls,
} from '../../src/transport/dtls/index.js';
import { ConnectError } from '../../src/transport/errors.js';
import type { DatagramSession } from '../../src/transport/types.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';
import { DatagramRelay } from './dtls-relay.js';

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listener(options: DtlsListenOptions = {}): Promise<DtlsListener> {
  const l = await DtlsListener.listen({
    host: HOST,
    cert: EC_CERT_PEM,
    key: EC_KEY_PEM,
    ALPNProtocols: ['x'],
    initialRetransmitMs: 80,
    ...options,
  });
  cleanups.push(() => l.close());
  return l;
}

async function client(port: number, options: Partial<DtlsConnectOptions> = {}) {
  const s = await dtls.connect({
    host: HOST,
    port,
    ca: EC_CERT_PEM,
    ALPNProtocols: ['x'],
    initialRetransmitMs: 80,
    connectTimeout: 10_000,
    ...options,
  });
  cleanups.push(() => s.close());
  return s;
}

/** A DTLS 1.2 client's first datagram (a ClientHello without a cookie), from the engine. */
function firstFlight(): Buffer {
  const context = new DtlsContext({ role: 'client', rejectUnauthorized: false });
  const session = context.createSession({ servername: 'localhost' });
  session.start();
  const [hello] = session.takeOutgoing() ?? [];
  session.destroy();
  context.destroy();
  if (hello === undefined) throw new Error('the engine made no ClientHello');
  return hello;
}

async function relay(port: number): Promise<DatagramRelay> {
  const r = await DatagramRelay.start(HOST, port);
  cleanups.push(() => r.stop());
  return r;
}

/** One echo round trip: `a` sends, `b` echoes. */
async function echo(a: DatagramSession, b: DatagramSession, text: string): Promise<string> {
  b.datagrams.once('datagram', (d: Uint8Array) => b.datagrams.send(d));
  const reply = once(a.datagrams, 'datagram') as Promise<[Uint8Array]>;
  a.datagrams.send(Buffer.from(text));
  return Buffer.from((await reply)[0]).toString();
}

async function udpSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, HOST);
  await once(s, 'listening');
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

describe('handshakes under loss and reordering (in-process relay, 300-byte MTU)', () => {
  it.each([
    [
      'the first copy of every other datagram lost',
      (_d: string, i: number) => (i % 2 === 0 && i < 12 ? 'drop' : 'pass'),
    ],
    [
      'flights reordered (every second datagram held back 25 ms)',
      (_d: string, i: number) => (i % 2 === 1 ? { delayMs: 25 } : 'pass'),
    ],
    [
      'loss and reordering both ways',
      (d: string, i: number) =>
        d === 'c2s'
          ? i === 1 || i === 3
            ? 'drop'
            : 'pass'
          : i % 3 === 0
            ? { delayMs: 30 }
            : i === 2
              ? 'drop'
              : 'pass',
    ],
  ] as const)('%s: both ends up, the models agree, records flow', async (_name, policy) => {
    const l = await listener({ mtu: 300 });
    const r = await relay(l.address[1]);
    r.policy = policy as DatagramRelay['policy'];
    const accepted = once(l, 'session') as Promise<[DatagramSession<Client>]>;
    const out = await client(r.port, { mtu: 300, servername: 'localhost' });
    const [inbound] = await accepted;
    expect(r.dropped + r.delayed).toBeGreaterThan(0);
    expect(Math.max(...r.seen.s2c.map((d) => d.length))).toBeLessThanOrEqual(300);
    expect(r.seen.s2c.length).toBeGreaterThan(3); // the certificate flight came in pieces
    for (const key of ['tlsVersion', 'cipher', 'alpn'] as const)
      expect(inbound.conn[key]).toBe(out.conn[key]);
    expect(inbound.conn.sni).toBe('localhost');
    r.policy = () => 'pass';
    expect(await echo(out, inbound, 'through the relay')).toBe('through the relay');
    expect(await echo(inbound, out, 'and back')).toBe('and back');
    expect(l.stats.flows).toBe(1);
  });
});

describe('spoofing', () => {
  it('ClientHellos from other ports (with or without a captured cookie) get a HelloVerifyRequest and no flow', async () => {
    const l = await listener();
    const r = await relay(l.address[1]);
    const accepted = once(l, 'session') as Promise<[DatagramSession<Client>]>;
    const out = await client(r.port);
    const [inbound] = await accepted;
    const [hello, helloWithCookie] = r.seen.c2s;
    expect(hello![13]).toBe(1);
    expect(helloWithCookie![13]).toBe(1);
    const before = l.stats;
    expect(before.flowsOpened).toBe(1);
    const spoofers = await Promise.all(Array.from({ length: 20 }, () => udpSocket()));
    let answers = 0;
    for (const s of spoofers) s.on('message', () => answers++);
    for (const s of spoofers) {
      s.send(hello!, l.address[1], HOST);
      // the cookie is bound to the real client's address and port: worthless from another port
      s.send(helloWithCookie!, l.address[1], HOST);
    }
    await waitUntil(() => answers === 40, '40 HelloVerifyRequests');
    const after = l.stats;
    expect(after.flows).toBe(1);
    expect(after.flowsOpened).toBe(1);
    expect(after.cookieReplies - before.cookieReplies).toBe(40);
    expect(after.refused - before.refused).toBe(40);
    expect(answers).toBe(40); // a HelloVerifyRequest each, from the listener's socket
    expect(await echo(out, inbound, 'still here')).toBe('still here');
  });

  it('garbage that is not a ClientHello from unknown peers is dropped without a reply or a flow', async () => {
    const l = await listener();
    const s = await udpSocket();
    let answers = 0;
    s.on('message', () => answers++);
    for (let i = 0; i < 50; i++) s.send(randomBytes(1 + ((i * 37) % 1400)), l.address[1], HOST);
    await waitUntil(() => l.stats.refused === 50, 'the 50 datagrams to be refused');
    // a barrier: a real ClientHello from the same socket is answered (a HelloVerifyRequest), and
    // datagrams between two sockets on loopback keep their order, so any earlier reply came first
    const barrier = once(s, 'message');
    s.send(firstFlight(), l.address[1], HOST);
    await barrier;
    expect(answers).toBe(1);
    expect(l.stats.flowsOpened).toBe(0);
    expect(l.stats.refused).toBe(51);
  });
});

describe('an established session is not disturbed', () => {
  it('by garbage, replayed and truncated datagrams, both ways', async () => {
    const l = await listener();
    const r = await relay(l.address[1]);
    const accepted = once(l, 'session') as Promise<[DatagramSession<Client>]>;
    const out = await client(r.port);
    const [inbound] = await accepted;
    expect(await echo(out, inbound, 'before')).toBe('before');
    expect(await echo(inbound, out, 'before, back')).toBe('before, back');
    const recorded = { c2s: [...r.seen.c2s], s2c: [...r.seen.s2c] };
    for (const direction of ['c2s', 's2c'] as const) {
      for (const d of recorded[direction]) {
        r.inject(direction, d); // replay: handshake flights and application records
        r.inject(direction, d.subarray(0, Math.max(1, d.length >> 1))); // truncated
        r.inject(direction, d.subarray(0, 13)); // a bare record header
      }
      for (let i = 0; i < 30; i++) r.inject(direction, randomBytes(1 + ((i * 53) % 1300)));
      // DTLS-shaped garbage: an application-data record of epoch 1 with random bytes
      for (let i = 0; i < 10; i++) {
        const g = randomBytes(13 + 40);
        g[0] = 23;
        g.writeUInt16BE(0xfefd, 1);
        g.writeUInt16BE(1, 3);
        g.writeUInt16BE(40, 11);
        r.inject(direction, g);
      }
    }
    // the relay keeps order: once a record sent after the injections arrives, they were all read
    expect(await echo(out, inbound, 'after')).toBe('after');
    expect(await echo(inbound, out, 'after, back')).toBe('after, back');
    expect(out.closed || inbound.closed).toBe(false);
    for (const conn of [out.conn, inbound.conn]) {
      expect(conn.error).toBeNull();
      expect(conn.state).toBe(ConnectionState.OPEN);
    }
    expect(l.stats.flows).toBe(1);
    expect(l.stats.handshakes).toBe(1);
  });
});

describe('detect: DTLS and raw UDP on one port', () => {
  it('a flow that does not start with a DTLS ClientHello is a raw UDP session; DTLS beside it', async () => {
    const l = await listener({ detect: true });
    const sessions: DatagramSession<Client>[] = [];
    l.on('session', (s: DatagramSession<Client>) => {
      sessions.push(s);
      s.datagrams.on('datagram', (d: Uint8Array) => s.datagrams.send(d));
    });
    const raw = await udpSocket();
    const reply = once(raw, 'message') as Promise<[Buffer]>;
    raw.send(Buffer.from('plain udp'), l.address[1], HOST);
    expect((await reply)[0].toString()).toBe('plain udp');
    const out = await client(l.address[1]);
    const echoed = once(out.datagrams, 'datagram') as Promise<[Uint8Array]>;
    out.datagrams.send(Buffer.from('over dtls'));
    expect(Buffer.from((await echoed)[0]).toString()).toBe('over dtls');
    expect(sessions.map((s) => [s.scheme, s.conn.tls, s.conn.tlsVersion])).toEqual([
      ['udp', false, null],
      ['dtls', true, 'DTLSv1.2'],
    ]);
    expect(l.stats.rawFlows).toBe(1);
  });
});

describe('ends', () => {
  it('a server that never answers: ETIMEDOUT after `connectTimeout`, the model says why', async () => {
    const silent = await udpSocket();
    const err = await client(silent.address().port, { connectTimeout: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('ETIMEDOUT');
    expect((err as ConnectError).conn.error).toBe(
      'The remote server did not complete the DTLS handshake. (handshake timed out after 300 ms)',
    );
  });

  it('a server that is not DTLS (an echo service): "does not speak DTLS"', async () => {
    const echoServer = await udpSocket();
    echoServer.on('message', (d, rinfo) => echoServer.send(d, rinfo.port, rinfo.address));
    const err = await client(echoServer.address().port, { connectTimeout: 2000 }).catch((e: unknown) => e);
    expect((err as ConnectError).conn.error).toMatch(/^The remote server does not speak DTLS\. \(.+\)$/);
  });

  it('the idle timeout ends a silent session without an error', async () => {
    const l = await listener({ idleTimeout: 200 });
    const accepted = once(l, 'session') as Promise<[DatagramSession<Client>]>;
    await client(l.address[1]);
    const [inbound] = await accepted;
    await once(inbound, 'close');
    expect(inbound.conn.error).toBeNull();
    expect(inbound.conn.state).toBe(ConnectionState.CLOSED);
    expect(l.stats.idleTimeouts).toBe(1);
  });

  it('records written just before destroy() or an abort still leave (written in one task, sent in one take)', async () => {
    const l = await listener();
    for (const end of ['destroy', 'abort'] as const) {
      const accepted = once(l, 'session') as Promise<[DatagramSession<Client>]>;
      const ac = new AbortController();
      const out = await client(l.address[1], { signal: ac.signal });
      const [inbound] = await accepted;
      const got: number[] = [];
      inbound.datagrams.on('datagram', (d: Uint8Array) => got.push(d[0]!));
      for (let i = 0; i < 20; i++) out.datagrams.send(Uint8Array.of(i));
      if (end === 'destroy') out.destroy();
      else ac.abort();
      await waitUntil(() => got.length === 20, `the 20 records (${end}: ${got.length})`);
      expect(got).toEqual([...Array(20).keys()]);
    }
  });

  it('the key log gets CLIENT_RANDOM lines on both ends, the same ones', async () => {
    const server: string[] = [];
    const clientLines: string[] = [];
    const l = await listener({ keylog: (line) => server.push(line.toString()) });
    const accepted = once(l, 'session');
    await client(l.address[1], { keylog: (line) => clientLines.push(line.toString()) });
    await accepted;
    expect(clientLines.length).toBeGreaterThan(0);
    expect(clientLines[0]).toMatch(/^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}\n$/);
    expect(server).toEqual(clientLines);
  });
});

describe('a listener on a wildcard address', () => {
  it("native: the cookie exchange and the handshake answer from the address the client reached, its Client's sockname; node:dgram: the wildcard", async () => {
    const l = await listener({ host: '0.0.0.0' });
    const native = l.datagramBackend === 'native';
    expect(l.datagramBackend).toBe(process.env.WIRELAYER_DATAGRAM === 'dgram' ? 'dgram' : 'native');
    const port = l.address[1];
    // our client's socket is connected to the address it dials: an answer from another is dropped
    for (const to of native ? ['127.0.0.2', '127.0.0.3'] : ['127.0.0.1']) {
      const accepted = once(l, 'session') as Promise<[DatagramSession<Client>]>;
      const out = await client(port, { host: to, rejectUnauthorized: false });
      const [inbound] = await accepted;
      expect(inbound.conn.sockname).toEqual([native ? to : '0.0.0.0', port]);
      const echoed = once(out.datagrams, 'datagram') as Promise<[Uint8Array]>;
      inbound.datagrams.on('datagram', (d: Uint8Array) => inbound.datagrams.send(d));
      out.datagrams.send(Buffer.from(`via ${to}`));
      expect(String(Buffer.from((await echoed)[0]))).toBe(`via ${to}`);
    }
    expect(l.stats.cookieReplies).toBeGreaterThan(0);
  });
});
