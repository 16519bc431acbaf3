/**
 * Test PKI made with the openssl CLI into a temp dir (Node cannot make certificates):
 * a CA, an RSA and an ECDSA leaf for localhost / 127.0.0.1 signed by it, and an unrelated CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly otherCaCert: string;
  /** RSA 2048 leaf, CN=localhost, SAN DNS:localhost, DNS:x, IP:127.0.0.1. */
  readonly rsaCert: string;
  readonly rsaKey: string;
  /** ECDSA P-256 leaf with the same names. */
  readonly ecCert: string;
  readonly ecKey: string;
  /** Paths of the same, for the openssl / gnutls command lines. */
  readonly files: Readonly<Record<'caCert' | 'rsaCert' | 'rsaKey' | 'ecCert' | 'ecKey', string>>;
  cleanup(): void;
}

const run = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
};

function makeCa(dir: string, name: string): void {
  run(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=wirelayer test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function makeLeaf(dir: string, name: string, keyArgs: string[]): void {
  run(dir, [
    'req',
    '-new',
    '-newkey',
    ...keyArgs,
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    '/CN=localhost',
  ]);
  writeFileSync(
    join(dir, `${name}.ext`),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' +
      'subjectAltName=DNS:localhost,DNS:x,IP:127.0.0.1\n',
  );
  run(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'wirelayer-dtls-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'rsa', ['rsa:2048']);
  makeLeaf(dir, 'ec', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caCert: read('ca.pem'),
    otherCaCert: read('other-ca.pem'),
    rsaCert: read('rsa.pem'),
    rsaKey: read('rsa.key'),
    ecCert: read('ec.pem'),
    ecKey: read('ec.key'),
    files: {
      caCert: join(dir, 'ca.pem'),
      rsaCert: join(dir, 'rsa.pem'),
      rsaKey: join(dir, 'rsa.key'),
      ecCert: join(dir, 'ec.pem'),
      ecKey: join(dir, 'ec.key'),
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
