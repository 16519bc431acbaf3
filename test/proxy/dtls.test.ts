/**
 * reverse:dtls through the proxy: openssl s_client -dtls1_2 (verifying the wirelayer CA) ->
 * proxy -> openssl s_server -dtls1_2, and our own DTLS client and listener on either side for
 * the hooks. Records are relayed one for one; each leg's model is its own handshake's.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import type { UdpFlow } from '../../src/proxy/hooks.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { dtls } from '../../src/transport/dtls/index.js';
import { EC_CERT, EC_CERT_PEM, EC_KEY_PEM, fixturePath } from '../helpers/certs.js';
import { opensslStandardName } from '../helpers/cipher-names.js';
import { spawnPeer } from '../helpers/peer.js';
import { waitUntil } from '../helpers/wait.js';
import { sServer } from '../transport/dtls-peers.js';
import { hookRecorder, tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();
let ca: string;

beforeAll(async () => {
  await (await WirelayerProxy.start({ modes: ['reverse:dtls://127.0.0.1:1'], confdir: conf.dir })).close();
  ca = readFileSync(conf.caFile, 'utf8');
});
afterAll(() => conf.remove());

function startProxy(upstreamPort: number, options: Partial<ProxyOptions> = {}): Promise<WirelayerProxy> {
  return WirelayerProxy.start({
    modes: [`reverse:dtls://127.0.0.1:${upstreamPort}`],
    confdir: conf.dir,
    upstreamCa: EC_CERT_PEM,
    ...options,
  });
}

function legs(proxy: WirelayerProxy): { client: () => Client; server: () => Server } {
  let client: Client | undefined;
  let server: Server | undefined;
  proxy.on('model', (_e: string, conn: Connection) => {
    if (conn.constructor.name === 'Client') client = conn as Client;
    else server = conn as Server;
  });
  return { client: () => client!, server: () => server! };
}

/** An upstream DTLS echo of ours: every record comes back prefixed. */
async function dtlsEcho(): Promise<Awaited<ReturnType<typeof dtls.listen>>> {
  const listener = await dtls.listen({
    host: '127.0.0.1',
    cert: EC_CERT_PEM,
    key: EC_KEY_PEM,
    ALPNProtocols: ['coap'],
  });
  listener.on('session', (s) => {
    s.datagrams.on('datagram', (r: Uint8Array) => s.datagrams.send(Buffer.concat([Buffer.from('echo:'), r])));
  });
  return listener;
}

