/**
 * reverse:quic through the proxy: gtlsclient (ngtcp2) -> proxy -> gtlsserver, an HTTP/3 request
 * for a file the server serves, arriving byte for byte (HTTP/3 relayed raw, stream for stream);
 * and our own QUIC client and listener on either side for streams, resets and hooks.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import type { StreamRecord } from '../../src/proxy/layers/tcp.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import { type QuicStream, QuicStreamError } from '../../src/transport/quic/stream.js';
import { EC_CERT, EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';
import { fetchFile, ngtcp2Report, servedFile, startGtlsServer } from '../transport/quic-peers.js';
import { hookRecorder, tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let ca: string;

beforeAll(async () => {
  await (await WirelayerProxy.start({ modes: ['reverse:quic://127.0.0.1:1'], confdir: conf.dir })).close();
  ca = readFileSync(conf.caFile, 'utf8');
});
afterAll(() => conf.remove());

function startProxy(upstreamPort: number, options: Partial<ProxyOptions> = {}): Promise<WirelayerProxy> {
  return WirelayerProxy.start({
    modes: [`reverse:quic://127.0.0.1:${upstreamPort}`],
    confdir: conf.dir,
    upstreamCa: EC_CERT_PEM,
    ...options,
  });
}

function watch(proxy: WirelayerProxy): {
  client: () => Client;
  server: () => Server;
  streams: StreamRecord[];
} {
  let client: Client | undefined;
  let server: Server | undefined;
  const streams: StreamRecord[] = [];
  proxy.on('model', (_e: string, conn: Connection) => {
    if (conn.constructor.name === 'Client') client = conn as Client;
    else server = conn as Server;
  });
  proxy.on('stream', (r: StreamRecord) => streams.push(r));
  return { client: () => client!, server: () => server!, streams };
}

/** Reads a stream to its end. */
async function readAll(stream: QuicStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'end');
  return Buffer.concat(chunks);
}

