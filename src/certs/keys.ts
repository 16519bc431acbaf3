import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** Key types for generated certificates: ECDSA P-256 (default, fast) or RSA. */
export type KeyType = 'ec' | 'rsa';

export interface KeyOptions {
  /** Default `ec` (ECDSA P-256). */
  type?: KeyType;
  /** RSA modulus length; default 2048. */
  rsaBits?: number;
}

/** A fresh private key from node:crypto. */
export function generateKey(options: KeyOptions = {}): KeyObject {
  const { privateKey } =
    (options.type ?? 'ec') === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: options.rsaBits ?? 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey;
}

/** A private key from PEM (or a KeyObject as is). */
export function privateKeyFrom(key: KeyObject | string | Buffer): KeyObject {
  return typeof key === 'string' || Buffer.isBuffer(key) ? createPrivateKey(key) : key;
}

/** The key's PKCS#8 PEM. */
export function keyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The DER SubjectPublicKeyInfo of a private (or public) key. */
export function spkiDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}
