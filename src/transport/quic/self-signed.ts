/**
 * A listener started without `cert`/`key` makes its own self-signed certificate (the
 * command-line contract), once per process: an RSA key from `node:crypto`, the X.509 built
 * and signed with node-forge. Until the certs module lands (per-SNI leaves signed by the
 * wirelayer CA), this is what such a listener presents.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import type { QuicIdentity } from './config.js';

let cached: QuicIdentity | null = null;

/** A self-signed identity for `localhost`, 127.0.0.1 and ::1, valid for a year. */
export function selfSignedIdentity(): QuicIdentity {
  if (cached) return cached;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // positive serial: clear the top bit
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  cert.serialNumber = serial.toString('hex');
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now.getTime() + 365 * 24 * 60 * 60 * 1000);
  const subject = [{ name: 'commonName', value: 'wirelayer self-signed' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
  ]);
  cert.sign(key, forge.md.sha256.create());
  cached = { cert: forge.pki.certificateToPem(cert), key: keyPem };
  return cached;
}
