/**
 * Helpers for the proxy tests: a temporary wirelayer CA directory, an addon that records the
 * hook order, long-running openssl peers that carry data through the proxy, and a Node TLS echo.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type TlsOptions, type Server as TlsServer } from 'node:tls';
import { HOOK_NAMES, type HookName } from '../../src/proxy/hooks.js';
import { opensslStandardName } from '../helpers/cipher-names.js';
import { type PeerProcess, spawnPeer } from '../helpers/peer.js';

/** A fresh configuration directory (its CA is made by the first proxy that needs it). */
export function tempConfdir(): { dir: string; caFile: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wirelayer-proxy-'));
  return {
    dir,
    caFile: join(dir, 'wirelayer-ca-cert.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** An addon that logs every hook's name, in call order (flows of one test are told apart by `filter`). */
export function hookRecorder(): { addon: Record<HookName, () => void>; log: HookName[] } {
  const log: HookName[] = [];
  const addon = {} as Record<HookName, () => void>;
  for (const name of HOOK_NAMES) addon[name] = () => void log.push(name);
  return { addon, log };
}

/** A Node TLS server that answers every chunk with `echo:` + the chunk. */
export async function nodeTlsEcho(options: TlsOptions): Promise<{ server: TlsServer; port: number }> {
  const server = createServer(options, (socket) => {
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

/** What `openssl s_client` said of its handshake. */
export interface ClientReport {
  tlsVersion: string;
  cipher: string;
  /** '' when it says none was negotiated. */
  alpn: string;
  verifyCode: number;
}

/** `openssl s_client` left running (stdin open) so data can go both ways through it. */
export async function opensslClient(
  port: number,
  args: readonly string[],
): Promise<{ peer: PeerProcess; report: ClientReport }> {
  const peer = spawnPeer('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args]);
  const [, cipherVersion, cipher] = await peer.waitFor(/New, (\S+), Cipher is (\S+)/);
  const version = cipherVersion === 'TLSv1.3' ? cipherVersion : (await peer.waitFor(/Protocol\s+: (\S+)/))[1];
  await peer.waitFor(/ALPN protocol: \S+|No ALPN negotiated/);
  const [, code] = await peer.waitFor(/Verify return code: (\d+)/);
  const out = peer.output();
  return {
    peer,
    report: {
      tlsVersion: version!,
      cipher: opensslStandardName(cipher!),
      alpn: /ALPN protocol: (\S+)/.exec(out)?.[1] ?? '',
      verifyCode: Number(code),
    },
  };
}
