/**
 * Listeners that accept the PROXY protocol v2 (`proxyProtocol`), behind a balancer made of
 * node:dgram sockets that put a header in front of each datagram: the Client's `peername` is the
 * header's source, two clients behind one balancer are two flows, replies go back to the
 * balancer without a header, and what is malformed or missing is dropped and counted. Real DTLS
 * (openssl s_client) and QUIC (gtlsclient) clients reach our listeners through the balancer.
 * (vitest.config.ts runs this file on both datagram backends.)
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Address, Client } from '../../src/connection/index.js';
import { serve } from '../../src/load/serve.js';
import { encodeProxyHeader, hasProxyV2Signature } from '../../src/transport/datagram/proxy-v2.js';
import { dtls } from '../../src/transport/dtls/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import type { DatagramSession } from '../../src/transport/types.js';
import { type UdpFlowSession, UdpListener } from '../../src/transport/udp/index.js';
import { type ProxyProtocolSocket, udpProxyHeader } from '../../src/transport/udp/proxy-protocol.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import type { PeerProcess } from '../helpers/peer.js';
import { ProxyV2Balancer } from '../helpers/proxy-v2-balancer.js';
import { waitUntil } from '../helpers/wait.js';
import { sClient } from './dtls-peers.js';
import { ngtcp2Report, runGtlsClient } from './quic-peers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function boundSocket(host: string): Promise<Socket> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.bind(0, host);
  await once(socket, 'listening');
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return socket;
}

/** Documentation addresses (RFC 5737, RFC 3849): clients that exist only in headers. */
const CLIENT = {
  '127.0.0.1': ['203.0.113.1', '203.0.113.2'],
  '::1': ['2001:db8::1', '2001:db8::2'],
} as const;
const HOSTS = ['127.0.0.1', '::1'] as const;

const withHeader = (source: Address, to: Address, payload: string): Buffer =>
  Buffer.concat([udpProxyHeader(source, to), Buffer.from(payload)]);

/** Each flow of the listener, echoing what it gets. */
function echoFlows(listener: UdpListener): UdpFlowSession[] {
  const flows: UdpFlowSession[] = [];
  listener.on('session', (flow: UdpFlowSession) => {
    flows.push(flow);
    flow.datagrams.on('datagram', (d: Uint8Array) => flow.datagrams.send(d));
  });
  return flows;
}

