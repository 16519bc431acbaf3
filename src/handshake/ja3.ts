/**
 * JA3 client fingerprint (Salesforce): "SSLVersion,Ciphers,Extensions,EllipticCurves,
 * EllipticCurvePointFormats", decimal values joined by '-', GREASE left out; then its MD5.
 */
import { createHash } from 'node:crypto';
import type { ClientHello } from './tls/client-hello.js';
import { isGrease } from './versions.js';

/** A JA3 fingerprint: the string and its MD5 hash. */
export interface Ja3 {
  /** The JA3 string before hashing. */
  readonly text: string;
  /** MD5 of `text`, lower-case hex. */
  readonly hash: string;
}

/** The JA3 string of a ClientHello (legacy_version, wire order, GREASE removed). */
export function ja3String(hello: ClientHello): string {
  return [
    String(hello.legacyVersion),
    joinNonGrease(hello.cipherSuites),
    joinNonGrease(hello.extensions.map((e) => e.type)),
    joinNonGrease(hello.supportedGroups),
    hello.ecPointFormats.join('-'),
  ].join(',');
}

/** JA3 string and MD5 hash of a ClientHello. */
export function ja3(hello: ClientHello): Ja3 {
  const text = ja3String(hello);
  return { text, hash: createHash('md5').update(text).digest('hex') };
}

function joinNonGrease(values: readonly number[]): string {
  let s = '';
  for (const v of values) {
    if (isGrease(v)) continue;
    s += s === '' ? String(v) : `-${v}`;
  }
  return s;
}
