/**
 * The proxy and the PROXY protocol v2: `proxyProtocolUpstream` puts a header naming the client in
 * front of every datagram of the server leg (read here by a test upstream), and proxies chained
 * (one sending headers, the next accepting them from it) keep the original client's address end
 * to end, for reverse:udp, reverse:dtls and reverse:quic, over IPv4 and IPv6.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '../../src/connection/index.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { parseProxyHeader } from '../../src/transport/datagram/proxy-v2.js';
import { dtls } from '../../src/transport/dtls/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import type { DatagramSession } from '../../src/transport/types.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';
import { tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let ca: string;
beforeAll(async () => {
  await (await WirelayerProxy.start({ modes: ['reverse:dtls://127.0.0.1:1'], confdir: conf.dir })).close();
  ca = readFileSync(conf.caFile, 'utf8');
});
afterAll(() => conf.remove());

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function bound(host: string): Promise<Socket> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.bind(0, host);
  await once(s, 'listening');
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

async function proxy(options: ProxyOptions): Promise<WirelayerProxy> {
  const p = await WirelayerProxy.start({ confdir: conf.dir, ...options });
  cleanups.push(() => p.close());
  return p;
}

/** The Client models a proxy reported. */
function clients(p: WirelayerProxy): Client[] {
  const seen: Client[] = [];
  p.on('model', (event: string, conn: Connection) => {
    if (event === 'start' && conn.constructor.name === 'Client') seen.push(conn as Client);
  });
  return seen;
}

const bracket = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** A datagram server that reads each datagram's header, keeps it, and echoes the payload without one. */
async function headerReadingUpstream(
  host: string,
): Promise<{ socket: Socket; headers: ReturnType<typeof parseProxyHeader>[] }> {
  const socket = await bound(host);
  const headers: ReturnType<typeof parseProxyHeader>[] = [];
  socket.on('message', (d: Buffer, r) => {
    const header = parseProxyHeader(d);
    headers.push(header);
    socket.send(d.subarray(header.length), r.port, r.address);
  });
  return { socket, headers };
}

describe('reverse:udp with proxyProtocolUpstream', () => {
  // 127.0.0.3: a client the test can tell from the proxies (IPv6 has only ::1: ports tell them apart)
  for (const [host, clientHost] of [
    ['127.0.0.1', '127.0.0.3'],
    ['::1', '::1'],
  ] as const) {
    it(`every upstream datagram names the client; replies come back without a header (${host})`, async () => {
      const upstream = await headerReadingUpstream(host);
      const p = await proxy({
        modes: [`reverse:udp://${bracket(host)}:${upstream.socket.address().port}`],
        listenHost: host,
        proxyProtocolUpstream: true,
      });
      const listen = p.listening[0]!.address;
      const client = await bound(clientHost);
      const replies: string[] = [];
      client.on('message', (m: Buffer) => replies.push(String(m)));
      for (const text of ['a', 'bb', 'ccc']) client.send(text, listen[1], host);
      await waitUntil(() => replies.length === 3, 'three replies');
      expect(replies.sort()).toEqual(['a', 'bb', 'ccc']);
      expect(upstream.headers).toHaveLength(3);
      for (const h of upstream.headers) {
        expect(h.command).toBe('proxy');
        expect(h.addresses).toEqual({
          family: host === '::1' ? 'inet6' : 'inet',
          transport: 'dgram',
          source: clientHost,
          sourcePort: client.address().port,
          destination: host,
          destinationPort: listen[1],
        });
      }
    });

    it(`a chain of proxies (sending, then accepting and sending) keeps the client's address to the end (${host})`, async () => {
      const upstream = await headerReadingUpstream(host);
      const last = await proxy({
        modes: [`reverse:udp://${bracket(host)}:${upstream.socket.address().port}`],
        listenHost: host,
        proxyProtocol: { trusted: [host] },
        proxyProtocolUpstream: true,
      });
      const lastClients = clients(last);
      const first = await proxy({
        modes: [`reverse:udp://${bracket(host)}:${last.listening[0]!.address[1]}`],
        listenHost: host,
        proxyProtocolUpstream: true,
      });
      const client = await bound(clientHost);
      const replies: string[] = [];
      client.on('message', (m: Buffer) => replies.push(String(m)));
      client.send('through two proxies', first.listening[0]!.address[1], host);
      await waitUntil(() => replies.length === 1, 'the reply through both proxies');
      expect(replies).toEqual(['through two proxies']);
      const original = [clientHost, client.address().port];
      expect(lastClients.map((c) => c.peername)).toEqual([original]);
      expect(upstream.headers.map((h) => h.addresses)).toMatchObject([
        { source: original[0], sourcePort: original[1] },
      ]);
      expect(last.stats.proxyProtocol).toMatchObject({ proxied: 1, malformed: 0, missing: 0 });
    });
  }

  it('a trusted sender without a header reaches no upstream: dropped and counted', async () => {
    const upstream = await headerReadingUpstream('127.0.0.1');
    const p = await proxy({
      modes: [`reverse:udp://127.0.0.1:${upstream.socket.address().port}`],
      proxyProtocol: { trusted: ['127.0.0.1'] },
    });
    const client = await bound('127.0.0.1');
    client.send('no header', p.listening[0]!.address[1], '127.0.0.1');
    await waitUntil(() => p.stats.proxyProtocol?.missing === 1, 'the drop counted');
    expect(p.stats.flows).toBe(0);
    expect(upstream.headers).toHaveLength(0);
  });
});