describe('UDP listener with proxyProtocol', () => {
  for (const host of HOSTS) {
    it(`takes each header's source as a flow's peer, answers through the balancer without a header (${host})`, async () => {
      await using listener = await UdpListener.listen({
        host,
        proxyProtocol: { trusted: [host] },
      });
      const flows = echoFlows(listener);
      const balancer = await boundSocket(host);
      const replies: Buffer[] = [];
      balancer.on('message', (d: Buffer) => replies.push(d));
      const to = listener.address;
      const [a, b] = CLIENT[host];
      balancer.send(withHeader([a, 1111], to, 'one'), to[1], host);
      balancer.send(withHeader([b, 2222], to, 'two'), to[1], host);
      await waitUntil(() => replies.length === 2, 'two replies');
      expect(flows.map((f) => f.conn.peername).sort()).toEqual([
        [a, 1111],
        [b, 2222],
      ]);
      expect(flows.every((f) => f.conn.sockname[1] === to[1])).toBe(true);
      // replies carry no header: exactly what the flows sent
      expect(replies.map(String).sort()).toEqual(['one', 'two']);

      // a LOCAL header: the balancer speaks for itself (a health check)
      const local = Buffer.concat([
        encodeProxyHeader({ command: 'local', addresses: { family: 'unspec' } }),
        Buffer.from('health'),
      ]);
      balancer.send(local, to[1], host);
      await waitUntil(() => replies.length === 3, 'the health check answered');
      expect(flows[2]!.conn.peername).toEqual([host, balancer.address().port]);

      // the same client through another balancer: one flow still, replies follow the client
      const second = await boundSocket(host);
      const secondReplies: Buffer[] = [];
      second.on('message', (d: Buffer) => secondReplies.push(d));
      second.send(withHeader([a, 1111], to, 'moved'), to[1], host);
      await waitUntil(() => secondReplies.length === 1, 'the reply through the second balancer');
      expect(String(secondReplies[0])).toBe('moved');
      const socket = listener.socket as ProxyProtocolSocket;
      expect(socket.routeOf(a, 1111)).toEqual({ address: host, port: second.address().port });
      expect(socket.routes).toBe(2);
      expect(flows).toHaveLength(3);
      expect(listener.stats.proxyProtocol).toMatchObject({
        proxied: 3,
        local: 1,
        malformed: 0,
        missing: 0,
      });
      expect(listener.stats.flowsOpened).toBe(3);
    });
  }

  it('drops and counts datagrams of trusted senders without a header, with a malformed one, or proxying TCP', async () => {
    const host = '127.0.0.1';
    await using listener = await UdpListener.listen({ host, proxyProtocol: { trusted: ['127.0.0.0/8'] } });
    const flows = echoFlows(listener);
    const balancer = await boundSocket(host);
    const to = listener.address;
    const good = udpProxyHeader(['203.0.113.5', 5555], to);
    /** The good header with byte `at` set to `value`. */
    const patched = (at: number, value: number): Buffer => {
      const h = Buffer.from(good);
      h[at] = value;
      return h;
    };
    const malformed = [
      patched(12, 0x11), // version 1
      patched(12, 0x2f), // command 15
      patched(13, 0x14), // transport 4
      good.subarray(0, 20), // cut inside the addresses
      Buffer.concat([patched(15, 12 + 5), Buffer.from([0x04, 0x00, 0x09, 1, 2])]), // a TLV overrun
    ];
    for (const d of malformed) balancer.send(Buffer.concat([d, Buffer.from('x')]), to[1], host);
    balancer.send(Buffer.from('no header at all'), to[1], host);
    balancer.send(Buffer.alloc(0), to[1], host);
    const tcp = Buffer.from(good);
    tcp[13] = 0x11;
    balancer.send(Buffer.concat([tcp, Buffer.from('tcp')]), to[1], host);
    await waitUntil(() => {
      const s = listener.stats.proxyProtocol!;
      return s.malformed + s.missing + s.unsupported === 8;
    }, 'eight drops counted');
    expect(listener.stats.proxyProtocol).toMatchObject({
      malformed: 5,
      missing: 2,
      unsupported: 1,
      proxied: 0,
    });
    expect(flows).toHaveLength(0);
    expect(listener.stats.flowsOpened).toBe(0);
    // the listener goes on: a good one opens its flow
    balancer.send(Buffer.concat([good, Buffer.from('ok')]), to[1], host);
    await waitUntil(() => flows.length === 1, 'the good datagram');
    expect(flows[0]!.conn.peername).toEqual(['203.0.113.5', 5555]);
  });

  it('never believes a header from an untrusted sender: passed as payload from its real address, or dropped', async () => {
    const trusted = ['127.0.0.1'];
    await using passing = await UdpListener.listen({ proxyProtocol: { trusted } });
    await using dropping = await UdpListener.listen({ proxyProtocol: { trusted, untrusted: 'drop' } });
    const flows = echoFlows(passing);
    const dropped = echoFlows(dropping);
    // 127.0.0.2: loopback, but not the trusted balancer
    const stranger = await boundSocket('127.0.0.2');
    const replies: Buffer[] = [];
    stranger.on('message', (d: Buffer) => replies.push(d));
    const forged = withHeader(['198.51.100.66', 6666], passing.address, 'forged');
    stranger.send(forged, passing.address[1], '127.0.0.1');
    stranger.send(forged, dropping.address[1], '127.0.0.1');
    await waitUntil(
      () => replies.length === 1 && dropping.stats.proxyProtocol!.untrusted === 1,
      'both answered',
    );
    expect(flows[0]!.conn.peername).toEqual(['127.0.0.2', stranger.address().port]);
    expect(replies[0]).toEqual(forged); // the header was payload, echoed whole
    expect(passing.stats.proxyProtocol).toMatchObject({ untrusted: 1, proxied: 0 });
    expect(dropped).toHaveLength(0);
  });

  it('costs nothing when off: no wrapper, and stats say so', async () => {
    await using listener = await UdpListener.listen({});
    expect(listener.socket.constructor.name).not.toBe('ProxyProtocolSocket');
    expect(listener.stats.proxyProtocol).toBeNull();
  });
});

const peers: PeerProcess[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
});

