/**
 * Real TLS peers for the interop and compliance tests: openssl s_server/s_client, gnutls-serv/
 * gnutls-cli, each run on loopback with its own report of the handshake parsed from its output.
 */
import { opensslStandardName } from '../helpers/cipher-names.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';
import { freeTcpPort, waitForTcpPort } from '../helpers/ports.js';

/** What a peer says it negotiated. `cipher` is mapped to the IANA name. */
export interface PeerReport {
  tlsVersion: string | null;
  cipher: string | null;
  /** null: the peer did not say. '' : it said none was negotiated. */
  alpn: string | null;
  sni?: string | null;
  output: string;
}

const bracket = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** gnutls version names (TLS1.2) as TlsVersion names (TLSv1.2). */
function gnutlsVersion(v: string): string {
  if (v === 'TLS1.0') return 'TLSv1';
  return v.replace(/^TLS/, 'TLSv');
}

/** gnutls cipher parts ("ECDHE-RSA", "AES-128-GCM", "AEAD" / "SHA1") spelled as the IANA name, by string alone. */
function gnutlsCipher(version: string, kx: string, cipher: string, mac: string): string {
  const bulk = cipher
    .replace(/^AES-(\d+)-(GCM|CBC)$/, 'AES_$1_$2')
    .replace('CHACHA20-POLY1305', 'CHACHA20_POLY1305');
  if (version === 'TLS1.3') {
    const hash = bulk === 'AES_256_GCM' ? 'SHA384' : 'SHA256';
    return `TLS_${bulk}_${hash}`;
  }
  const kex = kx.replace('-', '_');
  const hash =
    mac === 'AEAD' ? (bulk.includes('256_GCM') ? 'SHA384' : 'SHA256') : mac === 'SHA1' ? 'SHA' : mac;
  return `TLS_${kex}_WITH_${bulk}_${hash}`;
}

/**
 * Parses gnutls' report: gnutls-serv's "- Version:", "- Key Exchange:", "- Cipher:", "- MAC:"
 * lines, else gnutls-cli's "- Description: (TLS1.2-X.509)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)".
 */
export function parseGnutlsReport(output: string): PeerReport {
  const alpn = /- Application protocol: (\S+)/.exec(output)?.[1] ?? '';
  const sni = /- Given server name\[1\]: (\S+)/.exec(output)?.[1] ?? null;
  const version = /- Version: (\S+)/.exec(output)?.[1];
  if (version) {
    const kx = /- Key Exchange: (\S+)/.exec(output)?.[1] ?? '';
    const cipher = /- Cipher: (\S+)/.exec(output)?.[1] ?? '';
    const mac = /- MAC: (\S+)/.exec(output)?.[1] ?? '';
    return {
      tlsVersion: gnutlsVersion(version),
      cipher: gnutlsCipher(version, kx, cipher, mac),
      alpn,
      sni,
      output,
    };
  }
  const d =
    /- Description: \((TLS1\.\d)-X\.509\)-\(([\w-]+)\)-\(([\w-]+)\)-\(([\w-]+)\)(?:-\(([\w-]+)\))?/.exec(
      output,
    );
  if (!d) return { tlsVersion: null, cipher: null, alpn: null, sni, output };
  const [, v, kxGroup, sig, cipher, mac] = d as unknown as [string, string, string, string, string, string?];
  const auth = sig.startsWith('ECDSA') ? 'ECDSA' : 'RSA';
  const kxName = kxGroup.split('-')[0]!;
  const kx = kxName === 'RSA' ? 'RSA' : `${kxName}-${auth}`;
  return {
    tlsVersion: gnutlsVersion(v),
    cipher: gnutlsCipher(v, kx, cipher, mac ?? 'AEAD'),
    alpn,
    sni,
    output,
  };
}

export interface OpensslServer {
  port: number;
  peer: PeerProcess;
  /** Waits for the peer's report of the (first) handshake. */
  report(): Promise<PeerReport>;
  stop(): Promise<void>;
}

