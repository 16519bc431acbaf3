/**
 * The interop matrix through the proxy, real peers on both sides, each leg's settings apart:
 * QUIC with each TLS 1.3 cipher forced on the client leg and another on the server leg, and a
 * HelloRetryRequest on the server leg (gtlsclient -> proxy -> gtlsserver, an HTTP/3 fetch byte
 * for byte); DTLS with gnutls on both sides, a fragmented ClientHello, and DTLSv1 at SECLEVEL 0;
 * TLS with openssl's client and gnutls-serv upstream, a different version and cipher per leg.
 * Each leg's model must be what that leg's peer printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection, Server } from '../../src/connection/index.js';
import { type ProxyOptions, Proxy as WirelayerProxy } from '../../src/proxy/proxy.js';
import { EC_CERT_PEM, fixturePath } from '../helpers/certs.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { waitUntil } from '../helpers/wait.js';
import { gnutlsDescription, gnutlsServ, sClient, sServer, sServerReport } from '../transport/dtls-peers.js';
import {
  cipherPriority,
  FORCED_CIPHERS,
  fetchFile,
  HRR_GROUPS,
  ngtcp2Report,
  servedFile,
  startGtlsServer,
} from '../transport/quic-peers.js';
import { parseGnutlsReport, startGnutlsServer } from '../transport/tls-peers.js';
import { opensslClient, tempConfdir } from './proxy-peers.js';

const conf = tempConfdir();

// the wirelayer CA, made by a first proxy: the clients trust conf.caFile
beforeAll(async () => {
  await (await WirelayerProxy.start({ modes: ['reverse:tcp://127.0.0.1:1'], confdir: conf.dir })).close();
});
afterAll(() => conf.remove());

async function startProxy(mode: string, options: Partial<ProxyOptions> = {}) {
  const proxy = await WirelayerProxy.start({
    modes: [mode],
    confdir: conf.dir,
    upstreamCa: EC_CERT_PEM,
    ...options,
  });
  let client: Client | undefined;
  let server: Server | undefined;
  proxy.on('model', (_e: string, conn: Connection) => {
    if (conn.constructor.name === 'Client') client = conn as Client;
    else server = conn as Server;
  });
  return { proxy, port: proxy.listening[0]!.address[1], client: () => client!, server: () => server! };
}

describe('QUIC through the proxy: gtlsclient -> proxy -> gtlsserver, each leg its own settings', () => {
  const cases = [
    ...FORCED_CIPHERS.map((c, i) => {
      const upstream = FORCED_CIPHERS[(i + 1) % FORCED_CIPHERS.length]!;
      return {
        name: `client leg ${c.iana}, server leg ${upstream.iana}`,
        client: [`--ciphers=${cipherPriority(c.gnutls)}`],
        server: [`--ciphers=${cipherPriority(upstream.gnutls)}`],
        expect: { client: c.iana, server: upstream.iana },
      };
    }),
    {
      name: 'a HelloRetryRequest on the server leg (gtlsserver takes P-256 only)',
      client: [],
      server: [`--groups=${HRR_GROUPS}`],
      expect: { client: null, server: null },
    },
  ];

  it.each(cases)('$name', async (c) => {
    const file = servedFile(conf.dir, c.server.join('').replace(/[^\w-]/g, '_'), 64 * 1024);
    const upstream = await startGtlsServer('127.0.0.1', [`--htdocs=${file.htdocs}`, ...c.server]);
    const { proxy, port, client, server } = await startProxy(`reverse:quic://127.0.0.1:${upstream.port}`);
    const peer = fetchFile(port, file.download, c.client);
    try {
      const clientReport = await ngtcp2Report(peer);
      const serverReport = await ngtcp2Report(upstream.peer);
      await waitUntil(() => peer.child.exitCode !== null, 'gtlsclient to finish', { timeoutMs: 15_000 });
      expect(file.downloaded().equals(file.body)).toBe(true);
      expect(client()).toMatchObject({ tlsVersion: 'QUICv1', cipher: clientReport.cipher, alpn: 'h3' });
      expect(server()).toMatchObject({ tlsVersion: 'QUICv1', cipher: serverReport.cipher, alpn: 'h3' });
      if (c.expect.client !== null) expect(clientReport.cipher).toBe(c.expect.client);
      if (c.expect.server !== null) expect(serverReport.cipher).toBe(c.expect.server);
    } finally {
      await peer.stop();
      await upstream.peer.stop();
      await proxy.close();
    }
  });
});

describe('DTLS through the proxy', () => {
  it('gnutls-cli --udp -> proxy -> gnutls-serv --udp --echo: each leg as its peer reports, a record echoed', async () => {
    const upstream = await gnutlsServ('127.0.0.1', 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+AES-128-GCM');
    const { proxy, port, client, server } = await startProxy(`reverse:dtls://127.0.0.1:${upstream.port}`);
    const peer = spawnPeer('gnutls-cli', [
      '--udp',
      '-p',
      String(port),
      '127.0.0.1',
      '--sni-hostname',
      'localhost',
      '--x509cafile',
      conf.caFile,
      '--priority',
      'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305',
    ]);
    try {
      await peer.waitFor(/Status: The certificate is trusted/);
      const d = gnutlsDescription(peer.output())!;
      peer.child.stdin!.write('through both legs\n');
      await peer.waitFor(/through both legs/);
      expect(client()).toMatchObject({ tlsVersion: d.tlsVersion, sni: 'localhost' });
      expect(client().cipher!.replace(/_/g, '-')).toContain(d.bulk);
      expect(d.bulk).toBe('CHACHA20-POLY1305');
      expect(server()).toMatchObject({ tlsVersion: 'DTLSv1.2', sni: 'localhost' });
      expect(server().cipher).toMatch(/_AES_128_GCM_/);
    } finally {
      await peer?.stop();
      await upstream.stop();
      await proxy.close();
    }
  });

  it('a fragmented ClientHello (s_client -mtu 256, long SNI and ALPN): reassembled, intercepted, SNI and offers read', async () => {
    const upstream = await sServer('127.0.0.1', ['-dtls1_2', '-brief', '-alpn', 'http/1.1']);
    // the upstream's certificate has no such name: the server leg does not verify it
    const { proxy, port, client, server } = await startProxy(`reverse:dtls://127.0.0.1:${upstream.port}`, {
      insecure: true,
    });
    const sni = 'a-rather-long-server-name.wirelayer.example';
    let peer: PeerProcess | undefined;
    try {
      const started = await sClient('127.0.0.1', port, [
        '-dtls1_2',
        '-mtu',
        '256',
        '-servername',
        sni,
        '-alpn',
        'h2,http/1.1,spdy/3,another-protocol',
        '-CAfile',
        conf.caFile,
        '-verify_return_error',
      ]);
      peer = started.peer;
      const report = started.report;
      const upstreamReport = await sServerReport(upstream.peer);
      expect(client()).toMatchObject({
        sni,
        alpnOffers: ['h2', 'http/1.1', 'spdy/3', 'another-protocol'],
        tlsVersion: report.tlsVersion,
        cipher: report.cipher,
        alpn: 'http/1.1',
      });
      expect(server()).toMatchObject({
        sni,
        tlsVersion: upstreamReport.tlsVersion,
        cipher: upstreamReport.cipher,
      });
    } finally {
      await peer?.stop();
      await upstream.stop();
      await proxy.close();
    }
  });

  it('DTLSv1 at SECLEVEL 0 on both legs', async () => {
    const legacy = ['-dtls1', '-cipher', 'DEFAULT@SECLEVEL=0'];
    const upstream = await sServer('127.0.0.1', [...legacy, '-brief']);
    const { proxy, port, client, server } = await startProxy(`reverse:dtls://127.0.0.1:${upstream.port}`, {
      minVersion: 'DTLSv1',
      maxVersion: 'DTLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    let peer: PeerProcess | undefined;
    try {
      const started = await sClient('127.0.0.1', port, [...legacy, '-CAfile', conf.caFile]);
      peer = started.peer;
      const report = started.report;
      const upstreamReport = await sServerReport(upstream.peer);
      expect(report.tlsVersion).toBe('DTLSv1');
      expect(client()).toMatchObject({ tlsVersion: 'DTLSv1', cipher: report.cipher });
      expect(server()).toMatchObject({ tlsVersion: 'DTLSv1', cipher: upstreamReport.cipher });
    } finally {
      await peer?.stop();
      await upstream.stop();
      await proxy.close();
    }
  });
});

describe('TLS through the proxy: openssl s_client -> proxy -> gnutls-serv', () => {
  it('client leg TLSv1.3 with ChaCha20 forced, server leg TLSv1.2 with AES-256-GCM: each as its peer says', async () => {
    const upstream = await startGnutlsServer('127.0.0.1', [
      '--x509certfile',
      fixturePath('ec-cert.pem'),
      '--x509keyfile',
      fixturePath('ec-key.pem'),
      '--priority',
      'NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM',
    ]);
    const { proxy, port, client, server } = await startProxy(`reverse:tls://127.0.0.1:${upstream.port}`);
    let peer: PeerProcess | undefined;
    try {
      const started = await opensslClient(port, [
        '-tls1_3',
        '-ciphersuites',
        'TLS_CHACHA20_POLY1305_SHA256',
        '-servername',
        'localhost',
        '-CAfile',
        conf.caFile,
      ]);
      peer = started.peer;
      const report = started.report;
      expect(report).toMatchObject({
        tlsVersion: 'TLSv1.3',
        cipher: 'TLS_CHACHA20_POLY1305_SHA256',
        verifyCode: 0,
      });
      started.peer.child.stdin!.write('echo me\n');
      await started.peer.waitFor(/echo me/);
      await upstream.peer.waitFor(/- Cipher: /);
      const upstreamReport = parseGnutlsReport(upstream.peer.output());
      expect(client()).toMatchObject({
        tlsVersion: 'TLSv1.3',
        cipher: 'TLS_CHACHA20_POLY1305_SHA256',
        sni: 'localhost',
      });
      expect(server()).toMatchObject({
        tlsVersion: upstreamReport.tlsVersion,
        cipher: upstreamReport.cipher,
      });
      expect(server().tlsVersion).toBe('TLSv1.2');
      expect(server().cipher).toMatch(/_AES_256_GCM_/);
    } finally {
      await peer?.stop();
      await upstream.stop();
      await proxy.close();
    }
  });
});
