/**
 * The certificate of a DTLS listener given none: self-signed, made once per process at the first
 * such listener. The key comes from node:crypto; the X.509 structure and its one signature from
 * node-forge (a single RSA signature in JavaScript is a few milliseconds, once).
 *
 * When wirelayer's `certs/` (CA and per-SNI leaves) lands, listeners should take a leaf from it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface PemCertificate {
  readonly cert: string;
  readonly key: string;
}

let cached: PemCertificate | null = null;

/** A self-signed RSA-2048 certificate for `localhost`, 127.0.0.1 and ::1, valid a year. */
export function selfSignedCertificate(): PemCertificate {
  if (cached !== null) return cached;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  // a positive 16-byte serial: clear the top bit
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  const name = [
    { name: 'commonName', value: 'localhost' },
    { name: 'organizationName', value: 'wirelayer (self-signed)' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
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
  cert.sign(forge.pki.privateKeyFromPem(key), forge.md.sha256.create());
  cached = { cert: forge.pki.certificateToPem(cert), key };
  return cached;
}
