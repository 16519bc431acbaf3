/**
 * The interop matrix on loopback: our client against real TLS servers, real TLS clients against
 * our listener. Each cell asserts the model equals what the peer itself reports.
 */

import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import { createServer as createNodeTlsServer, connect as nodeTlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Client, Server } from '../../src/connection/index.js';
import { ConnectError } from '../../src/transport/errors.js';
import { type TlsListener, type TlsSession, tls } from '../../src/transport/tls/index.js';
import {
  EC_CERT,
  EC_CERT_PEM,
  EC_KEY_PEM,
  fixturePath,
  RSA_CERT,
  RSA_CERT_PEM,
  RSA_KEY_PEM,
} from '../helpers/certs.js';
import {
  type PeerReport,
  runGnutlsClient,
  runOpensslClient,
  startGnutlsServer,
  startOpensslServer,
} from './tls-peers.js';

const HOST = '127.0.0.1';
const LEGACY = { minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;
const certs = {
  rsa: {
    cert: fixturePath('rsa-cert.pem'),
    key: fixturePath('rsa-key.pem'),
    x509: RSA_CERT,
    pem: RSA_CERT_PEM,
  },
  ec: { cert: fixturePath('ec-cert.pem'), key: fixturePath('ec-key.pem'), x509: EC_CERT, pem: EC_CERT_PEM },
};

function expectModelMatches(conn: Client | Server, report: PeerReport): void {
  if (report.tlsVersion !== null)
    expect(conn.tlsVersion, `tlsVersion\n${report.output}`).toBe(report.tlsVersion);
  expect(report.cipher, `peer cipher\n${report.output}`).not.toBeNull();
  expect(conn.cipher, 'cipher').toBe(report.cipher);
  if (report.alpn !== null) expect(conn.alpn, 'alpn').toBe(report.alpn);
  expect(conn.tlsEstablished).toBe(true);
}

describe('our client against openssl s_server', () => {
  const cells: {
    name: string;
    cert: 'rsa' | 'ec';
    args: string[];
    options?: Record<string, unknown>;
    expect?: { tlsVersion: string; cipher?: string };
  }[] = [
    {
      name: 'TLSv1, RSA (SECLEVEL=0)',
      cert: 'rsa',
      args: ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0'],
      options: { ...LEGACY, maxVersion: 'TLSv1' },
      expect: { tlsVersion: 'TLSv1' },
    },
    {
      name: 'TLSv1.1, ECDSA (SECLEVEL=0)',
      cert: 'ec',
      args: ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'],
      options: { ...LEGACY, maxVersion: 'TLSv1.1' },
      expect: { tlsVersion: 'TLSv1.1' },
    },
    { name: 'TLSv1.2, RSA', cert: 'rsa', args: ['-tls1_2'], expect: { tlsVersion: 'TLSv1.2' } },
    { name: 'TLSv1.2, ECDSA', cert: 'ec', args: ['-tls1_2'], expect: { tlsVersion: 'TLSv1.2' } },
    { name: 'TLSv1.3, RSA', cert: 'rsa', args: ['-tls1_3'], expect: { tlsVersion: 'TLSv1.3' } },
    { name: 'TLSv1.3, ECDSA', cert: 'ec', args: ['-tls1_3'], expect: { tlsVersion: 'TLSv1.3' } },
    {
      name: 'TLSv1.2 forced ECDHE-RSA-AES128-SHA',
      cert: 'rsa',
      args: ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA'],
      expect: { tlsVersion: 'TLSv1.2', cipher: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' },
    },
    {
      name: 'TLSv1 forced ECDHE-RSA-AES128-SHA',
      cert: 'rsa',
      args: ['-tls1', '-cipher', 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0'],
      options: { ...LEGACY, maxVersion: 'TLSv1' },
      expect: { tlsVersion: 'TLSv1', cipher: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' },
    },
    {
      name: 'TLSv1.3 forced TLS_CHACHA20_POLY1305_SHA256',
      cert: 'ec',
      args: ['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'],
      expect: { tlsVersion: 'TLSv1.3', cipher: 'TLS_CHACHA20_POLY1305_SHA256' },
    },
    {
      name: 'TLSv1.2 RSA key exchange AES256-SHA256',
      cert: 'rsa',
      args: ['-tls1_2', '-cipher', 'AES256-SHA256'],
      expect: { tlsVersion: 'TLSv1.2', cipher: 'TLS_RSA_WITH_AES_256_CBC_SHA256' },
    },
  ];
  for (const cell of cells) {
    it(cell.name, async () => {
      const c = certs[cell.cert];
      const server = await startOpensslServer(HOST, ['-cert', c.cert, '-key', c.key, ...cell.args]);
      try {
        const session = await tls.connect({ host: HOST, port: server.port, ca: c.pem, ...cell.options });
        const report = await server.report();
        expectModelMatches(session.conn, report);
        if (cell.expect) {
          expect(session.conn.tlsVersion).toBe(cell.expect.tlsVersion);
          if (cell.expect.cipher) expect(session.conn.cipher).toBe(cell.expect.cipher);
        }
        expect(session.conn.alpn).toBe('');
        expect(session.conn.sni).toBeNull(); // an IP literal: no SNI
        expect(session.conn.certificateList.map((x) => x.fingerprint256)).toEqual([c.x509.fingerprint256]);
        await session.close();
      } finally {
        await server.stop();
      }
    });
  }

  it('ALPN: the protocol s_server selected', async () => {
    const server = await startOpensslServer(
      HOST,
      ['-cert', certs.rsa.cert, '-key', certs.rsa.key, '-alpn', 'foo,bar'],
      { brief: false },
    );
    try {
      const session = await tls.connect({
        host: HOST,
        port: server.port,
        ca: RSA_CERT_PEM,
        ALPNProtocols: ['baz', 'bar'],
      });
      const report = await server.report();
      expect(report.alpn).toBe('bar');
      expectModelMatches(session.conn, report);
      expect(session.conn.alpnOffers).toEqual(['baz', 'bar']);
      await session.close();
    } finally {
      await server.stop();
    }
  });

  it('SNI: sends the servername asked for and verifies the name', async () => {
    const server = await startOpensslServer(HOST, ['-cert', certs.rsa.cert, '-key', certs.rsa.key], {
      brief: false,
    });
    try {
      const session = await tls.connect({
        host: HOST,
        port: server.port,
        ca: RSA_CERT_PEM,
        servername: 'localhost',
      });
      expect(session.conn.sni).toBe('localhost');
      expectModelMatches(session.conn, await server.report());
      await session.close();
    } finally {
      await server.stop();
    }
  });
});

describe('our client against gnutls-serv', () => {
  for (const [name, priority, version] of [
    ['TLSv1.2', 'NORMAL:-VERS-ALL:+VERS-TLS1.2', 'TLSv1.2'],
    ['TLSv1.3', 'NORMAL:-VERS-ALL:+VERS-TLS1.3', 'TLSv1.3'],
    ['TLSv1.2 ChaCha20', 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305', 'TLSv1.2'],
  ] as const) {
    it(name, async () => {
      const server = await startGnutlsServer(HOST, [
        '--x509certfile',
        certs.rsa.cert,
        '--x509keyfile',
        certs.rsa.key,
        '--priority',
        priority,
        '--alpn',
        'h2',
      ]);
      try {
        const session = await tls.connect({
          host: HOST,
          port: server.port,
          ca: RSA_CERT_PEM,
          servername: 'localhost',
          ALPNProtocols: ['h2', 'http/1.1'],
        });
        // gnutls-serv echoes lines; its report of the handshake is out by then
        session.stream.write('ping\n');
        await once(session.stream, 'data');
        await server.peer.waitFor(/- Cipher: \S+[\s\S]*- Application protocol/);
        const { parseGnutlsReport } = await import('./tls-peers.js');
        const report = parseGnutlsReport(server.peer.output().split('* Accepted connection').pop()!);
        expect(report.tlsVersion).toBe(version);
        expect(report.sni).toBe('localhost');
        expectModelMatches(session.conn, report);
        expect(session.conn.alpn).toBe('h2');
        await session.close();
      } finally {
        await server.stop();
      }
    });
  }
});

describe("our client against Node's tls server", () => {
  it('the model equals what the server socket reports', async () => {
    const server = createNodeTlsServer({ cert: EC_CERT_PEM, key: EC_KEY_PEM, ALPNProtocols: ['x', 'y'] });
    const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
    server.listen(0, HOST);
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    try {
      const session = await tls.connect({
        host: HOST,
        port,
        ca: EC_CERT_PEM,
        ALPNProtocols: ['y'],
        servername: 'localhost',
      });
      const [peer] = await accepted;
      expect(session.conn.tlsVersion).toBe(peer.getProtocol());
      expect(session.conn.cipher).toBe(peer.getCipher().standardName);
      expect(session.conn.alpn).toBe(peer.alpnProtocol);
      expect(peer.servername).toBe('localhost');
      await session.close();
    } finally {
      server.close();
    }
  });
});

describe('certificate_list: the chain the server sent, leaf first', () => {
  it('leaf and CA from a wirelayer CA, as a Node server sends them', async () => {
    const { CertificateAuthority } = await import('../../src/certs/index.js');
    const ca = CertificateAuthority.create();
    const leaf = ca.issue('localhost');
    const server = createNodeTlsServer({ cert: leaf.certPem + ca.certPem, key: leaf.keyPem });
    server.listen(0, HOST);
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const session = await tls.connect({ host: HOST, port, ca: ca.certPem, servername: 'localhost' });
      expect(session.conn.certificateList.map((c) => c.fingerprint256)).toEqual([
        leaf.cert.fingerprint256,
        ca.cert.fingerprint256,
      ]);
      await session.close();
    } finally {
      server.close();
    }
  });
});

describe('our listener under real clients', () => {
  let listener: TlsListener;
  let legacy: TlsListener;
  beforeAll(async () => {
    listener = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    legacy = await tls.listen({ host: HOST, cert: RSA_CERT_PEM, key: RSA_KEY_PEM, ...LEGACY });
  });
  afterAll(async () => {
    await listener.close();
    await legacy.close();
  });

  const accept = (l: TlsListener): Promise<TlsSession<Client>> =>
    (once(l, 'session') as Promise<[TlsSession<Client>]>).then(([s]) => s);

  for (const [flag, version] of [
    ['-tls1', 'TLSv1'],
    ['-tls1_1', 'TLSv1.1'],
    ['-tls1_2', 'TLSv1.2'],
    ['-tls1_3', 'TLSv1.3'],
  ] as const) {
    it(`openssl s_client ${flag}`, async () => {
      const l = version === 'TLSv1' || version === 'TLSv1.1' ? legacy : listener;
      const accepted = accept(l);
      const extra = version === 'TLSv1' || version === 'TLSv1.1' ? ['-cipher', 'DEFAULT@SECLEVEL=0'] : [];
      const report = await runOpensslClient(HOST, l.address[1], [flag, ...extra, '-CAfile', certs.rsa.cert]);
      const session = await accepted;
      expect(report.tlsVersion).toBe(version);
      expectModelMatches(session.conn, report);
      expect(session.conn.sni).toBeNull();
      expect(session.conn.alpnOffers).toEqual([]);
      expect(session.conn.mitmcert?.fingerprint256).toBe(RSA_CERT.fingerprint256);
      expect(session.conn.certificateList).toEqual([]);
    });
  }

  it('openssl s_client -servername -alpn: sni, alpnOffers and the ALPN chosen', async () => {
    const accepted = accept(listener);
    const report = await runOpensslClient(HOST, listener.address[1], [
      '-servername',
      'example.com',
      '-alpn',
      'spdy/3,http/1.1,h2',
      '-CAfile',
      certs.rsa.cert,
    ]);
    const session = await accepted;
    expectModelMatches(session.conn, report);
    expect(session.conn.sni).toBe('example.com');
    expect(session.conn.alpnOffers).toEqual(['spdy/3', 'http/1.1', 'h2']);
    expect(session.conn.alpn).toBe('h2');
  });

  it('openssl s_client -max_send_frag 512: a ClientHello split over records and segments', async () => {
    const hooked: number[] = [];
    const own = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      clientHello: (hello) => {
        hooked.push(hello.cipherSuites.length);
      },
    });
    try {
      const accepted = accept(own);
      // 60 ALPN names make the hello far longer than one 512-byte record
      const alpn = Array.from({ length: 60 }, (_, i) => `proto-${i}-x`);
      const report = await runOpensslClient(HOST, own.address[1], [
        '-max_send_frag',
        '512',
        '-servername',
        'split.example',
        '-alpn',
        alpn.join(','),
        '-CAfile',
        certs.rsa.cert,
      ]);
      const session = await accepted;
      expectModelMatches(session.conn, report);
      expect(session.conn.alpnOffers).toEqual(alpn);
      expect(session.conn.sni).toBe('split.example');
      expect(hooked).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  for (const [name, priority, version] of [
    ['gnutls-cli TLSv1.2', 'NORMAL:-VERS-ALL:+VERS-TLS1.2', 'TLSv1.2'],
    ['gnutls-cli TLSv1.3', 'NORMAL:-VERS-ALL:+VERS-TLS1.3', 'TLSv1.3'],
    ['gnutls-cli TLSv1.2 AES-128-CBC', 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC', 'TLSv1.2'],
  ] as const) {
    it(name, async () => {
      const accepted = accept(listener);
      const report = await runGnutlsClient('localhost', listener.address[1], [
        '--x509cafile',
        certs.rsa.cert,
        '--priority',
        priority,
        '--alpn',
        'http/1.1',
      ]);
      const session = await accepted;
      expect(report.tlsVersion).toBe(version);
      expectModelMatches(session.conn, report);
      expect(session.conn.sni).toBe('localhost');
      expect(session.conn.alpnOffers).toEqual(['http/1.1']);
      expect(session.conn.alpn).toBe('http/1.1');
    });
  }

  it("Node's tls client", async () => {
    const accepted = accept(listener);
    const socket = nodeTlsConnect({
      host: HOST,
      port: listener.address[1],
      ca: RSA_CERT_PEM,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
    });
    await once(socket, 'secureConnect');
    const session = await accepted;
    expect(session.conn.tlsVersion).toBe(socket.getProtocol());
    expect(session.conn.cipher).toBe(socket.getCipher().standardName);
    expect(session.conn.alpn).toBe(socket.alpnProtocol);
    expect(session.conn.sni).toBe('localhost');
    expect(session.conn.alpnOffers).toEqual(['http/1.1']);
    expect(new X509Certificate(socket.getPeerCertificate().raw).fingerprint256).toBe(
      session.conn.mitmcert?.fingerprint256,
    );
    socket.destroy();
  });
});

describe('failures: a clear error, and the listener survives', () => {
  const connectError = async (options: Parameters<typeof tls.connect>[0]): Promise<ConnectError> => {
    const err = await tls.connect(options).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  };

  let listener: TlsListener;
  beforeAll(async () => {
    listener = await tls.listen({ host: HOST, cert: EC_CERT_PEM, key: EC_KEY_PEM });
  });
  afterAll(() => listener.close());

  it('a self-signed server certificate not trusted: Certificate verify failed', async () => {
    const err = await connectError({ host: HOST, port: listener.address[1] });
    expect(err.conn.error).toBe('Certificate verify failed: self-signed certificate');
    expect(err.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(err.conn.state).toBe(0);
    expect(err.conn.timestampEnd).not.toBeNull();
    expect(err.conn.timestampTlsSetup).toBeNull();
  });

  it('the wrong CA: Certificate verify failed', async () => {
    const err = await connectError({ host: HOST, port: listener.address[1], ca: RSA_CERT_PEM });
    expect(err.conn.error).toMatch(/^Certificate verify failed: /);
  });

  it('the wrong hostname: Certificate verify failed: hostname mismatch', async () => {
    const err = await connectError({
      host: HOST,
      port: listener.address[1],
      ca: EC_CERT_PEM,
      servername: 'example.com',
    });
    expect(err.conn.error).toMatch(
      /^Certificate verify failed: hostname mismatch \(Hostname\/IP does not match/,
    );
    expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('--insecure (rejectUnauthorized: false) accepts it', async () => {
    const session = await tls.connect({
      host: HOST,
      port: listener.address[1],
      rejectUnauthorized: false,
      servername: 'example.com',
    });
    expect(session.conn.tlsVersion).toBe('TLSv1.3');
    expect(session.conn.certificateList[0]?.fingerprint256).toBe(EC_CERT.fingerprint256);
    await session.close();
  });

  for (const [name, respond] of [
    ['a plain TCP echo server', 'echo'],
    ['an HTTP server', 'http'],
  ] as const) {
    it(`${name}: The remote server does not speak TLS.`, async () => {
      const server = createNetServer((s) => {
        if (respond === 'echo') s.pipe(s);
        else s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
      });
      server.listen(0, HOST);
      await once(server, 'listening');
      try {
        const err = await connectError({ host: HOST, port: (server.address() as { port: number }).port });
        expect(err.conn.error).toMatch(/^The remote server does not speak TLS\. \(ERR_SSL_/);
      } finally {
        server.close();
      }
    });
  }

  it('a client that sends garbage: Cannot parse ClientHello: <hex>, and the listener survives', async () => {
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, Error]>;
    const socket = netConnect(listener.address[1], HOST);
    socket.on('error', () => undefined);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const [session] = await failed;
    expect(session.conn.error).toMatch(/^Cannot parse ClientHello: 474554202f20485454502f312e31/);
    expect(session.conn.tls).toBe(true);
    await once(socket, 'close');
    expect(session.closed).toBe(true);
    // still serving
    const ok = await tls.connect({ host: HOST, port: listener.address[1], ca: EC_CERT_PEM });
    expect(ok.conn.tlsEstablished).toBe(true);
    await ok.close();
  });

  it('a TLS record that is not a ClientHello: Cannot parse ClientHello', async () => {
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, Error]>;
    const socket = netConnect(listener.address[1], HOST);
    socket.on('error', () => undefined);
    // a handshake record carrying a ServerHello header
    socket.write(Buffer.from('160303000a020000060303000000000000', 'hex'));
    const [session] = await failed;
    expect(session.conn.error).toMatch(/^Cannot parse ClientHello: 160303000a02/);
    socket.destroy();
  });

  it('a client that does not trust our certificate: the listener records why', async () => {
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, Error]>;
    await runOpensslClient(HOST, listener.address[1], [
      '-verify_return_error',
      '-servername',
      'localhost',
    ]).catch(() => undefined);
    const [session] = await failed;
    expect(session.conn.error).toMatch(/^The client does not trust the certificate for localhost \(ERR_SSL_/);
  });

  it('versions that do not meet: a clear error on both ends', async () => {
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, Error]>;
    const err = await connectError({
      host: HOST,
      port: listener.address[1],
      ca: EC_CERT_PEM,
      ...LEGACY,
      maxVersion: 'TLSv1.1',
    });
    expect(err.conn.error).toMatch(/cannot agree on a TLS version/);
    const [session] = await failed;
    expect(session.conn.error).toMatch(/^The client and wirelayer cannot agree on a TLS version to use/);
  });

  it('a version node:tls cannot negotiate is refused before dialing', async () => {
    const err = await connectError({ host: HOST, port: listener.address[1], minVersion: 'SSLv3' });
    expect(err.code).toBe('ERR_TLS_INVALID_PROTOCOL_VERSION');
  });

  it("an unreadable client key is refused before dialing, with OpenSSL's reason", async () => {
    const accepted = vi.fn();
    listener.on('start', accepted);
    const err = await connectError({
      host: HOST,
      port: listener.address[1],
      cert: EC_CERT_PEM,
      key: 'not a key',
    });
    listener.off('start', accepted);
    expect(err.code).toMatch(/^ERR_OSSL_/);
    expect(err.conn.error!.length).toBeGreaterThan(0);
    expect(err.conn.timestampTcpSetup).toBeNull();
    expect(accepted).not.toHaveBeenCalled();
  });
});
