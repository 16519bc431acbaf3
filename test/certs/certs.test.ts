import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CA_CERT_FILE,
  CA_FILE,
  CertificateAuthority,
  CertStore,
  defaultConfDir,
  generateKey,
} from '../../src/certs/index.js';

const dir = mkdtempSync(join(tmpdir(), 'wirelayer-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `openssl verify` of a leaf against a CA, with extra checks (-verify_hostname, -verify_ip). */
function opensslVerify(caPem: string, leafPem: string, extra: string[] = []): string {
  const name = Math.random().toString(36).slice(2);
  const caFile = join(dir, `${name}-ca.pem`);
  const leafFile = join(dir, `${name}-leaf.pem`);
  writeFileSync(caFile, caPem);
  writeFileSync(leafFile, leafPem);
  return execFileSync('openssl', ['verify', '-CAfile', caFile, '-purpose', 'sslserver', ...extra, leafFile], {
    encoding: 'utf8',
  });
}

describe('CertificateAuthority', () => {
  for (const type of ['ec', 'rsa'] as const) {
    it(`${type}: a self-signed CA whose leaves openssl verifies for their name`, () => {
      const ca = CertificateAuthority.create({ type });
      expect(ca.cert.ca).toBe(true);
      expect(ca.cert.verify(ca.cert.publicKey)).toBe(true);
      expect(ca.key.asymmetricKeyType).toBe(type);
      const leaf = ca.issue('www.example.com');
      expect(leaf.cert.ca).toBe(false);
      expect(leaf.cert.checkIssued(ca.cert)).toBe(true);
      expect(leaf.cert.subjectAltName).toBe('DNS:www.example.com');
      expect(leaf.cert.checkHost('www.example.com')).toBe('www.example.com');
      expect(leaf.cert.checkPrivateKey(leaf.key)).toBe(true);
      expect(opensslVerify(ca.certPem, leaf.certPem, ['-verify_hostname', 'www.example.com'])).toMatch(
        /: OK/,
      );
    });
  }

  it('IP literals become IP SANs (v4 and v6)', () => {
    const ca = CertificateAuthority.create();
    const v4 = ca.issue('127.0.0.1');
    expect(v4.cert.subjectAltName).toBe('IP Address:127.0.0.1');
    expect(opensslVerify(ca.certPem, v4.certPem, ['-verify_ip', '127.0.0.1'])).toMatch(/: OK/);
    const v6 = ca.issue('::1');
    expect(v6.cert.checkIP('::1')).toBe('::1');
  });

  it('leaves: about a year, backdated two days, serverAuth, a long name kept whole in the SAN', () => {
    const ca = CertificateAuthority.create();
    const long = `${'a'.repeat(60)}.example.com`;
    const leaf = ca.issue(long, { keyType: 'rsa' });
    const from = Date.parse(leaf.cert.validFrom);
    const to = Date.parse(leaf.cert.validTo);
    expect(Date.now() - from).toBeGreaterThan(86_400_000);
    expect((to - from) / 86_400_000).toBeCloseTo(365, 0);
    expect(leaf.cert.subjectAltName).toBe(`DNS:${long}`);
    expect(leaf.cert.subject).toContain(`CN=${long.slice(0, 64)}`);
    expect(leaf.cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
  });

  it('load(): created once in the conf dir (key file 0600), the same CA afterwards', () => {
    const conf = join(dir, 'conf');
    const first = CertificateAuthority.load(conf);
    expect(statSync(join(conf, CA_FILE)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(conf, CA_CERT_FILE), 'utf8')).toBe(first.certPem);
    const second = CertificateAuthority.load(conf);
    expect(second.cert.fingerprint256).toBe(first.cert.fingerprint256);
    expect(second.issue('x.example').cert.checkIssued(first.cert)).toBe(true);
  });

  it('refuses a key that does not match, and a certificate that is not a CA', () => {
    const ca = CertificateAuthority.create();
    expect(() => new CertificateAuthority(ca.certPem, generateKey())).toThrow(/do not match/);
    const leaf = ca.issue('leaf.example');
    expect(() => new CertificateAuthority(leaf.certPem, leaf.key)).toThrow(/not a CA/);
  });

  it('defaultConfDir(): $WIRELAYER_CONFDIR, else ~/.wirelayer', () => {
    const saved = process.env.WIRELAYER_CONFDIR;
    try {
      process.env.WIRELAYER_CONFDIR = '/some/where';
      expect(defaultConfDir()).toBe('/some/where');
      delete process.env.WIRELAYER_CONFDIR;
      expect(defaultConfDir()).toMatch(/\.wirelayer$/);
    } finally {
      if (saved === undefined) delete process.env.WIRELAYER_CONFDIR;
      else process.env.WIRELAYER_CONFDIR = saved;
    }
  });
});

describe('CertStore', () => {
  it('one leaf per name (case-insensitive), one shared key, least recently used evicted', () => {
    const store = new CertStore(CertificateAuthority.create(), { capacity: 2 });
    const a = store.get('a.example');
    expect(store.get('A.EXAMPLE')).toBe(a);
    const b = store.get('b.example');
    expect(b.key).toBe(a.key);
    store.get('a.example'); // a is now the most recent
    store.get('c.example'); // evicts b
    expect(store.size).toBe(2);
    expect(store.has('a.example')).toBe(true);
    expect(store.has('b.example')).toBe(false);
    expect(store.get('b.example')).not.toBe(b);
  });
});