describe('reverse:dtls and reverse:quic with proxyProtocolUpstream, our listener accepting it', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`DTLS: the listener behind the proxy sees our client's address (${host})`, async () => {
      await using listener = await dtls.listen({
        host,
        cert: EC_CERT_PEM,
        key: EC_KEY_PEM,
        proxyProtocol: { trusted: [host] },
      });
      const accepted: DatagramSession<Client>[] = [];
      listener.on('session', (s: DatagramSession<Client>) => {
        accepted.push(s);
        s.datagrams.on('datagram', (d: Uint8Array) => s.datagrams.send(d));
      });
      const p = await proxy({
        modes: [`reverse:dtls://${bracket(host)}:${listener.address[1]}`],
        listenHost: host,
        upstreamCa: EC_CERT_PEM,
        proxyProtocolUpstream: true,
      });
      await using session = await dtls.connect({
        host,
        port: p.listening[0]!.address[1],
        servername: 'localhost',
        ca,
      });
      const echoed = once(session.datagrams, 'datagram') as Promise<[Uint8Array]>;
      session.datagrams.send(Buffer.from('record'));
      expect(String((await echoed)[0])).toBe('record');
      expect(accepted).toHaveLength(1);
      expect(accepted[0]!.conn.peername).toEqual([host, session.conn.sockname![1]]);
      expect(listener.stats.proxyProtocol).toMatchObject({ malformed: 0, missing: 0 });
    });

    it(`QUIC: two proxies in a row, the listener at the end sees our client's address (${host})`, async () => {
      await using listener = await quic.listen({
        host,
        cert: EC_CERT_PEM,
        key: EC_KEY_PEM,
        proxyProtocol: { trusted: [host] },
      });
      const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
      const last = await proxy({
        modes: [`reverse:quic://${bracket(host)}:${listener.address[1]}`],
        listenHost: host,
        upstreamCa: EC_CERT_PEM,
        proxyProtocol: { trusted: [host] },
        proxyProtocolUpstream: true,
      });
      const lastClients = clients(last);
      const first = await proxy({
        modes: [`reverse:quic://${bracket(host)}:${last.listening[0]!.address[1]}`],
        listenHost: host,
        upstreamCa: ca,
        proxyProtocolUpstream: true,
      });
      await using session = await quic.connect({
        host,
        port: first.listening[0]!.address[1],
        servername: 'localhost',
        ca,
        ALPNProtocols: ['x'],
      });
      const [end] = await accepted;
      const original = [host, session.conn.sockname![1]];
      expect(end.conn.peername).toEqual(original);
      expect(lastClients.map((c) => c.peername)).toEqual([original]);
      // the session works end to end: a stream there and back
      end.on('stream', (s) => s.pipe(s));
      const stream = session.openStream();
      stream.end('ping');
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      await once(stream, 'end');
      expect(String(Buffer.concat(chunks))).toBe('ping');
      expect(listener.stats.proxyProtocol).toMatchObject({ malformed: 0, missing: 0 });
    });
  }
});