describe('reverse:quic interception', () => {
  it('gtlsclient -> proxy -> gtlsserver: an HTTP/3 file fetch arrives byte for byte; each leg its own handshake', async () => {
    const file = servedFile(conf.dir, 'intercept', 300 * 1024);
    const upstream = await startGtlsServer('127.0.0.1', [`--htdocs=${file.htdocs}`]);
    const hooks = hookRecorder();
    await using proxy = await startProxy(upstream.port, { addons: [hooks.addon] });
    const seen = watch(proxy);
    const port = proxy.listening[0]!.address[1];
    const client = fetchFile(port, file.download);
    try {
      await client.waitFor(/Negotiated ALPN is h3/, 15_000);
      const report = await ngtcp2Report(client);
      await waitUntil(() => client.child.exitCode !== null, 'gtlsclient to finish', { timeoutMs: 15_000 });
      expect(file.downloaded().equals(file.body)).toBe(true);
      const c = seen.client();
      const s = seen.server();
      expect(c).toMatchObject({ tlsVersion: 'QUICv1', cipher: report.cipher, alpn: 'h3', sni: 'localhost' });
      expect(c.alpnOffers).toContain('h3');
      expect(s).toMatchObject({ tlsVersion: 'QUICv1', alpn: 'h3', sni: 'localhost' });
      expect(s.certificateList[0]!.fingerprint256).toBe(EC_CERT.fingerprint256);
      expect(c.mitmcert!.subjectAltName).toContain('DNS:localhost');
      // the request stream (client bidi 0 on both legs) carried the file back, FIN both ways
      await waitUntil(() => seen.streams.some((r) => r.client_stream_id === 0), 'the request stream record');
      const request = seen.streams.find((r) => r.client_stream_id === 0)!;
      expect(request.server_stream_id).toBe(0);
      expect(request.bytes_from_server).toBeGreaterThan(file.body.length);
      // HTTP/3's unidirectional control and QPACK streams, both ways, kept their kind and initiator
      await proxy.close();
      const ids = seen.streams.map((r) => [r.client_stream_id! % 4, r.server_stream_id! % 4]);
      expect(ids).toContainEqual([2, 2]);
      expect(ids).toContainEqual([3, 3]);
    } finally {
      await client.stop();
      await upstream.peer.stop();
    }
    expect(hooks.log.slice(0, 8)).toEqual([
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'quicStartServer',
      'serverConnected',
      'tlsEstablishedServer',
      'quicStartClient',
      'tlsEstablishedClient',
    ]);
    expect(hooks.log.slice(-2)).toEqual(['serverDisconnected', 'clientDisconnected']);
    expect(hooks.log.filter((h) => h === 'tcpStart').length).toBe(seen.streams.length);
  });

  it("follows the client's NAT rebinding: the fetch goes on from its new port, the server leg stays put", async () => {
    const file = servedFile(conf.dir, 'rebind', 64 * 1024);
    const upstream = await startGtlsServer('127.0.0.1', [`--htdocs=${file.htdocs}`]);
    await using proxy = await startProxy(upstream.port);
    const seen = watch(proxy);
    const port = proxy.listening[0]!.address[1];
    // the request stream opens after the rebinding, so it comes from the new port
    const client = fetchFile(port, file.download, [
      '--change-local-addr=200ms',
      '--nat-rebinding',
      '--delay-stream=500ms',
    ]);
    try {
      const [, newPort] = await client.waitFor(/Local address is now \[127\.0\.0\.1\]:(\d+)/);
      await waitUntil(() => client.child.exitCode !== null, 'gtlsclient to finish', { timeoutMs: 15_000 });
      expect(file.downloaded().equals(file.body)).toBe(true);
      expect(seen.client().peername).toEqual(['127.0.0.1', Number(newPort)]);
      expect(seen.server().peername).toEqual(['127.0.0.1', upstream.port]);
    } finally {
      await client.stop();
      await upstream.peer.stop();
    }
  });

  it('streams both ways with our own peers: IDs mapped per leg, FIN passed on, a reset code mirrored, DATAGRAM frames one for one', async () => {
    const upstream = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['x'],
    });
    const serverStreams: QuicStream[] = [];
    let serverSession!: QuicSession<Client>;
    upstream.on('session', (s: QuicSession<Client>) => {
      serverSession = s;
      s.on('stream', (st: QuicStream) => serverStreams.push(st));
      s.datagrams.on('datagram', (d: Uint8Array) => s.datagrams.send(Buffer.concat([Buffer.from('dg:'), d])));
    });
    await using proxy = await startProxy(upstream.address[1]);
    const seen = watch(proxy);
    await using session = await quic.connect({
      host: '127.0.0.1',
      port: proxy.listening[0]!.address[1],
      servername: 'localhost',
      ca,
      ALPNProtocols: ['x'],
    });
    expect(session.conn.alpn).toBe('x');
    // client bidi 0 and 4 become the server leg's 0 and 4; a client uni stream its 2
    const a = session.openStream();
    const b = session.openStream();
    const u = session.openStream({ bidirectional: false });
    a.end('to a');
    b.write('to b');
    u.end('uni');
    await waitUntil(() => serverStreams.length === 3, 'three streams upstream');
    const byId = new Map(serverStreams.map((st) => [st.id, st]));
    expect([...byId.keys()].sort()).toEqual([0, 2, 4]);
    expect((await readAll(byId.get(0)!)).toString()).toBe('to a');
    expect((await readAll(byId.get(2)!)).toString()).toBe('uni');
    byId.get(0)!.end('back from a');
    expect((await readAll(a)).toString()).toBe('back from a');
    // the server resets stream 4 with code 77: our client sees 77 on its stream 4
    // a reader learns of a reset when it reads
    b.resume();
    const reset = once(b, 'error');
    const four = byId.get(4)!;
    four.on('error', () => undefined);
    four.destroy(new QuicStreamError('no', 77));
    const [err] = (await reset) as [QuicStreamError];
    expect(err.code).toBe(77);
    // a server-initiated stream (uni 3 upstream) reaches the client as its own server uni stream
    const pushed = new Promise<QuicStream>((r) => session.once('stream', r));
    serverSession.openStream({ bidirectional: false }).end('pushed');
    const p = await pushed;
    expect(p.id % 4).toBe(3);
    expect((await readAll(p)).toString()).toBe('pushed');
    const dg = new Promise<Uint8Array>((r) => session.datagrams.once('datagram', r));
    session.datagrams.send(Buffer.from('frame'));
    expect(Buffer.from(await dg).toString()).toBe('dg:frame');
    await waitUntil(() => seen.streams.some((r) => r.end === 'reset 77'), 'the reset stream record');
    expect(seen.streams.find((r) => r.end === 'reset 77')).toMatchObject({
      client_stream_id: 4,
      server_stream_id: 4,
    });
    await upstream.close();
  });
});

