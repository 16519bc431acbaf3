/**
 * The DTLS driver against real stacks on loopback: our client against openssl s_server and
 * gnutls-serv, our listener under openssl s_client and gnutls-cli, and our client against our
 * listener. The model must equal what the other stack prints.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/certs/index.js';
import type { Client } from '../../src/connection/index.js';
import {
  type DtlsConnectOptions,
  DtlsListener,
  type DtlsListenOptions,
  dtls,
} from '../../src/transport/dtls/index.js';
import { ConnectError } from '../../src/transport/errors.js';
import type { DatagramSession } from '../../src/transport/types.js';
import { EC_CERT_PEM, EC_KEY_PEM, RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import {
  EC_CERT,
  gnutlsDescription,
  gnutlsServ,
  RSA_CERT,
  RSA_KEY,
  sClient,
  sServer,
  sServerReport,
} from './dtls-peers.js';

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const track = <T extends { stop(): Promise<void> } | PeerProcess>(p: T): T => {
  cleanups.push(() => p.stop());
  return p;
};

/** Our client; the first ClientHello may race the peer's bind, so retransmit quickly. */
async function ourClient(port: number, options: Partial<DtlsConnectOptions> = {}) {
  const session = await dtls.connect({
    host: HOST,
    port,
    ca: [EC_CERT_PEM, RSA_CERT_PEM],
    initialRetransmitMs: 150,
    connectTimeout: 8000,
    ...options,
  });
  cleanups.push(() => session.close());
  return session;
}

async function ourListener(options: DtlsListenOptions = {}): Promise<DtlsListener> {
  const listener = await DtlsListener.listen({
    host: HOST,
    cert: EC_CERT_PEM,
    key: EC_KEY_PEM,
    initialRetransmitMs: 150,
    ...options,
  });
  cleanups.push(() => listener.close());
  return listener;
}

const der = (pem: string): Buffer => new X509Certificate(pem).raw;

