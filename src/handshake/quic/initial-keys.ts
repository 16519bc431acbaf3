import { LruMap } from '../../collections/lru-map.js';
import { hkdfExpandLabel, hkdfExtract } from './hkdf.js';
import { derivePacketKeys, PacketProtector } from './packet-protection.js';
import { type QuicVersion, versionParameters } from './version.js';

/** Who sent a packet: the client (the peer that opened the connection) or the server. */
export type QuicSender = 'client' | 'server';

/**
 * The Initial secrets and protectors of one connection, both directions, derived from the
 * client's first Destination Connection ID (RFC 9001, 5.2) or from a Retry's Source
 * Connection ID after a Retry.
 */
export interface InitialKeys {
  readonly version: QuicVersion;
  readonly dcid: Uint8Array;
  readonly initialSecret: Uint8Array;
  readonly clientSecret: Uint8Array;
  readonly serverSecret: Uint8Array;
  /** Protects packets the client sends. */
  readonly client: PacketProtector;
  /** Protects packets the server sends. */
  readonly server: PacketProtector;
}

/** Derives both directions' Initial keys for `version` from `dcid`. */
export function deriveInitialKeys(version: QuicVersion, dcid: Uint8Array): InitialKeys {
  const initialSecret = hkdfExtract(versionParameters(version).initialSalt, dcid);
  const empty = new Uint8Array(0);
  const clientSecret = hkdfExpandLabel(initialSecret, 'client in', empty, 32);
  const serverSecret = hkdfExpandLabel(initialSecret, 'server in', empty, 32);
  return {
    version,
    dcid: new Uint8Array(dcid),
    initialSecret,
    clientSecret,
    serverSecret,
    client: new PacketProtector(derivePacketKeys(clientSecret, 'aes-128-gcm', version)),
    server: new PacketProtector(derivePacketKeys(serverSecret, 'aes-128-gcm', version)),
  };
}

/**
 * Initial keys by (version, DCID), so a caller that sees many datagrams of the same
 * connections derives each set once. Bounded: past `maxEntries` the least recently used goes.
 * Owned by the caller (a listener, a tracker); there is no global cache.
 */
export class InitialKeyCache {
  private readonly entries: LruMap<string, InitialKeys>;

  constructor(readonly maxEntries = 1024) {
    this.entries = new LruMap(maxEntries);
  }

  get size(): number {
    return this.entries.size;
  }

  get(version: QuicVersion, dcid: Uint8Array): InitialKeys {
    let id = `${version}:`;
    for (let i = 0; i < dcid.length; i++) id += String.fromCharCode(dcid[i]!);
    return this.entries.getOrSet(id, () => deriveInitialKeys(version, dcid));
  }

  clear(): void {
    this.entries.clear();
  }
}
