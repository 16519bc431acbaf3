/**
 * Leaf certificate generation: ours (forge builds the structure, node:crypto signs, one key
 * reused for every leaf) beside forge doing it all (its pure-JS RSA signing), in the same run.
 *
 * Run: `npm run build && node dist/bench/certs.js`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import forge from 'node-forge';
import { CertificateAuthority } from '../src/certs/index.js';
import { generateKey } from '../src/certs/keys.js';
import { formatTable, type Row } from './report.js';

export interface CertsBenchOptions {
  /** Leaves per measure (default 300 for ours, a tenth of that for forge). */
  leaves?: number;
}

function perLeafMs(n: number, issue: (i: number) => void): number {
  for (let i = 0; i < Math.min(10, n); i++) issue(-i - 1); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) issue(i);
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

/** forge alone: an RSA-2048 CA signs a leaf for an RSA key generated once (as ours reuses one). */
function forgeLeafMaker(): (i: number) => void {
  const caKeys = forge.pki.rsa.generateKeyPair(2048);
  const leafKeys = forge.pki.rsa.generateKeyPair(2048);
  const issuer = [{ shortName: 'CN', value: 'forge CA' }];
  return (i) => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = leafKeys.publicKey;
    cert.serialNumber = (0x1000 + i + 100).toString(16);
    cert.validity.notBefore = new Date(Date.now() - 86_400_000);
    cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
    cert.setSubject([{ shortName: 'CN', value: `host${i}.example` }]);
    cert.setIssuer(issuer);
    cert.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: `host${i}.example` }] }]);
    cert.sign(caKeys.privateKey, forge.md.sha256.create());
    forge.pki.certificateToPem(cert);
  };
}

export function runCertsBench(options: CertsBenchOptions = {}): Row[] {
  const n = options.leaves ?? 300;
  const forgeMs = perLeafMs(Math.max(5, Math.floor(n / 10)), forgeLeafMaker());
  const rows: Row[] = [];
  for (const type of ['ec', 'rsa'] as const) {
    const ca = CertificateAuthority.create({ type });
    const key = generateKey({ type });
    const ms = perLeafMs(n, (i) => ca.issue(`host${i}.example`, { key }));
    rows.push({
      name: `leaf certificate, ${type === 'ec' ? 'ECDSA P-256' : 'RSA-2048'} CA, key reused (vs forge RSA-2048 signing)`,
      value: ms,
      unit: 'ms/leaf',
      baseline: forgeMs,
      baselineName: 'forge',
      // a cost: above 1 means ours is faster
      ratio: forgeMs / ms,
    });
  }
  return rows;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  console.log(formatTable('Leaf certificates', runCertsBench()));
}
