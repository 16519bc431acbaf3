import { createPrivateKey, generateKeyPair, type KeyObject, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generateKey, type KeyOptions, keyToPem, spkiDer } from './keys.js';
import { buildCertificate, type NameAttribute } from './x509.js';

/** Where the CA lives unless told otherwise: `$WIRELAYER_CONFDIR`, else `~/.wirelayer`. */
export function defaultConfDir(): string {
  return process.env.WIRELAYER_CONFDIR || join(homedir(), '.wirelayer');
}

/** File names in the configuration directory (as mitmproxy's `mitmproxy-ca.pem` pair). */
export const CA_FILE = 'wirelayer-ca.pem';
export const CA_CERT_FILE = 'wirelayer-ca-cert.pem';

const DAY_MS = 86_400_000;
/** Leaves are valid from two days back (clock skew) ... */
const LEAF_BACKDATE_MS = 2 * DAY_MS;
/** ... for about a year (Apple rejects TLS leaves valid over 825 days). */
const LEAF_LIFETIME_MS = 365 * DAY_MS;
const CA_LIFETIME_MS = 10 * 365 * DAY_MS;

/** `CertificateAuthority.open` calls in flight, by directory. */
const openings = new Map<string, Promise<CertificateAuthority>>();

/** A certificate and its key, PEM (what `node:tls` takes) and parsed. */
export interface IssuedCertificate {
  cert: X509Certificate;
  certPem: string;
  key: KeyObject;
  keyPem: string;
}

export interface IssueOptions {
  /** The leaf's key; a fresh one (of `keyType`) otherwise. Reusing one key is what makes issuing fast. */
  key?: KeyObject;
  keyType?: KeyOptions['type'];
  /** Extra subjectAltName entries beside the name itself. */
  altNames?: readonly string[];
  organization?: string;
}

/**
 * The wirelayer certificate authority: signs leaf certificates for the names clients ask for
 * (the `mitmcert`s). Created once and kept as PEM in a configuration directory.
 */
export class CertificateAuthority {
  readonly cert: X509Certificate;
  readonly certPem: string;
  readonly key: KeyObject;
  readonly #spki: Buffer;
  readonly #subject: NameAttribute[];

  constructor(certPem: string, key: KeyObject | string) {
    this.certPem = certPem;
    this.cert = new X509Certificate(certPem);
    this.key = typeof key === 'string' ? createPrivateKey(key) : key;
    if (!this.cert.checkPrivateKey(this.key)) throw new Error('CA certificate and key do not match');
    if (!this.cert.ca) throw new Error('not a CA certificate (basicConstraints CA:TRUE missing)');
    this.#spki = spkiDer(this.key);
    this.#subject = parseSubject(this.cert.subject);
  }

  /** A new self-signed CA, in memory. */
  static create(
    options: KeyOptions & { commonName?: string; organization?: string } = {},
  ): CertificateAuthority {
    return CertificateAuthority.#selfSigned(generateKey(options), options);
  }

