/**
 * The engine against real DTLS stacks on loopback: openssl s_server / s_client 3.0 and
 * gnutls-serv / gnutls-cli 3.7. A tiny dgram pump (helpers/peers.ts) stands in for the
 * driver. What the engine reports must equal what the other stack prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DtlsContext, type DtlsContextOptions } from '../../src/transport/dtls/engine.js';
import { opensslStandardName } from '../helpers/cipher-names.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import {
  type DgramPump,
  EngineServer,
  engineClient,
  freeUdpPort,
  HOST,
  PeerProcess,
} from './helpers/peers.js';

let pki: TestPki;
const cleanups: Array<() => void> = [];

beforeAll(() => {
  pki = makeTestPki();
});
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});
afterAll(() => pki.cleanup());

function peer(command: string, args: string[]): PeerProcess {
  const p = new PeerProcess(command, args);
  cleanups.push(() => p.kill());
  return p;
}

/** Our client; the first ClientHello may race the peer's bind, so retransmit quickly. */
async function ourClient(
  port: number,
  options: Partial<DtlsContextOptions> = {},
  servername = 'localhost',
): Promise<DgramPump> {
  const ctx = new DtlsContext({ role: 'client', ca: pki.caCert, initialRetransmitMs: 200, ...options });
  const pump = await engineClient(ctx, port, { servername });
  cleanups.push(() => pump.close());
  return pump;
}

async function ourServer(options: Partial<DtlsContextOptions> = {}): Promise<EngineServer> {
  const ctx = new DtlsContext({
    role: 'server',
    cert: pki.rsaCert,
    key: pki.rsaKey,
    initialRetransmitMs: 200,
    ...options,
  });
  const server = await EngineServer.listen(ctx);
  cleanups.push(() => server.close());
  return server;
}

const text = (pump: DgramPump): string => pump.received.map(String).join('');