describe('DTLS listener with proxyProtocol, openssl s_client behind a balancer', () => {
  for (const host of HOSTS) {
    it(`the session's peername is the header's source; the handshake and echoed data come back (${host})`, async () => {
      await using listener = await dtls.listen({
        host,
        cert: EC_CERT_PEM,
        key: EC_KEY_PEM,
        proxyProtocol: { trusted: [host] },
      });
      const sessions: DatagramSession<Client>[] = [];
      listener.on('session', (s: DatagramSession<Client>) => {
        sessions.push(s);
        serve(s, 'echo');
      });
      const source = CLIENT[host][0];
      const balancer = await ProxyV2Balancer.start(host, listener.address, (c) => [source, c.port]);
      cleanups.push(() => balancer.stop());
      const { peer } = await sClient(host, balancer.port, ['-dtls1_2', '-verify_hostname', 'localhost']);
      peers.push(peer);
      await waitUntil(() => sessions.length === 1, 'the DTLS session');
      const clientPort = Number(/\|(\d+)$/.exec(balancer.sessionKeys[0]!)![1]);
      expect(sessions[0]!.conn.peername).toEqual([source, clientPort]);
      expect(sessions[0]!.conn.tlsVersion).toBe('DTLSv1.2');
      peer.child.stdin?.write('through the balancer\n');
      await peer.waitFor(/through the balancer/);
      // every datagram the balancer forwarded was taken (once the client is gone and all arrived)
      await peers.pop()!.stop();
      await waitUntil(
        () => listener.stats.proxyProtocol!.proxied === balancer.forwarded,
        'all forwarded taken',
      );
      expect(listener.stats.proxyProtocol).toMatchObject({ malformed: 0, missing: 0 });
      expect(balancer.replies.some(hasProxyV2Signature)).toBe(false);
    });
  }
});

describe('QUIC listener with proxyProtocol, gtlsclient behind a balancer', () => {
  for (const host of HOSTS) {
    it(`the session's peername is the header's source; the handshake completes through the balancer (${host})`, async () => {
      await using listener = await quic.listen({
        host,
        cert: EC_CERT_PEM,
        key: EC_KEY_PEM,
        proxyProtocol: { trusted: [host] },
      });
      const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
      const source = CLIENT[host][1];
      const balancer = await ProxyV2Balancer.start(host, listener.address, (c) => [source, c.port + 1]);
      cleanups.push(() => balancer.stop());
      const client = runGtlsClient(host, balancer.port);
      peers.push(client);
      const reported = await ngtcp2Report(client);
      const [session] = await accepted;
      const clientPort = Number(/\|(\d+)$/.exec(balancer.sessionKeys[0]!)![1]);
      expect(session.conn.peername).toEqual([source, clientPort + 1]);
      expect(session.conn.cipher).toBe(reported.cipher);
      expect(session.conn.alpn).toBe('h3');
      expect(session.conn.error).toBeNull();
      expect(balancer.returned).toBeGreaterThan(0);
      expect(listener.stats.proxyProtocol).toMatchObject({ malformed: 0, missing: 0 });
      // every datagram the balancer forwarded was taken (once the client is gone and all arrived)
      await peers.pop()!.stop();
      await waitUntil(
        () => listener.stats.proxyProtocol!.proxied === balancer.forwarded,
        'all forwarded taken',
      );
      expect(balancer.replies.some(hasProxyV2Signature)).toBe(false);
    });
  }
});

describe('QUIC behind a balancer: Retry and NAT rebinding', () => {
  it("a Retry token is bound to the header's client, and the handshake completes through it", async () => {
    await using listener = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      limits: { retryThreshold: 0 },
      proxyProtocol: { trusted: ['127.0.0.1'] },
    });
    const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
    const balancer = await ProxyV2Balancer.start('127.0.0.1', listener.address, (c) => [
      '198.51.100.9',
      c.port,
    ]);
    cleanups.push(() => balancer.stop());
    const client = runGtlsClient('127.0.0.1', balancer.port);
    peers.push(client);
    await ngtcp2Report(client);
    const [session] = await accepted;
    expect(listener.stats.retries).toBe(1);
    expect(listener.stats.badTokens).toBe(0);
    expect(session.conn.peername[0]).toBe('198.51.100.9');
  });

  it('a client that rebinds behind the balancer is a new header source: the session follows it', async () => {
    await using listener = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      proxyProtocol: { trusted: ['127.0.0.1'] },
    });
    const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
    const balancer = await ProxyV2Balancer.start('127.0.0.1', listener.address, (c) => [
      '198.51.100.10',
      c.port,
    ]);
    cleanups.push(() => balancer.stop());
    // the request stream opens after the rebinding, so the client speaks from its new port
    const client = runGtlsClient('127.0.0.1', balancer.port, [
      '--change-local-addr=200ms',
      '--nat-rebinding',
      '--delay-stream=500ms',
    ]);
    peers.push(client);
    const [session] = await accepted;
    const migrated = once(session, 'migrated') as Promise<[readonly [string, number]]>;
    const requested = once(session, 'stream');
    const [, newPort] = await client.waitFor(/Local address is now \[127\.0\.0\.1\]:(\d+)/);
    const [peername] = await migrated;
    expect(peername).toEqual(['198.51.100.10', Number(newPort)]);
    await requested;
    expect(balancer.sessionKeys).toHaveLength(2);
    expect(session.closed).toBe(false);
    expect(session.conn.error).toBeNull();
  });
});
