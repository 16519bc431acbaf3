/**
 * Real DTLS peers for the driver tests: openssl s_server / s_client 3.0 and gnutls-serv /
 * gnutls-cli 3.7 on loopback, started by pid and stopped by pid, with what each reports parsed
 * into the model's terms (IANA cipher names from openssl's own mapping, test/helpers/cipher-names.ts).
 */
import { execFileSync } from 'node:child_process';
import type { ExpectedHandshake } from '../compliance/suite.js';
import { fixturePath } from '../helpers/certs.js';
import { opensslStandardName } from '../helpers/cipher-names.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { freeUdpPort } from '../helpers/ports.js';

export const EC_CERT = fixturePath('ec-cert.pem');
export const EC_KEY = fixturePath('ec-key.pem');
export const RSA_CERT = fixturePath('rsa-cert.pem');
export const RSA_KEY = fixturePath('rsa-key.pem');

/** Resolves once some socket is bound to UDP `port` (asks `ss`, from iproute2). */
export async function waitForUdpBound(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = execFileSync('ss', ['-Hlun', `sport = :${port}`], { encoding: 'utf8' });
    if (out.trim() !== '') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing bound UDP port ${port} after ${timeoutMs} ms`);
}

const hostArg = (host: string, port: number): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

export interface StartedPeer {
  port: number;
  peer: PeerProcess;
  stop(): Promise<void>;
}

/** `openssl s_server` on a free UDP port (not -brief when ALPN is asked: then it prints the offers). */
export async function sServer(
  host: string,
  args: readonly string[],
  cert = EC_CERT,
  key = EC_KEY,
): Promise<StartedPeer> {
  const port = await freeUdpPort(host);
  const peer = spawnPeer('openssl', [
    's_server',
    '-accept',
    hostArg(host, port),
    '-cert',
    cert,
    '-key',
    key,
    ...args,
  ]);
  // -brief prints nothing before a handshake: wait for the socket itself
  try {
    if (args.includes('-brief')) await waitForUdpBound(port);
    else await peer.waitFor(/ACCEPT/);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { port, peer, stop: () => peer.stop() };
}

/** What s_server printed about the handshake (it needs `-brief` for "Protocol version"). */
export async function sServerReport(peer: PeerProcess): Promise<ExpectedHandshake> {
  const [, version] = await peer.waitFor(/Protocol version: (\S+)/);
  const [, cipher] = await peer.waitFor(/Ciphersuite: (\S+)/);
  return { tlsVersion: version as ExpectedHandshake['tlsVersion'], cipher: opensslStandardName(cipher!) };
}

/** Runs `openssl s_client` to `host:port` until it reports its handshake; resolves with it. */
export async function sClient(
  host: string,
  port: number,
  args: readonly string[],
): Promise<{ report: ExpectedHandshake; peer: PeerProcess }> {
  const peer = spawnPeer('openssl', [
    's_client',
    '-connect',
    hostArg(host, port),
    '-CAfile',
    EC_CERT,
    ...args,
  ]);
  try {
    const [, version] = await peer.waitFor(/Protocol\s*: (\S+)/);
    const [, cipher] = await peer.waitFor(/Cipher\s*: (\S+)/);
    await peer.waitFor(/Verify return code: 0 \(ok\)/);
    const alpn = /ALPN protocol: (\S+)/.exec(peer.output())?.[1];
    const noAlpn = /No ALPN negotiated/.test(peer.output());
    return {
      peer,
      report: {
        tlsVersion: version as ExpectedHandshake['tlsVersion'],
        cipher: opensslStandardName(cipher!),
        ...(alpn !== undefined ? { alpn } : noAlpn ? { alpn: '' } : {}),
      },
    };
  } catch (err) {
    await peer.stop();
    throw err;
  }
}

/** `gnutls-serv --udp --echo` on a free port. */
export async function gnutlsServ(
  host: string,
  priority: string,
  cert = EC_CERT,
  key = EC_KEY,
  extra: readonly string[] = [],
): Promise<StartedPeer> {
  const port = await freeUdpPort(host);
  const peer = spawnPeer('gnutls-serv', [
    '--udp',
    '-p',
    String(port),
    '--echo',
    '--x509certfile',
    cert,
    '--x509keyfile',
    key,
    '--priority',
    priority,
    ...extra,
  ]);
  try {
    await peer.waitFor(/listening on IPv/);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return { port, peer, stop: () => peer.stop() };
}

/**
 * gnutls-cli's "- Description: (DTLS1.2-X.509)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(AES-256-GCM)":
 * the version in our terms and the bulk cipher (GnuTLS names no suite: ours must contain it).
 */
export function gnutlsDescription(
  output: string,
): { tlsVersion: ExpectedHandshake['tlsVersion']; bulk: string } | null {
  const m = /- Description: (.+)/.exec(output);
  if (!m) return null;
  const parts = [...m[1]!.matchAll(/\(([^)]*)\)/g)].map((x) => x[1]!);
  const version = /^DTLS([\d.]+)/.exec(parts[0]!)?.[1];
  const bulk = parts.find((x) => /^(AES|CHACHA20|CAMELLIA)/.test(x)) ?? '';
  return { tlsVersion: version === '1.0' ? 'DTLSv1' : version === '1.2' ? 'DTLSv1.2' : null, bulk };
}