  static #selfSigned(
    key: KeyObject,
    options: { commonName?: string; organization?: string },
  ): CertificateAuthority {
    const name: NameAttribute[] = [
      { shortName: 'CN', value: options.commonName ?? 'wirelayer' },
      { shortName: 'O', value: options.organization ?? 'wirelayer' },
    ];
    const notBefore = new Date(Date.now() - LEAF_BACKDATE_MS);
    const { pem } = buildCertificate({
      subject: name,
      publicKey: key,
      signingKey: key,
      notBefore,
      notAfter: new Date(notBefore.getTime() + CA_LIFETIME_MS),
      ca: true,
    });
    return new CertificateAuthority(pem, key);
  }

  /**
   * The CA of a configuration directory (default `defaultConfDir()`): loaded from `wirelayer-ca.pem`
   * (key and certificate), or created and written there (key file mode 0600) the first time.
   */
  static load(dir: string = defaultConfDir(), options: KeyOptions = {}): CertificateAuthority {
    const file = join(dir, CA_FILE);
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text);
      if (!cert) throw new Error(`${file}: no certificate`);
      return new CertificateAuthority(cert[0], createPrivateKey(text));
    }
    const ca = CertificateAuthority.create(options);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, keyToPem(ca.key) + ca.certPem, { mode: 0o600 });
    chmodSync(file, 0o600);
    writeFileSync(join(dir, CA_CERT_FILE), ca.certPem);
    return ca;
  }

  /**
   * As `load`, without blocking the event loop: the file read, and the first time the key
   * generated (an RSA key takes a while) and written, off the main thread. Listeners without a
   * certificate of their own call this in `listen()`.
   */
  static open(dir: string = defaultConfDir(), options: KeyOptions = {}): Promise<CertificateAuthority> {
    // listeners opening the same directory at once share one read (or one creation)
    let opening = openings.get(dir);
    if (opening === undefined) {
      opening = CertificateAuthority.#open(dir, options).finally(() => openings.delete(dir));
      openings.set(dir, opening);
    }
    return opening;
  }

  static async #open(dir: string, options: KeyOptions): Promise<CertificateAuthority> {
    const file = join(dir, CA_FILE);
    let text: string | null = null;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== null) {
      const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text);
      if (!cert) throw new Error(`${file}: no certificate`);
      return new CertificateAuthority(cert[0], createPrivateKey(text));
    }
    const key = await new Promise<KeyObject>((resolve, reject) => {
      const done = (err: Error | null, _public: KeyObject, privateKey: KeyObject): void =>
        err ? reject(err) : resolve(privateKey);
      if ((options.type ?? 'ec') === 'rsa')
        generateKeyPair('rsa', { modulusLength: options.rsaBits ?? 2048 }, done);
      else generateKeyPair('ec', { namedCurve: 'prime256v1' }, done);
    });
    const ca = CertificateAuthority.#selfSigned(key, {});
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      // exclusive: another process that created it meanwhile wins, and its CA is the one
      await writeFile(file, keyToPem(ca.key) + ca.certPem, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return CertificateAuthority.#open(dir, options);
      throw e;
    }
    await chmod(file, 0o600);
    await writeFile(join(dir, CA_CERT_FILE), ca.certPem);
    return ca;
  }

  /** A leaf for `name` (a DNS name or an IP literal, which becomes the SAN), signed by this CA. */
  issue(name: string, options: IssueOptions = {}): IssuedCertificate {
    const key = options.key ?? generateKey({ type: options.keyType ?? 'ec' });
    const notBefore = new Date(Date.now() - LEAF_BACKDATE_MS);
    const altNames = [name, ...(options.altNames ?? []).filter((n) => n !== name)];
    const { cert, pem } = buildCertificate({
      // CN is limited to 64 characters (RFC 5280 ub-common-name); the SAN carries the full name
      subject: [
        { shortName: 'CN', value: name.slice(0, 64) },
        { shortName: 'O', value: options.organization ?? 'wirelayer' },
      ],
      issuer: this.#subject,
      publicKey: key,
      signingKey: this.key,
      issuerSpki: this.#spki,
      notBefore,
      notAfter: new Date(notBefore.getTime() + LEAF_LIFETIME_MS),
      ca: false,
      altNames,
    });
    return { cert, certPem: pem, key, keyPem: keyToPem(key) };
  }
}

const SHORT_NAMES = new Set(['CN', 'O', 'OU', 'C', 'L', 'ST']);

/** X509Certificate#subject ("CN=wirelayer\nO=wirelayer") back into attributes, in order. */
function parseSubject(subject: string): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    const shortName = line.slice(0, eq);
    if (eq > 0 && SHORT_NAMES.has(shortName))
      out.push({ shortName: shortName as NameAttribute['shortName'], value: line.slice(eq + 1) });
  }
  return out;
}