describe('reverse:dtls interception', () => {
  it('openssl s_client -dtls1_2 -> proxy -> openssl s_server -dtls1_2: models per leg, ALPN mirrored, records both ways, hook order', async () => {
    const upstream = await sServer('127.0.0.1', ['-dtls1_2', '-alpn', 'coap']);
    const hooks = hookRecorder();
    await using proxy = await startProxy(upstream.port, { addons: [hooks.addon] });
    const seen = legs(proxy);
    const peer = spawnPeer('openssl', [
      's_client',
      '-dtls1_2',
      '-connect',
      `127.0.0.1:${proxy.listening[0]!.address[1]}`,
      '-servername',
      'localhost',
      '-alpn',
      'coap,h3',
      '-CAfile',
      conf.caFile,
      '-verify_return_error',
    ]);
    try {
      const [, version] = await peer.waitFor(/Protocol\s*: (\S+)/);
      const [, cipher] = await peer.waitFor(/Cipher\s*: (\S+)/);
      await peer.waitFor(/Verify return code: 0 \(ok\)/);
      expect(peer.output()).toMatch(/ALPN protocol: coap/);
      const [, serverCipher] = await upstream.peer.waitFor(/CIPHER is (\S+)/);
      expect(upstream.peer.output()).toMatch(/ALPN protocols advertised by the client: coap, h3/);
      await waitUntil(() => hooks.log.includes('udpStart'), 'udpStart');
      const client = seen.client();
      const server = seen.server();
      expect(client).toMatchObject({
        tlsVersion: version,
        cipher: opensslStandardName(cipher!),
        sni: 'localhost',
        alpnOffers: ['coap', 'h3'],
        alpn: 'coap',
      });
      expect(server).toMatchObject({
        tlsVersion: 'DTLSv1.2',
        cipher: opensslStandardName(serverCipher!),
        sni: 'localhost',
        alpn: 'coap',
      });
      expect(server.certificateList[0]!.fingerprint256).toBe(EC_CERT.fingerprint256);
      expect(client.mitmcert!.subjectAltName).toBe(
        'DNS:wirelayer-test-ec, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      );
      peer.child.stdin!.write('to the server\n');
      await upstream.peer.waitFor(/to the server/);
      upstream.peer.child.stdin!.write('to the client\n');
      await peer.waitFor(/to the client/);
    } finally {
      await peer.stop();
      await upstream.stop();
    }
    await proxy.close();
    expect(hooks.log.filter((h) => h !== 'udpMessage')).toEqual([
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'serverConnected',
      'tlsStartServer',
      'tlsEstablishedServer',
      'tlsStartClient',
      'tlsEstablishedClient',
      'udpStart',
      'udpEnd',
      'serverDisconnected',
      'clientDisconnected',
    ]);
    expect(hooks.log.filter((h) => h === 'udpMessage')).toHaveLength(2);
  });

  it('passes through a flow --ignore-hosts matches: the client sees the upstream certificate, models from the clear ServerHello', async () => {
    const upstream = await sServer('127.0.0.1', ['-dtls1_2', '-alpn', 'coap']);
    const hooks = hookRecorder();
    await using proxy = await startProxy(upstream.port, {
      addons: [hooks.addon],
      ignoreHosts: ['^localhost:'],
    });
    const seen = legs(proxy);
    const peer = spawnPeer('openssl', [
      's_client',
      '-dtls1_2',
      '-connect',
      `127.0.0.1:${proxy.listening[0]!.address[1]}`,
      '-servername',
      'localhost',
      '-alpn',
      'coap',
      '-CAfile',
      fixturePath('ec-cert.pem'),
      '-verify_return_error',
    ]);
    try {
      const [, version] = await peer.waitFor(/Protocol\s*: (\S+)/);
      const [, cipher] = await peer.waitFor(/Cipher\s*: (\S+)/);
      await peer.waitFor(/Verify return code: 0 \(ok\)/);
      // the upstream's own certificate, not one of ours
      expect(peer.output()).toMatch(/issuer=CN = wirelayer-test-ec/);
      peer.child.stdin!.write('raw both ways\n');
      await upstream.peer.waitFor(/raw both ways/);
      upstream.peer.child.stdin!.write('and back\n');
      await peer.waitFor(/and back/);
      for (const conn of [seen.client(), seen.server()]) {
        expect(conn).toMatchObject({
          tlsVersion: version,
          cipher: opensslStandardName(cipher!),
          alpn: 'coap',
        });
      }
      expect(seen.client()).toMatchObject({ sni: 'localhost', alpnOffers: ['coap'], mitmcert: null });
      expect(proxy.stats.passthrough).toBe(1);
    } finally {
      await peer.stop();
      await upstream.stop();
    }
    await proxy.close();
    // decided at the door, before any TLS layer: no TLS hooks (mitmproxy's ignored flows have none)
    expect(hooks.log).toEqual([
      'clientConnected',
      'serverConnect',
      'serverConnected',
      'serverDisconnected',
      'clientDisconnected',
    ]);
  });

  it('records one for one; a udpMessage hook rewrites and drops records', async () => {
    const upstream = await dtlsEcho();
    await using proxy = await startProxy(upstream.address[1], {
      addons: [
        {
          udpMessage(flow: UdpFlow) {
            const m = flow.message!;
            const text = Buffer.from(m.content).toString();
            if (text === 'drop') m.drop();
            else if (m.fromClient) m.content = Buffer.from(text.toUpperCase());
          },
        },
      ],
    });
    await using session = await dtls.connect({
      host: '127.0.0.1',
      port: proxy.listening[0]!.address[1],
      servername: 'localhost',
      ca,
      ALPNProtocols: ['coap'],
    });
    expect(session.conn.alpn).toBe('coap');
    const got: string[] = [];
    session.datagrams.on('datagram', (r: Uint8Array) => got.push(Buffer.from(r).toString()));
    for (const text of ['one', 'drop', 'two', 'three']) session.datagrams.send(Buffer.from(text));
    await waitUntil(() => got.length === 3, 'three echoes');
    expect(got).toEqual(['echo:ONE', 'echo:TWO', 'echo:THREE']);
    expect(proxy.stats.hookDrops).toBe(1);
    await upstream.close();
  });

  it("a client that does not trust the proxy: tlsFailedClient, mitmproxy's words", async () => {
    const upstream = await dtlsEcho();
    const failed: Connection[] = [];
    await using proxy = await startProxy(upstream.address[1], {
      addons: [{ tlsFailedClient: (d: { conn: Connection; isDtls: boolean }) => void failed.push(d.conn) }],
    });
    const err = await dtls
      .connect({
        host: '127.0.0.1',
        port: proxy.listening[0]!.address[1],
        servername: 'localhost',
        ca: EC_CERT_PEM,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await waitUntil(() => failed.length === 1, 'tlsFailedClient');
    expect(failed[0]!.error).toMatch(/^The client does not trust the proxy's certificate for localhost/);
    await upstream.close();
  });

  it('an upstream that fails verification fails the flow: tlsFailedServer, the client leg refused', async () => {
    const upstream = await dtlsEcho();
    const hooks = hookRecorder();
    await using proxy = await startProxy(upstream.address[1], {
      upstreamCa: undefined,
      addons: [hooks.addon],
    });
    const seen = legs(proxy);
    const events: string[] = [];
    proxy.on('model', (event: string, conn: Connection) => events.push(`${conn.constructor.name} ${event}`));
    const err = await dtls
      .connect({
        host: '127.0.0.1',
        port: proxy.listening[0]!.address[1],
        servername: 'localhost',
        ca,
        connectTimeout: 3000,
      })
      .catch((e: unknown) => e);
    // refused with the alert at once, not after the connect timeout
    expect((err as { code: string }).code).toBe('ERR_DTLS_HANDSHAKE');
    expect((err as { conn: Server }).conn.error).toMatch(/handshake failure/);
    await waitUntil(() => hooks.log.includes('clientDisconnected'), 'the flow to end');
    expect(hooks.log).toEqual([
      'clientConnected',
      'tlsClienthello',
      'serverConnect',
      'serverConnected',
      'tlsStartServer',
      'tlsFailedServer',
      'tlsFailedClient',
      'serverDisconnected',
      'clientDisconnected',
    ]);
    expect(seen.server().error).toMatch(/^Certificate verify failed/);
    expect(seen.client().error).toMatch(/^Server TLS handshake failed\. Certificate verify failed/);
    expect(proxy.stats.flowErrors).toEqual({ ERR_DTLS_CERT_VERIFY: 1 });
    // each leg ends once in the records, though the failure is seen, then the flow closes
    expect(events).toEqual(['Client start', 'Server start', 'Server error', 'Client error']);
    await upstream.close();
  });
});