describe('engine client <-> openssl s_server', () => {
  async function sServer(
    args: string[],
    cert = pki.files.rsaCert,
    key = pki.files.rsaKey,
  ): Promise<{ port: number; p: PeerProcess }> {
    const port = await freeUdpPort();
    const p = peer('openssl', [
      's_server',
      '-brief',
      '-accept',
      `${HOST}:${port}`,
      '-cert',
      cert,
      '-key',
      key,
      ...args,
    ]);
    return { port, p };
  }

  it('DTLSv1.2: version and cipher as s_server prints them; data both ways', async () => {
    const { port, p } = await sServer(['-dtls1_2']);
    const pump = await ourClient(port);
    await pump.established();
    const [, version] = await p.waitFor(/Protocol version: (\S+)/);
    const [, cipher] = await p.waitFor(/Ciphersuite: (\S+)/);
    const ours = pump.session.handshake();
    expect(ours.version).toBe(version);
    expect(ours.version).toBe('DTLSv1.2');
    expect(ours.cipher).toBe(opensslStandardName(cipher!));
    expect(ours.verifyError).toBeNull();
    expect(pump.session.peerCertificates()).toHaveLength(1);

    pump.send(Buffer.from('hello from the engine\n'));
    await p.waitFor(/hello from the engine/);
    p.write('hello from s_server\n');
    await pump.until(() => text(pump).includes('hello from s_server'));
  });

  it('DTLSv1 at SECLEVEL=0 on both ends', async () => {
    const { port, p } = await sServer(['-dtls1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    const pump = await ourClient(port, {
      minVersion: 'DTLSv1',
      maxVersion: 'DTLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    await pump.established();
    const [, version] = await p.waitFor(/Protocol version: (\S+)/);
    const [, cipher] = await p.waitFor(/Ciphersuite: (\S+)/);
    expect(version).toBe('DTLSv1');
    expect(pump.session.handshake().version).toBe('DTLSv1');
    expect(pump.session.handshake().cipher).toBe(opensslStandardName(cipher!));
  });

  it('a forced ECDHE-ECDSA-CHACHA20-POLY1305 with an ECDSA certificate', async () => {
    const { port, p } = await sServer(
      ['-dtls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
      pki.files.ecCert,
      pki.files.ecKey,
    );
    const pump = await ourClient(port);
    await pump.established();
    const [, cipher] = await p.waitFor(/Ciphersuite: (\S+)/);
    expect(cipher).toBe('ECDHE-ECDSA-CHACHA20-POLY1305');
    expect(pump.session.handshake().cipher).toBe('TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256');
    pump.send(Buffer.from('x\n')); // a 2-byte record: 18 bytes on the wire, the smallest ChaCha20 record
    await p.waitFor(/^x$/m);
  });

  it('ALPN: s_server picks by its own preference', async () => {
    const port = await freeUdpPort();
    // Not -brief: then s_server prints the client's offers.
    const p = peer('openssl', [
      's_server',
      '-dtls1_2',
      '-accept',
      `${HOST}:${port}`,
      '-cert',
      pki.files.rsaCert,
      '-key',
      pki.files.rsaKey,
      '-alpn',
      'b,a',
    ]);
    const pump = await ourClient(port, { ALPNProtocols: ['a', 'b'] });
    await pump.established();
    const [, offers] = await p.waitFor(/ALPN protocols advertised by the client: (.+)/);
    expect(offers!.trim()).toBe('a, b');
    expect(pump.session.handshake().alpn).toBe('b');
  });

  it('-mtu 300 on both ends: every datagram fits, flights are fragmented', async () => {
    const { port, p } = await sServer(['-dtls1_2', '-mtu', '300']);
    const pump = await ourClient(port, { mtu: 300 });
    await pump.established();
    await p.waitFor(/Ciphersuite: /);
    expect(pump.maxInbound).toBeLessThanOrEqual(300);
    expect(pump.maxOutbound).toBeLessThanOrEqual(300);
    expect(pump.maxInbound).toBeGreaterThan(200);
  });

  it('a wrong CA fails with a clear verification error', async () => {
    const { port } = await sServer(['-dtls1_2']);
    const pump = await ourClient(port, { ca: pki.otherCaCert });
    await expect(pump.established()).rejects.toThrow(
      /certificate verify failed: unable to get local issuer certificate/,
    );
  });
});

describe('openssl s_client -> engine server', () => {
  it('DTLSv1.2 with SNI and ALPN: what s_client prints is what the engine reports; keylogs agree', async () => {
    const server = await ourServer({ ALPNProtocols: ['b'], keylog: true });
    const keylogFile = join(pki.dir, 's_client.keylog');
    const p = peer('openssl', [
      's_client',
      '-dtls1_2',
      '-connect',
      `${HOST}:${server.port}`,
      '-servername',
      'x',
      '-alpn',
      'a,b',
      '-CAfile',
      pki.files.caCert,
      '-keylogfile',
      keylogFile,
    ]);
    const pump = await server.ready;
    await pump.established();
    const [, version] = await p.waitFor(/Protocol\s+: (\S+)/);
    const [, cipher] = await p.waitFor(/Cipher\s+: (\S+)/);
    const [, alpn] = await p.waitFor(/ALPN protocol: (\S+)/);
    await p.waitFor(/Verify return code: 0 \(ok\)/);
    const ours = pump.session.handshake();
    expect(ours.version).toBe(version);
    expect(ours.cipher).toBe(opensslStandardName(cipher!));
    expect(ours.alpn).toBe(alpn);
    expect(ours.sni).toBe('x');
    expect(pump.session.clientHello()?.alpnOffers).toEqual(['a', 'b']);

    pump.send(Buffer.from('to s_client\n'));
    await p.waitFor(/to s_client/);
    p.write('to the engine\n');
    await pump.until(() => text(pump).includes('to the engine'));

    const theirs = readFileSync(keylogFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(pump.session.takeKeylog()).toEqual(theirs);
  });

  it('DTLSv1 at SECLEVEL=0', async () => {
    const server = await ourServer({
      minVersion: 'DTLSv1',
      maxVersion: 'DTLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    const p = peer('openssl', [
      's_client',
      '-dtls1',
      '-cipher',
      'DEFAULT@SECLEVEL=0',
      '-connect',
      `${HOST}:${server.port}`,
      '-CAfile',
      pki.files.caCert,
    ]);
    const pump = await server.ready;
    await pump.established();
    const [, version] = await p.waitFor(/Protocol\s+: (\S+)/);
    expect(version).toBe('DTLSv1');
    expect(pump.session.handshake().version).toBe('DTLSv1');
  });

  it('s_client -mtu 300 with a fragmented certificate flight from the engine', async () => {
    const server = await ourServer({ mtu: 300 });
    const p = peer('openssl', [
      's_client',
      '-dtls1_2',
      '-mtu',
      '300',
      '-connect',
      `${HOST}:${server.port}`,
      '-CAfile',
      pki.files.caCert,
    ]);
    const pump = await server.ready;
    await pump.established();
    await p.waitFor(/Verify return code: 0 \(ok\)/);
    expect(pump.maxOutbound).toBeLessThanOrEqual(300);
  });
});

describe('GnuTLS', () => {
  it('engine client -> gnutls-serv --udp --echo', async () => {
    const port = await freeUdpPort();
    const p = peer('gnutls-serv', [
      '--udp',
      '-p',
      String(port),
      '--echo',
      '--x509certfile',
      pki.files.ecCert,
      '--x509keyfile',
      pki.files.ecKey,
      '--priority',
      'NORMAL:-VERS-ALL:+VERS-DTLS1.2',
    ]);
    await p.waitFor(/listening on IPv4/);
    const pump = await ourClient(port);
    await pump.established();
    expect(pump.session.handshake().version).toBe('DTLSv1.2');
    expect(pump.session.handshake().cipher).toMatch(/^TLS_ECDHE_ECDSA_WITH_/);
    pump.send(Buffer.from('echo me\n'));
    await pump.until(() => text(pump) === 'echo me\n');
  });

  it.each([
    ['DTLS1.2', 'NORMAL:-VERS-ALL:+VERS-DTLS1.2', {}, 'DTLSv1.2'],
    [
      'DTLS1.0',
      'NORMAL:-VERS-ALL:+VERS-DTLS1.0',
      { minVersion: 'DTLSv1', maxVersion: 'DTLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      'DTLSv1',
    ],
  ] as const)('gnutls-cli --udp (%s) -> engine server', async (gnutlsVersion, priority, options, ours) => {
    const server = await ourServer({ ALPNProtocols: ['b'], ...options });
    const p = peer('gnutls-cli', [
      '--udp',
      '-p',
      String(server.port),
      HOST,
      '--sni-hostname',
      'x',
      '--verify-hostname',
      'localhost',
      '--alpn',
      'a',
      '--alpn',
      'b',
      '--x509cafile',
      pki.files.caCert,
      '--priority',
      priority,
    ]);
    const pump = await server.ready;
    await pump.established();
    // "- Description: (DTLS1.2-X.509)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)"; DTLS 1.0 has no signature part.
    const [, description] = await p.waitFor(/- Description: (.+)/);
    const parts = [...description!.matchAll(/\(([^)]*)\)/g)].map((m) => m[1]!);
    const version = /^DTLS[\d.]+/.exec(parts[0]!)?.[0];
    const cipher = parts.find((x) => /^(AES|CHACHA20|CAMELLIA)/.test(x));
    await p.waitFor(/Status: The certificate is trusted/);
    const info = pump.session.handshake();
    expect(version).toBe(gnutlsVersion);
    expect(info.version).toBe(ours);
    // GnuTLS names the bulk cipher only ("AES-256-GCM", "AES-256-CBC"): it must appear in ours.
    expect(info.cipher!.replace(/_/g, '-')).toContain(cipher!);
    expect(info.sni).toBe('x');
    if (gnutlsVersion === 'DTLS1.2') {
      const [, alpn] = await p.waitFor(/Application protocol: (\S+)/);
      expect(info.alpn).toBe(alpn);
    }
    pump.send(Buffer.from('to gnutls\n'));
    await p.waitFor(/to gnutls/);
    p.write('to the engine\n');
    await pump.until(() => text(pump).includes('to the engine'));
  });
});
