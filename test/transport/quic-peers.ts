/**
 * ngtcp2's GnuTLS examples (`gtlsclient`, `gtlsserver`, ngtcp2 0.12) as real QUIC peers on
 * loopback. They speak HTTP/3 (ALPN h3) and print what they negotiated.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath } from '../helpers/certs.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { freeUdpPort } from '../helpers/ports.js';

/** GnuTLS priority strings that force one TLS 1.3 cipher suite, and the IANA name of each. */
export const FORCED_CIPHERS = [
  { gnutls: 'AES-128-GCM', iana: 'TLS_AES_128_GCM_SHA256' },
  { gnutls: 'AES-256-GCM', iana: 'TLS_AES_256_GCM_SHA384' },
  { gnutls: 'CHACHA20-POLY1305', iana: 'TLS_CHACHA20_POLY1305_SHA256' },
] as const;

export const cipherPriority = (gnutls: string): string =>
  `NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+${gnutls}`;

/** Only P-256: a client that shares an x25519 key (quiche does) gets a HelloRetryRequest. */
export const HRR_GROUPS = '-GROUP-ALL:+GROUP-SECP256R1';

/** GnuTLS's names for the TLS 1.3 suites, as ngtcp2 prints them, to IANA. */
const GNUTLS_TO_IANA: Readonly<Record<string, string>> = Object.fromEntries(
  FORCED_CIPHERS.map((c) => [c.gnutls, c.iana]),
);

/** What ngtcp2 printed about its handshake. */
export interface Ngtcp2Report {
  cipher: string;
  alpn: string | null;
  version: number;
}

export async function ngtcp2Report(peer: PeerProcess): Promise<Ngtcp2Report> {
  const [, gnutls] = await peer.waitFor(/Negotiated cipher suite is (\S+)/);
  const alpn = peer.output().match(/Negotiated ALPN is (\S+)/)?.[1] ?? null;
  const version = peer.output().match(/negotiated version is 0x([0-9a-f]+)/)?.[1];
  return {
    cipher: GNUTLS_TO_IANA[gnutls!] ?? `unknown GnuTLS suite ${gnutls}`,
    alpn,
    version: version ? Number.parseInt(version, 16) : 0,
  };
}

/**
 * Resolves once something is bound to UDP port `port`, asked of the kernel with `ss` (a
 * netlink dump; reading /proc/net/udp in pieces can miss sockets while others come and go).
 */
export async function waitForUdpPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const listing = execFileSync('ss', ['-Hunl', `sport = :${port}`], { encoding: 'utf8' });
    if (listing.trim().length > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing bound to UDP port ${port} after ${timeoutMs} ms`);
}

export interface GtlsServer {
  port: number;
  peer: PeerProcess;
}

/** `gtlsserver` with the EC fixture certificate, on a free port. */
export async function startGtlsServer(host: string, extra: readonly string[] = []): Promise<GtlsServer> {
  const port = await freeUdpPort(host);
  const peer = spawnPeer('gtlsserver', [
    '--no-http-dump',
    '--no-quic-dump',
    '--timeout=5s',
    ...extra,
    host,
    String(port),
    fixturePath('ec-key.pem'),
    fixturePath('ec-cert.pem'),
  ]);
  try {
    await waitForUdpPort(port);
  } catch (e) {
    await peer.stop();
    throw new Error(`${(e as Error).message}; gtlsserver said: ${peer.output().slice(-500)}`);
  }
  return { port, peer };
}

/** `gtlsclient` against host:port (an IP literal: it sends the SNI `localhost`), asking for `path`. */
export function runGtlsClient(
  host: string,
  port: number,
  extra: readonly string[] = [],
  path = '/',
): PeerProcess {
  const authority = host.includes(':') ? `[${host}]` : host;
  return spawnPeer('gtlsclient', [
    '--no-http-dump',
    '--no-quic-dump',
    '--timeout=5s',
    ...extra,
    host,
    String(port),
    `https://${authority}:${port}${path}`,
  ]);
}

/** A file of random bytes for `gtlsserver --htdocs` to serve, and a folder for `gtlsclient` to download it to. */
export function servedFile(
  root: string,
  name: string,
  size: number,
): { htdocs: string; download: string; body: Buffer; downloaded(): Buffer } {
  const htdocs = join(root, `htdocs-${name}`);
  const download = join(root, `download-${name}`);
  mkdirSync(htdocs, { recursive: true });
  mkdirSync(download, { recursive: true });
  const body = randomBytes(size);
  writeFileSync(join(htdocs, 'file.bin'), body);
  return { htdocs, download, body, downloaded: () => readFileSync(join(download, 'file.bin')) };
}

/** `gtlsclient` fetching /file.bin over HTTP/3 into `download`, exiting once it has it. */
export const fetchFile = (port: number, download: string, extra: readonly string[] = []): PeerProcess =>
  runGtlsClient(
    '127.0.0.1',
    port,
    [`--download=${download}`, '--exit-on-all-streams-close', ...extra],
    '/file.bin',
  );

/** What gtlsclient's QUIC dump says the server gave it: the IDs and reset tokens it issued. */
export interface Ngtcp2ServerIds {
  /** SCIDs of the server's long headers (Retry, Initial, Handshake). */
  longScids: Set<string>;
  retryScid: string | null;
  /** The stateless_reset_token transport parameter, if sent. */
  paramToken: string | null;
  disableActiveMigration: string | null;
  /** NEW_CONNECTION_ID frames received: ID and token. */
  spares: { cid: string; token: string }[];
}

export function ngtcp2ServerIds(output: string): Ngtcp2ServerIds {
  const view: Ngtcp2ServerIds = {
    longScids: new Set(),
    retryScid: null,
    paramToken: null,
    disableActiveMigration: null,
    spares: [],
  };
  for (const line of output.split('\n')) {
    const long = / pkt rx .* scid=0x([0-9a-f]+) .*type=(\w+)/.exec(line);
    if (long) {
      view.longScids.add(long[1]!);
      if (long[2] === 'Retry') view.retryScid = long[1]!;
    }
    const param =
      /cry remote transport_parameters (stateless_reset_token|disable_active_migration)=(?:0x)?([0-9a-f]+)/.exec(
        line,
      );
    if (param?.[1] === 'stateless_reset_token') view.paramToken = param[2]!;
    if (param?.[1] === 'disable_active_migration') view.disableActiveMigration = param[2]!;
    const spare =
      / frm rx .*NEW_CONNECTION_ID.* cid=0x([0-9a-f]+) .*stateless_reset_token=0x([0-9a-f]+)/.exec(line);
    if (spare) view.spares.push({ cid: spare[1]!, token: spare[2]! });
  }
  return view;
}

/** `gtlsclient` with its QUIC dump on (packets, frames, transport parameters), for `ngtcp2ServerIds`. */
export function gtlsclientDumping(host: string, port: number): PeerProcess {
  const authority = host.includes(':') ? `[${host}]` : host;
  return spawnPeer('gtlsclient', [
    '--no-http-dump',
    '--timeout=5s',
    host,
    String(port),
    `https://${authority}:${port}/`,
  ]);
}