describe('reverse:quic failures and timeouts', () => {
  it('quicTimeout closes an idle connection on both legs, apart from udpTimeout', async () => {
    const upstream = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['x'],
    });
    const hooks = hookRecorder();
    await using proxy = await startProxy(upstream.address[1], {
      addons: [hooks.addon],
      quicTimeout: 400,
      udpTimeout: 60_000,
    });
    const session = await quic.connect({
      host: '127.0.0.1',
      port: proxy.listening[0]!.address[1],
      servername: 'localhost',
      ca,
      ALPNProtocols: ['x'],
    });
    const started = performance.now();
    await once(session, 'close');
    // quiche's idle timer is at least three PTOs: well under the UDP timeout either way
    expect(performance.now() - started).toBeLessThan(5000);
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(proxy.stats.liveFlows).toBe(0);
    await upstream.close();
  });

  it('an upstream that fails verification: tlsFailedServer, the client closed with CRYPTO_ERROR handshake_failure, at once', async () => {
    const upstream = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['x'],
    });
    const hooks = hookRecorder();
    // no upstreamCa: the upstream's self-signed certificate does not verify
    await using proxy = await WirelayerProxy.start({
      modes: [`reverse:quic://127.0.0.1:${upstream.address[1]}`],
      confdir: conf.dir,
      addons: [hooks.addon],
    });
    const seen = watch(proxy);
    const started = performance.now();
    const err = (await quic
      .connect({
        host: '127.0.0.1',
        port: proxy.listening[0]!.address[1],
        servername: 'localhost',
        ca,
        ALPNProtocols: ['x'],
      })
      .catch((e: unknown) => e)) as Error & { code?: string };
    expect(performance.now() - started).toBeLessThan(3000);
    expect(err.message).toMatch(
      /peer_error: transport error 0x128 CRYPTO_ERROR \(TLS alert handshake_failure\)/,
    );
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(seen.server().error).toMatch(/^Certificate verify failed/);
    expect(seen.client().error).toMatch(/^Server TLS handshake failed\. Certificate verify failed/);
    expect(hooks.log).toEqual([
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'quicStartServer',
      'tlsFailedServer',
      'tlsFailedClient',
      'clientDisconnected',
    ]);
    expect(proxy.stats.flowErrors).toEqual({ ERR_QUIC_CRYPTO_ERROR: 1 });
    await upstream.close();
  });
});

describe('reverse:quic passthrough', () => {
  it('--ignore-hosts: gtlsclient fetches through untouched, seeing the upstream certificate; models from the Initials', async () => {
    const file = servedFile(conf.dir, 'pass', 200 * 1024);
    const upstream = await startGtlsServer('127.0.0.1', [`--htdocs=${file.htdocs}`]);
    const hooks = hookRecorder();
    await using proxy = await startProxy(upstream.port, {
      addons: [hooks.addon],
      ignoreHosts: ['^localhost:'],
    });
    const seen = watch(proxy);
    const port = proxy.listening[0]!.address[1];
    const client = fetchFile(port, file.download);
    try {
      await client.waitFor(/Negotiated ALPN is h3/, 15_000);
      const report = await ngtcp2Report(client);
      await waitUntil(() => client.child.exitCode !== null, 'gtlsclient to finish', { timeoutMs: 15_000 });
      expect(file.downloaded().equals(file.body)).toBe(true);
      const c = seen.client();
      const s = seen.server();
      expect(c).toMatchObject({
        tlsVersion: 'QUICv1',
        cipher: report.cipher,
        sni: 'localhost',
        mitmcert: null,
      });
      expect(s).toMatchObject({ tlsVersion: 'QUICv1', cipher: report.cipher, sni: 'localhost' });
      expect(s.peername).toEqual(['127.0.0.1', upstream.port]);
      expect(proxy.stats.passthrough).toBe(1);
    } finally {
      await client.stop();
      await upstream.peer.stop();
    }
    // an ignored flow has no TLS hooks of its own legs and no stream hooks (mitmproxy's); it
    // ends with the proxy (a raw relay sees no CONNECTION_CLOSE) or its UDP idle timeout
    await proxy.close();
    expect(hooks.log).toEqual([
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'serverConnected',
      'serverDisconnected',
      'clientDisconnected',
    ]);
  });

  it('ignoreConnection from tlsClienthello passes one connection through while the next is intercepted', async () => {
    const upstream = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['x'],
    });
    upstream.on('session', (s: QuicSession<Client>) => {
      s.on('stream', (st: QuicStream) => st.pipe(st));
    });
    let first = true;
    await using proxy = await startProxy(upstream.address[1], {
      addons: [
        {
          tlsClienthello: (data) => {
            data.ignoreConnection = first;
            first = false;
          },
        },
      ],
    });
    const port = proxy.listening[0]!.address[1];
    const dial = () =>
      quic.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: [ca, EC_CERT_PEM],
        ALPNProtocols: ['x'],
      });
    for (const passed of [true, false]) {
      await using session = await dial();
      // passed through, the client sees the upstream's own certificate; intercepted, ours
      expect(session.conn.certificateList[0]!.fingerprint256 === EC_CERT.fingerprint256).toBe(passed);
      const echo = session.openStream();
      echo.end(passed ? 'untouched' : 'intercepted');
      expect((await readAll(echo)).toString()).toBe(passed ? 'untouched' : 'intercepted');
    }
    expect(proxy.stats.passthrough).toBe(1);
    await upstream.close();
  });
});