describe('our client -> openssl s_server', () => {
  it.each([
    ['DTLSv1.2, RSA certificate', ['-dtls1_2'], RSA_CERT, RSA_KEY, {}, RSA_CERT_PEM],
    [
      'DTLSv1 at SECLEVEL=0',
      ['-dtls1', '-cipher', 'DEFAULT@SECLEVEL=0'],
      RSA_CERT,
      RSA_KEY,
      { minVersion: 'DTLSv1', maxVersion: 'DTLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      RSA_CERT_PEM,
    ],
    [
      'a CBC suite (ECDHE-RSA-AES128-SHA)',
      ['-dtls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA'],
      RSA_CERT,
      RSA_KEY,
      {},
      RSA_CERT_PEM,
    ],
    [
      'ECDHE-ECDSA-CHACHA20-POLY1305, ECDSA certificate',
      ['-dtls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
      EC_CERT,
      EC_KEY_PEM_PATH(),
      {},
      EC_CERT_PEM,
    ],
    ['-mtu 300 on both ends', ['-dtls1_2', '-mtu', '300'], RSA_CERT, RSA_KEY, { mtu: 300 }, RSA_CERT_PEM],
  ] as const)(
    '%s: the model equals what s_server prints; records both ways',
    async (_name, args, cert, key, options, pem) => {
      const s = track(await sServer(HOST, [...args, '-brief'], cert, key));
      const session = await ourClient(s.port, { servername: 'localhost', ...options });
      const report = await sServerReport(s.peer);
      const conn = session.conn;
      expect(conn.tls).toBe(true);
      expect(conn.tlsVersion).toBe(report.tlsVersion);
      expect(conn.cipher).toBe(report.cipher);
      expect(conn.alpn).toBe('');
      expect(conn.sni).toBe('localhost');
      expect(conn.transportProtocol).toBe('udp');
      expect(conn.timestampTcpSetup).toBeNull();
      expect(conn.timestampTlsSetup).toBeGreaterThanOrEqual(conn.timestampStart!);
      expect(conn.certificateList.map((c) => c.raw)).toEqual([der(pem)]);

      session.datagrams.send(Buffer.from('hello from wirelayer\n'));
      await s.peer.waitFor(/hello from wirelayer/);
      const reply = once(session.datagrams, 'datagram') as Promise<[Uint8Array]>;
      s.peer.child.stdin?.write('hello from s_server\n');
      expect(Buffer.from((await reply)[0]).toString()).toBe('hello from s_server\n');
    },
  );

  it('ALPN: s_server picks by its own preference, and prints our offers', async () => {
    const s = track(await sServer(HOST, ['-dtls1_2', '-alpn', 'b,a']));
    const session = await ourClient(s.port, { ALPNProtocols: ['a', 'b'] });
    const [, offers] = await s.peer.waitFor(/ALPN protocols advertised by the client: (.+)/);
    expect(offers!.trim()).toBe('a, b');
    expect(session.conn.alpn).toBe('b');
    expect(session.conn.alpnOffers).toEqual(['a', 'b']);
    expect(session.conn.sni).toBeNull(); // an IP literal: no SNI sent
  });

  it('a CA that did not sign the certificate: "Certificate verify failed: ..." and a ConnectError', async () => {
    const s = track(await sServer(HOST, ['-dtls1_2', '-brief'], RSA_CERT, RSA_KEY));
    const err = await ourClient(s.port, { ca: EC_CERT_PEM }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    const e = err as ConnectError;
    expect(e.code).toBe('ERR_DTLS_CERT_VERIFY');
    expect(e.conn.error).toMatch(/^Certificate verify failed: self[- ]signed certificate/);
    expect(e.message).toBe(e.conn.error);
    expect(e.conn.timestampTlsSetup).toBeNull();
    expect(e.conn.timestampEnd).not.toBeNull();
  });

  it('a name the certificate does not carry fails verification; --insecure connects', async () => {
    const s = track(await sServer(HOST, ['-dtls1_2', '-brief'], RSA_CERT, RSA_KEY));
    const err = await ourClient(s.port, { servername: 'elsewhere.example' }).catch((e: unknown) => e);
    expect((err as ConnectError).conn.error).toMatch(/^Certificate verify failed: .*hostname mismatch/i);
    const s2 = track(await sServer(HOST, ['-dtls1_2', '-brief'], RSA_CERT, RSA_KEY));
    const session = await ourClient(s2.port, {
      servername: 'elsewhere.example',
      rejectUnauthorized: false,
      ca: undefined,
    });
    expect(session.conn.tlsVersion).toBe('DTLSv1.2');
    expect(session.conn.sni).toBe('elsewhere.example');
  });
});

function EC_KEY_PEM_PATH(): string {
  return EC_CERT.replace('ec-cert.pem', 'ec-key.pem');
}

describe('our client -> gnutls-serv --udp', () => {
  it.each([
    ['DTLS1.2', 'NORMAL:-VERS-ALL:+VERS-DTLS1.2', {}, 'DTLSv1.2'],
    [
      'DTLS1.0',
      'NORMAL:-VERS-ALL:+VERS-DTLS1.0',
      { minVersion: 'DTLSv1', maxVersion: 'DTLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      'DTLSv1',
    ],
  ] as const)(
    '%s: version and cipher as gnutls-serv negotiated; its echo comes back',
    async (_n, priority, options, version) => {
      const s = track(await gnutlsServ(HOST, priority));
      const session = await ourClient(s.port, { servername: 'localhost', ...options });
      expect(session.conn.tlsVersion).toBe(version);
      // gnutls-serv prints no cipher; its debug line names the suite in its own words, so check
      // the suite family and ECDSA key exchange from its certificate
      expect(session.conn.cipher).toMatch(/^TLS_ECDHE_ECDSA_WITH_/);
      expect(session.conn.certificateList[0]!.raw).toEqual(der(EC_CERT_PEM));
      const echo = once(session.datagrams, 'datagram') as Promise<[Uint8Array]>;
      session.datagrams.send(Buffer.from('echo me'));
      expect(Buffer.from((await echo)[0]).toString()).toBe('echo me');
    },
  );
});

describe('openssl s_client -> our listener', () => {
  it('DTLSv1.2 with SNI and ALPN: the Client model equals what s_client prints; key logs agree', async () => {
    const lines: string[] = [];
    const listener = await ourListener({
      ALPNProtocols: ['b'],
      keylog: (line) => lines.push(line.toString()),
    });
    const accepted = once(listener, 'session') as Promise<[DatagramSession<Client>]>;
    const keylogFile = `${process.env.TMPDIR ?? '/tmp'}/wirelayer-dtls-${process.pid}.keylog`;
    const { report, peer } = await sClient(HOST, listener.address[1], [
      '-dtls1_2',
      '-servername',
      'x.example',
      '-alpn',
      'a,b',
      '-keylogfile',
      keylogFile,
      '-verify_hostname',
      'localhost',
    ]);
    track(peer);
    const [session] = await accepted;
    const client = session.conn;
    expect(client.tls).toBe(true);
    expect(client.tlsVersion).toBe(report.tlsVersion);
    expect(client.cipher).toBe(report.cipher);
    expect(client.alpn).toBe(report.alpn);
    expect(client.alpn).toBe('b');
    expect(client.sni).toBe('x.example');
    expect(client.alpnOffers).toEqual(['a', 'b']);
    expect(client.certificateList).toEqual([]); // no client certificate asked for
    expect(client.mitmcert?.raw).toEqual(der(EC_CERT_PEM));
    expect(client.timestampTlsSetup).toBeGreaterThanOrEqual(client.timestampStart);

    const reply = once(session.datagrams, 'datagram') as Promise<[Uint8Array]>;
    peer.child.stdin?.write('to wirelayer\n');
    expect(Buffer.from((await reply)[0]).toString()).toBe('to wirelayer\n');
    session.datagrams.send(Buffer.from('to s_client\n'));
    await peer.waitFor(/to s_client/);

    const theirs = readFileSync(keylogFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines.map((l) => l.trimEnd())).toEqual(theirs);
  });

  it('DTLSv1 at SECLEVEL=0', async () => {
    const listener = await ourListener({
      minVersion: 'DTLSv1',
      maxVersion: 'DTLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const accepted = once(listener, 'session') as Promise<[DatagramSession<Client>]>;
    const { report, peer } = await sClient(HOST, listener.address[1], [
      '-dtls1',
      '-cipher',
      'DEFAULT@SECLEVEL=0',
    ]);
    track(peer);
    const [session] = await accepted;
    expect(report.tlsVersion).toBe('DTLSv1');
    expect(session.conn.tlsVersion).toBe('DTLSv1');
    expect(session.conn.cipher).toBe(report.cipher);
  });

  it('-mtu 300 on both ends: fragmented flights', async () => {
    const listener = await ourListener({ mtu: 300, cert: RSA_CERT_PEM, key: RSA_KEY_PEM });
    const accepted = once(listener, 'session') as Promise<[DatagramSession<Client>]>;
    const { report, peer } = await sClient(HOST, listener.address[1], [
      '-dtls1_2',
      '-mtu',
      '300',
      '-CAfile',
      RSA_CERT,
    ]);
    track(peer);
    const [session] = await accepted;
    expect(session.conn.cipher).toBe(report.cipher);
  });

  it('a ClientHello in fragments (-mtu 256, long SNI and ALPN): reassembled at the door, SNI and offers read', async () => {
    const listener = await ourListener({ ALPNProtocols: ['http/1.1'] });
    const accepted = once(listener, 'session') as Promise<[DatagramSession<Client>]>;
    const sni = 'a-rather-long-server-name.wirelayer.example';
    const { report, peer } = await sClient(HOST, listener.address[1], [
      '-dtls1_2',
      '-mtu',
      '256',
      '-servername',
      sni,
      '-alpn',
      'h2,http/1.1,spdy/3,another-protocol',
      '-verify_hostname',
      'localhost',
    ]);
    track(peer);
    const [session] = await accepted;
    expect(listener.stats.reassembled).toBeGreaterThanOrEqual(1);
    expect(session.conn.sni).toBe(sni);
    expect(session.conn.alpnOffers).toEqual(['h2', 'http/1.1', 'spdy/3', 'another-protocol']);
    expect(session.conn.alpn).toBe(report.alpn);
    expect(session.conn.cipher).toBe(report.cipher);
  });
});

describe('gnutls-cli --udp -> our listener', () => {
  it.each([
    ['DTLS1.2', 'NORMAL:-VERS-ALL:+VERS-DTLS1.2', {}, 'DTLSv1.2'],
    [
      'DTLS1.0',
      'NORMAL:-VERS-ALL:+VERS-DTLS1.0',
      { minVersion: 'DTLSv1', maxVersion: 'DTLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      'DTLSv1',
    ],
  ] as const)(
    '%s: version, cipher, SNI and ALPN as gnutls-cli reports',
    async (gnutlsVersion, priority, options, version) => {
      const listener = await ourListener({ ALPNProtocols: ['b'], ...options });
      const accepted = once(listener, 'session') as Promise<[DatagramSession<Client>]>;
      const peer = track(
        spawnPeer('gnutls-cli', [
          '--udp',
          '-p',
          String(listener.address[1]),
          HOST,
          '--sni-hostname',
          'x.example',
          '--verify-hostname',
          'localhost',
          '--alpn',
          'a',
          '--alpn',
          'b',
          '--x509cafile',
          EC_CERT,
          '--priority',
          priority,
        ]),
      );
      const [session] = await accepted;
      await peer.waitFor(/Status: The certificate is trusted/);
      const d = gnutlsDescription(peer.output());
      expect(d?.tlsVersion).toBe(version);
      expect(session.conn.tlsVersion).toBe(version);
      expect(session.conn.cipher!.replace(/_/g, '-')).toContain(d!.bulk);
      expect(session.conn.sni).toBe('x.example');
      expect(session.conn.alpnOffers).toEqual(['a', 'b']);
      if (gnutlsVersion === 'DTLS1.2') {
        const [, alpn] = await peer.waitFor(/Application protocol: (\S+)/);
        expect(session.conn.alpn).toBe(alpn);
      }
      const reply = once(session.datagrams, 'datagram') as Promise<[Uint8Array]>;
      peer.child.stdin?.write('to wirelayer\n');
      expect(Buffer.from((await reply)[0]).toString()).toBe('to wirelayer\n');
    },
  );
});

describe('our client -> our listener', () => {
  it('the ClientHello hook picks the certificate by SNI (async); both models agree', async () => {
    const seen: Array<{ sni: string | null; offers: readonly string[]; clientSni: string | null }> = [];
    const listener = await ourListener({
      ALPNProtocols: ['b', 'a'],
      clientHello: async (hello, client) => {
        seen.push({ sni: hello.sni, offers: hello.alpnProtocols, clientSni: client.sni });
        await new Promise((r) => setTimeout(r, 20));
        return hello.sni === 'rsa.localhost' ? { cert: RSA_CERT_PEM, key: RSA_KEY_PEM } : undefined;
      },
    });
    const port = listener.address[1];
    for (const [sni, pem] of [
      ['rsa.localhost', RSA_CERT_PEM],
      ['ec.localhost', EC_CERT_PEM],
    ] as const) {
      const accepted = once(listener, 'session') as Promise<[DatagramSession<Client>]>;
      const out = await ourClient(port, {
        servername: sni,
        rejectUnauthorized: false,
        ALPNProtocols: ['a', 'b'],
      });
      const [inbound] = await accepted;
      expect(out.conn.certificateList[0]!.raw).toEqual(der(pem));
      expect(inbound.conn.mitmcert?.raw).toEqual(der(pem));
      expect(inbound.conn.sni).toBe(sni);
      expect(out.conn.sni).toBe(sni);
      for (const key of ['tlsVersion', 'cipher', 'alpn'] as const)
        expect(inbound.conn[key]).toBe(out.conn[key]);
      expect(out.conn.alpn).toBe('b');
      await out.close();
    }
    expect(seen).toEqual([
      { sni: 'rsa.localhost', offers: ['a', 'b'], clientSni: 'rsa.localhost' },
      { sni: 'ec.localhost', offers: ['a', 'b'], clientSni: 'ec.localhost' },
    ]);
  });

  it('a hook that throws fails the session (sessionError) and our client', async () => {
    const listener = await ourListener({
      clientHello: () => {
        throw new Error('no certificate for you');
      },
    });
    const failed = once(listener, 'sessionError') as Promise<[DatagramSession<Client>, Error]>;
    const err = await ourClient(listener.address[1], {
      rejectUnauthorized: false,
      connectTimeout: 1500,
    }).catch((e: unknown) => e);
    const [session, error] = await failed;
    expect(session.conn.error).toBe('ClientHello hook failed: no certificate for you');
    expect(error.message).toBe(session.conn.error);
    expect(err).toBeInstanceOf(ConnectError);
  });

  it('a listener without a certificate presents wirelayer CA leaves: the CA verifies them, per SNI', async () => {
    const confdir = mkdtempSync(join(tmpdir(), 'wirelayer-dtls-ca-'));
    cleanups.push(async () => rmSync(confdir, { recursive: true, force: true }));
    const listener = await DtlsListener.listen({ host: HOST, initialRetransmitMs: 150, confdir });
    cleanups.push(() => listener.close());
    const port = listener.address[1];
    const err = await ourClient(port, { ca: undefined, servername: 'localhost' }).catch((e: unknown) => e);
    expect((err as ConnectError).conn.error).toMatch(
      /^Certificate verify failed: unable to get local issuer/,
    );
    const ca = CertificateAuthority.load(confdir).certPem;
    for (const name of ['localhost', 'example.test']) {
      const session = await ourClient(port, { ca, servername: name });
      const leaf = session.conn.certificateList[0]!;
      expect(leaf.checkHost(name)).toBe(name);
      expect(leaf.issuer).toContain('wirelayer');
      await session.close();
    }
  });

  it('refuses a version it does not negotiate (TLSv1.3) before anything is bound', async () => {
    await expect(DtlsListener.listen({ host: HOST, maxVersion: 'TLSv1.3' })).rejects.toThrow(
      /not a DTLS version/,
    );
    const err = await dtls.connect({ host: HOST, port: 9, minVersion: 'TLSv1.2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).conn.error).toMatch(/not a DTLS version/);
  });

  it('mismatched versions: both ends record why', async () => {
    const listener = await ourListener({ minVersion: 'DTLSv1.2' });
    const failed = once(listener, 'sessionError') as Promise<[DatagramSession<Client>, Error]>;
    const err = await ourClient(listener.address[1], {
      minVersion: 'DTLSv1',
      maxVersion: 'DTLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
      connectTimeout: 2000,
    }).catch((e: unknown) => e);
    const [session] = await failed;
    expect(session.conn.error).toMatch(/cannot agree on a DTLS version|DTLS handshake failed/);
    expect((err as ConnectError).conn.error).toMatch(/cannot agree on a DTLS version|DTLS handshake failed/);
  });
});