/**
 * `openssl s_server` on host. With `brief` it reports
 * "Protocol version:" and "Ciphersuite:"; without, "CIPHER is" and the ALPN it selected.
 */
export async function startOpensslServer(
  host: string,
  args: readonly string[],
  { brief = true }: { brief?: boolean } = {},
): Promise<OpensslServer> {
  // -brief hides the "ACCEPT host:port" line, so it gets a free port and a readiness probe
  const chosen = brief ? await freeTcpPort(host) : 0;
  const peer = spawnPeer('openssl', [
    's_server',
    '-accept',
    `${bracket(host)}:${chosen}`,
    ...(brief ? ['-brief'] : []),
    ...args,
  ]);
  let port = chosen;
  if (brief) await waitForTcpPort(host, chosen);
  else port = Number((await peer.waitFor(/ACCEPT \S+:(\d+)/))[1]);
  return {
    port,
    peer,
    async report() {
      if (brief) {
        const [, version] = await peer.waitFor(/Protocol version: (\S+)/);
        const [, cipher] = await peer.waitFor(/Ciphersuite: (\S+)/);
        return {
          tlsVersion: version!,
          cipher: opensslStandardName(cipher!),
          alpn: null,
          output: peer.output(),
        };
      }
      const [, cipher] = await peer.waitFor(/CIPHER is (\S+)/);
      const alpn = /ALPN protocols selected: (\S+)/.exec(peer.output())?.[1] ?? '';
      return { tlsVersion: null, cipher: opensslStandardName(cipher!), alpn, output: peer.output() };
    },
    stop: () => peer.stop(),
  };
}

/**
 * Runs `openssl s_client` against host:port until the handshake is reported, then stops it.
 * Reads "New, ..., Cipher is", "Protocol  :" and "ALPN protocol:" / "No ALPN negotiated".
 */
export async function runOpensslClient(
  host: string,
  port: number,
  args: readonly string[],
): Promise<PeerReport> {
  const peer = spawnPeer('openssl', ['s_client', '-connect', `${bracket(host)}:${port}`, ...args]);
  try {
    // "New, TLSv1.2, Cipher is X" names the cipher's version, not the protocol's: the protocol
    // is in the SSL-Session block, which a TLS 1.3 client prints only once it got a ticket
    const [, cipherVersion, cipher] = await peer.waitFor(/New, (\S+), Cipher is (\S+)/);
    const version =
      cipherVersion === 'TLSv1.3' ? cipherVersion : (await peer.waitFor(/Protocol\s+: (\S+)/))[1];
    await peer.waitFor(/ALPN|Verify return code/);
    const out = peer.output();
    const alpn = /ALPN protocol: (\S+)/.exec(out)?.[1] ?? (/No ALPN negotiated/.test(out) ? '' : null);
    return { tlsVersion: version!, cipher: opensslStandardName(cipher!), alpn, output: out };
  } finally {
    await peer.stop();
  }
}

/** Runs `gnutls-cli` against host:port until it reports the session, then stops it. */
export async function runGnutlsClient(
  host: string,
  port: number,
  args: readonly string[],
): Promise<PeerReport> {
  const peer = spawnPeer('gnutls-cli', ['-p', String(port), ...args, host]);
  try {
    await peer.waitFor(/- Handshake was completed|\*\*\* Fatal error/);
    return parseGnutlsReport(peer.output());
  } finally {
    await peer.stop();
  }
}

export interface GnutlsServer {
  port: number;
  peer: PeerProcess;
  stop(): Promise<void>;
}

/** `gnutls-serv` on a free port (it cannot bind port 0), echoing. */
export async function startGnutlsServer(host: string, args: readonly string[]): Promise<GnutlsServer> {
  const port = await freeTcpPort(host);
  const peer = spawnPeer('gnutls-serv', ['-p', String(port), '--echo', ...args]);
  await waitForTcpPort(host, port);
  return { port, peer, stop: () => peer.stop() };
}
