import type { KeyObject } from 'node:crypto';
import { LruMap } from '../collections/lru-map.js';
import type { CertificateAuthority, IssuedCertificate } from './ca.js';
import { generateKey, type KeyType } from './keys.js';

/** How a CertStore issues and keeps leaves. */
export interface CertStoreOptions {
  /** Most leaves kept (least recently used go first); default 256. */
  capacity?: number;
  /** Key type of the one key all leaves share; default `ec`. */
  keyType?: KeyType;
  /** That key, if the caller has one. */
  key?: KeyObject;
}

/**
 * Leaf certificates per SNI, signed by a CA and cached with a bound (LRU). All leaves share one
 * key, as mitmproxy's do: issuing is then one signature, well under a millisecond.
 */
export class CertStore {
  readonly #ca: CertificateAuthority;
  readonly #key: KeyObject;
  readonly #leaves: LruMap<string, IssuedCertificate>;

  constructor(ca: CertificateAuthority, options: CertStoreOptions = {}) {
    this.#ca = ca;
    this.#leaves = new LruMap(Math.max(1, options.capacity ?? 256));
    this.#key = options.key ?? generateKey({ type: options.keyType ?? 'ec' });
  }

  get ca(): CertificateAuthority {
    return this.#ca;
  }

  get size(): number {
    return this.#leaves.size;
  }

  /** The leaf for `name` (DNS name or IP literal; DNS names compare case-insensitively). */
  get(name: string): IssuedCertificate {
    const key = name.toLowerCase();
    return this.#leaves.getOrSet(key, () => this.#ca.issue(key, { key: this.#key }));
  }

  has(name: string): boolean {
    return this.#leaves.has(name.toLowerCase());
  }
}
