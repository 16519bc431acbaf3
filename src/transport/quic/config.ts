/**
 * quiche configurations from wirelayer's options (named as in `node:tls`): certificates from
 * memory, ALPN, verification, flow-control windows, DATAGRAM frames, idle timeout.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { LruMap } from '../../collections/lru-map.js';
import type { QuicheConfig } from './binding.js';
import { quiche } from './binding.js';

/** Largest UDP payload we send (a safe path MTU); quiche's default is 1200. */
export const MAX_SEND_UDP_PAYLOAD = 1350;
/** Largest UDP payload we accept. */
export const MAX_RECV_UDP_PAYLOAD = 65527;
/** The ALPN a client offers when none is configured (QUIC requires one). */
export const DEFAULT_ALPN = 'wirelayer';
/** Idle timeout when none is given, milliseconds. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/** The transport parameters and engine settings both ends use. */
export interface EngineSettings {
  /** ALPN offered (client) or accepted in preference order (server). */
  alpn: readonly string[];
  /** 0 = no idle timeout. */
  idleTimeoutMs: number;
  /** active_connection_id_limit we advertise: how many of the peer's IDs we store. */
  activeCidLimit: number;
  /** Whether NSS key log lines are produced. */
  keylog: boolean;
  /** Send disable_active_migration (a server whose IDs a balancer cannot route). */
  disableActiveMigration?: boolean;
}

/** The windows and limits of every session; shared with the raw-binding benchmark baseline. */
export function applyEngineSettings(config: QuicheConfig, s: EngineSettings): QuicheConfig {
  config.setApplicationProtos([...s.alpn]);
  config.setMaxIdleTimeout(s.idleTimeoutMs);
  config.setMaxRecvUdpPayloadSize(MAX_RECV_UDP_PAYLOAD);
  config.setMaxSendUdpPayloadSize(MAX_SEND_UDP_PAYLOAD);
  config.setInitialMaxData(16 * 1024 * 1024);
  config.setInitialMaxStreamDataBidiLocal(4 * 1024 * 1024);
  config.setInitialMaxStreamDataBidiRemote(4 * 1024 * 1024);
  config.setInitialMaxStreamDataUni(4 * 1024 * 1024);
  config.setInitialMaxStreamsBidi(128);
  config.setInitialMaxStreamsUni(128);
  config.setActiveConnectionIdLimit(s.activeCidLimit);
  config.enableDgram(true, 1024, 1024);
  if (s.disableActiveMigration === true) config.setDisableActiveMigration(true);
  if (s.keylog) config.logKeys();
  return config;
}

/** PEM text(s) as one buffer. */
export function pemBytes(pem: string | Buffer | readonly (string | Buffer)[]): Buffer {
  const list = Array.isArray(pem) ? pem : [pem as string | Buffer];
  return Buffer.concat(list.flatMap((p) => [Buffer.from(p), Buffer.from('\n')]));
}

export interface ClientConfigOptions extends EngineSettings {
  verify: boolean;
  ca?: string | Buffer | readonly (string | Buffer)[];
}

const clientConfigs = new LruMap<string, QuicheConfig>(32);

/**
 * A client configuration: verification against `ca`, or Node's bundled roots when none.
 * Kept per (settings, CA): loading the bundled roots costs milliseconds, a handshake less.
 */
export function clientConfig(o: ClientConfigOptions): QuicheConfig {
  const ca = o.verify ? pemBytes(o.ca ?? rootCertificates) : null;
  const key = createHash('sha256')
    .update(`${o.alpn.join('\0')}\0${o.idleTimeoutMs}\0${o.activeCidLimit}\0${o.keylog}\0${o.verify}\0`)
    .update(ca ?? '')
    .digest('base64');
  return clientConfigs.getOrSet(key, () =>
    applyEngineSettings(quiche().Config.withBoringSslCtx(o.verify, false, ca, null, null, null), o),
  );
}

/** A certificate chain (leaf first) and its key, PEM. */
export interface QuicIdentity {
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * Server configurations, one per (identity, ALPN list, settings), built on first use and
 * kept (a BoringSSL context per identity is costly to build per handshake). Bounded.
 */
export class ServerConfigCache {
  readonly #configs: LruMap<string, QuicheConfig>;
  readonly #leaves: LruMap<string | Buffer, X509Certificate | null>;

  /** The leaf certificate of an identity, parsed once (the model's `mitmcert`). */
  leaf(identity: QuicIdentity): X509Certificate | null {
    return this.#leaves.getOrSet(identity.cert, () => {
      try {
        return new X509Certificate(identity.cert);
      } catch {
        return null;
      }
    });
  }

  constructor(readonly max = 64) {
    this.#configs = new LruMap(max);
    this.#leaves = new LruMap(max);
  }

  get(identity: QuicIdentity, settings: EngineSettings): QuicheConfig {
    const key = createHash('sha256')
      .update(identity.cert)
      .update('\0')
      .update(identity.key)
      .update(
        `\0${settings.alpn.join('\0')}\0${settings.idleTimeoutMs}\0${settings.activeCidLimit}\0${settings.keylog}\0${settings.disableActiveMigration === true}`,
      )
      .digest('base64');
    return this.#configs.getOrSet(key, () =>
      applyEngineSettings(
        quiche().Config.withBoringSslCtx(
          false,
          false,
          null,
          [Buffer.from(identity.key)],
          [Buffer.from(identity.cert)],
          null,
        ),
        settings,
      ),
    );
  }
}
