/**
 * The listener's ClientHello hook, passthrough, detection on one port, and the certificates a
 * listener without its own makes (leaves signed by the wirelayer CA).
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect as nodeTlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, CertStore } from '../../src/certs/index.js';
import type { Client, Server } from '../../src/connection/index.js';
import type { ClientHello } from '../../src/handshake/tls/client-hello.js';
import { type TlsSession, tls } from '../../src/transport/tls/index.js';
import {
  EC_CERT,
  EC_CERT_PEM,
  EC_KEY_PEM,
  fixturePath,
  RSA_CERT,
  RSA_CERT_PEM,
  RSA_KEY_PEM,
} from '../helpers/certs.js';
import { handshakeFixture } from './tls-fixtures.js';
import { startOpensslServer } from './tls-peers.js';

const HOST = '127.0.0.1';

async function nodeClient(port: number, options: ConnectionOptions = {}): Promise<TLSSocket> {
  const socket = nodeTlsConnect({ host: HOST, port, ...options });
  await once(socket, 'secureConnect');
  return socket;
}

const firstSession = (l: { once: (e: string, f: (s: TlsSession<Client>) => void) => unknown }) =>
  new Promise<TlsSession<Client>>((resolve) => l.once('session', resolve));

describe('the ClientHello hook', () => {
  it('sees the parsed hello with sni and alpnOffers already on the Client, and picks the certificate', async () => {
    const seen: { hello: ClientHello; sni: string | null; offers: readonly string[] }[] = [];
    await using listener = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      ALPNProtocols: ['h2'],
      clientHello: async (hello, client) => {
        seen.push({ hello, sni: client.sni, offers: client.alpnOffers });
        await new Promise((r) => setTimeout(r, 5));
        return hello.sni === 'ec.localhost' ? { cert: EC_CERT_PEM, key: EC_KEY_PEM } : undefined;
      },
    });
    const accepted = firstSession(listener);
    const socket = await nodeClient(listener.address[1], {
      servername: 'ec.localhost',
      ALPNProtocols: ['h2', 'http/1.1'],
      rejectUnauthorized: false,
    });
    const session = await accepted;
    expect(seen).toHaveLength(1);
    expect(seen[0]!.sni).toBe('ec.localhost');
    expect(seen[0]!.offers).toEqual(['h2', 'http/1.1']);
    expect(seen[0]!.hello.sni).toBe('ec.localhost');
    expect(new X509Certificate(socket.getPeerCertificate().raw).fingerprint256).toBe(EC_CERT.fingerprint256);
    expect(session.conn.mitmcert?.fingerprint256).toBe(EC_CERT.fingerprint256);
    expect(session.conn.alpn).toBe('h2');
    socket.destroy();

    // another name: the listener's own certificate
    const again = firstSession(listener);
    const other = await nodeClient(listener.address[1], { servername: 'localhost', ca: RSA_CERT_PEM });
    expect((await again).conn.mitmcert?.fingerprint256).toBe(RSA_CERT.fingerprint256);
    other.destroy();
  });

  it('a hook that throws fails the session with its message; the listener goes on', async () => {
    let calls = 0;
    await using listener = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      clientHello: () => {
        if (calls++ === 0) throw new Error('boom');
      },
    });
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, Error]>;
    const bad = nodeTlsConnect({ host: HOST, port: listener.address[1], rejectUnauthorized: false });
    bad.on('error', () => undefined);
    const [session] = await failed;
    expect(session.conn.error).toBe('ClientHello hook failed: boom');
    const ok = await nodeClient(listener.address[1], { ca: RSA_CERT_PEM, servername: 'localhost' });
    ok.destroy();
  });

  it('a ClientHello trickled in small TCP segments', async () => {
    await using listener = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      clientHello: () => undefined,
    });
    // a relay that forwards the client's bytes 16 at a time, one segment each
    const relay = createNetServer((inbound) => {
      const out = netConnect({ host: HOST, port: listener.address[1], noDelay: true });
      for (const s of [inbound, out]) s.on('error', () => undefined);
      out.pipe(inbound);
      inbound.on('data', (chunk: Buffer) => {
        inbound.pause();
        void (async () => {
          for (let i = 0; i < chunk.length; i += 16) {
            out.write(chunk.subarray(i, i + 16));
            await new Promise((r) => setTimeout(r, 1));
          }
          inbound.resume();
        })();
      });
      inbound.on('close', () => out.destroy());
      out.on('close', () => inbound.destroy());
    });
    relay.listen(0, HOST);
    await once(relay, 'listening');
    try {
      const accepted = firstSession(listener);
      const socket = await nodeClient((relay.address() as { port: number }).port, {
        ca: RSA_CERT_PEM,
        servername: 'localhost',
        ALPNProtocols: ['a', 'b'],
      });
      const session = await accepted;
      expect(session.conn.sni).toBe('localhost');
      expect(session.conn.alpnOffers).toEqual(['a', 'b']);
      expect(session.conn.tlsVersion).toBe(socket.getProtocol());
      socket.destroy();
    } finally {
      relay.close();
    }
  });
});

describe('passthrough', () => {
  for (const [name, args, version, alpn] of [
    ['TLSv1.2 with ALPN', ['-tls1_2', '-alpn', 'foo,bar'], 'TLSv1.2', 'bar'],
    ['TLSv1.3 (ALPN encrypted: unknown)', ['-tls1_3', '-alpn', 'foo,bar'], 'TLSv1.3', null],
    ['TLSv1.3 after a HelloRetryRequest', ['-tls1_3', '-groups', 'P-384'], 'TLSv1.3', null],
  ] as const) {
    it(`relays the bytes untouched and fills both models: ${name}`, async () => {
      const upstream = await startOpensslServer(
        HOST,
        ['-cert', fixturePath('rsa-cert.pem'), '-key', fixturePath('rsa-key.pem'), ...args],
        {
          brief: false,
        },
      );
      try {
        await using listener = await tls.listen({
          host: HOST,
          cert: EC_CERT_PEM,
          key: EC_KEY_PEM,
          clientHello: () => ({ passthrough: { host: HOST, port: upstream.port } }),
        });
        const passed = once(listener, 'passthrough') as Promise<[TlsSession<Client>, Server]>;
        // the client verifies the upstream's certificate: nothing was terminated on the way
        const socket = await nodeClient(listener.address[1], {
          ca: RSA_CERT_PEM,
          servername: 'localhost',
          ALPNProtocols: ['bar'],
        });
        const [session, server] = await passed;
        const report = await upstream.report();
        expect(socket.getCipher().standardName).toBe(report.cipher);
        for (const conn of [session.conn, server]) {
          expect(conn.tls).toBe(true);
          expect(conn.tlsVersion).toBe(version);
          expect(conn.tlsVersion).toBe(socket.getProtocol());
          expect(conn.cipher).toBe(report.cipher);
          expect(conn.alpn).toBe(alpn);
        }
        expect(session.layer).toBe('passthrough');
        expect(session.conn.sni).toBe('localhost');
        expect(session.conn.mitmcert).toBeNull();
        expect(server.sni).toBe('localhost');
        expect(server.alpnOffers).toEqual(['bar']);
        expect(server.address).toEqual([HOST, upstream.port]);
        expect(server.timestampTcpSetup).not.toBeNull();
        if (alpn) expect(socket.alpnProtocol).toBe(alpn);
        socket.destroy();
        await session.whenClosed();
      } finally {
        await upstream.stop();
      }
    });
  }

  it('an upstream that refuses: the session fails with the reason', async () => {
    const dead = createNetServer();
    dead.listen(0, HOST);
    await once(dead, 'listening');
    const port = (dead.address() as { port: number }).port;
    await new Promise((r) => dead.close(r));
    await using listener = await tls.listen({
      host: HOST,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      clientHello: () => ({ passthrough: { host: HOST, port } }),
    });
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, Error]>;
    const socket = nodeTlsConnect({ host: HOST, port: listener.address[1], rejectUnauthorized: false });
    socket.on('error', () => undefined);
    const [session] = await failed;
    expect(session.conn.error).toMatch(
      new RegExp(`^Passthrough to ${HOST}:${port} failed: Connection refused`),
    );
  });

  it('SSLv3 (recorded bytes): detection takes it for TLS and passthrough reports SSLv3', async () => {
    const clientHello = handshakeFixture('sslv3-client-hello.hex');
    const serverHello = handshakeFixture('sslv3-server-hello.hex');
    // an upstream that answers an SSLv3 ServerHello, as an SSLv3-only server would
    const upstream = createNetServer((s) => s.once('data', () => s.write(serverHello)));
    upstream.listen(0, HOST);
    await once(upstream, 'listening');
    const hellos: ClientHello[] = [];
    try {
      await using listener = await tls.listen({
        host: HOST,
        detect: true,
        cert: EC_CERT_PEM,
        key: EC_KEY_PEM,
        clientHello: (hello) => {
          hellos.push(hello);
          return { passthrough: { host: HOST, port: (upstream.address() as { port: number }).port } };
        },
      });
      const passed = once(listener, 'passthrough') as Promise<[TlsSession<Client>, Server]>;
      const socket: Socket = netConnect(listener.address[1], HOST);
      socket.write(clientHello);
      const [reply] = (await once(socket, 'data')) as [Buffer];
      expect(reply.equals(serverHello)).toBe(true);
      const [session, server] = await passed;
      expect(hellos[0]!.legacyVersion).toBe(0x0300);
      for (const conn of [session.conn, server]) {
        expect(conn.tls).toBe(true);
        expect(conn.tlsVersion).toBe('SSLv3');
        expect(conn.cipher).toBe('TLS_RSA_WITH_AES_128_CBC_SHA');
        expect(conn.alpn).toBe('');
      }
      socket.destroy();
    } finally {
      upstream.close();
    }
  });
});

describe('detection: TLS and plain TCP on one port', () => {
  it('the first bytes decide', async () => {
    await using listener = await tls.listen({
      host: HOST,
      detect: true,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      detectTimeout: 200,
    });
    listener.on('session', (s: TlsSession<Client>) => s.stream.pipe(s.stream));

    const tlsUp = firstSession(listener);
    const secure = await nodeClient(listener.address[1], { ca: EC_CERT_PEM });
    const tlsSession = await tlsUp;
    expect(tlsSession.layer).toBe('tls');
    expect(tlsSession.conn.tls).toBe(true);
    expect(tlsSession.conn.tlsVersion).toBe('TLSv1.3');
    secure.destroy();

    const plainUp = firstSession(listener);
    const plain = netConnect(listener.address[1], HOST);
    plain.write('hello, plain');
    const [echo] = (await once(plain, 'data')) as [Buffer];
    expect(echo.toString()).toBe('hello, plain');
    const plainSession = await plainUp;
    expect(plainSession.layer).toBe('plain');
    expect(plainSession.conn.tls).toBe(false);
    expect(plainSession.conn.tlsVersion).toBeNull();
    plain.destroy();

    // a client that waits for the server to speak first is plain TCP after detectTimeout
    const silentUp = firstSession(listener);
    const silent = netConnect(listener.address[1], HOST);
    const silentSession = await silentUp;
    expect(silentSession.layer).toBe('plain');
    silent.destroy();
  });
});

describe('a listener without a certificate of its own', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirelayer-ca-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('presents a leaf for the SNI (else the address reached), signed by the CA of its conf dir', async () => {
    await using listener = await tls.listen({ host: HOST, confdir: dir });
    const ca = CertificateAuthority.load(dir);
    const byName = firstSession(listener);
    const named = await nodeClient(listener.address[1], { ca: ca.certPem, servername: 'example.com' });
    const leaf = (await byName).conn.mitmcert!;
    expect(leaf.subjectAltName).toBe('DNS:example.com');
    expect(leaf.checkIssued(ca.cert)).toBe(true);
    named.destroy();

    const byAddress = firstSession(listener);
    const unnamed = await nodeClient(listener.address[1], { ca: ca.certPem });
    expect((await byAddress).conn.mitmcert!.subjectAltName).toBe('IP Address:127.0.0.1');
    unnamed.destroy();
  });

  it('takes a CertStore', async () => {
    const certs = new CertStore(CertificateAuthority.create({ type: 'rsa' }), { keyType: 'rsa' });
    await using listener = await tls.listen({ host: HOST, certs });
    const socket = await nodeClient(listener.address[1], { ca: certs.ca.certPem, servername: 'rsa.example' });
    expect(socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType).toBe('rsa');
    expect(certs.has('rsa.example')).toBe(true);
    socket.destroy();
  });
});
