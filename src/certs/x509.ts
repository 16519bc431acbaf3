/**
 * X.509 certificates: the structure is built with node-forge's ASN.1, the signature made by
 * node:crypto (forge's pure-JS RSA signing is ~50x slower), then the two are assembled.
 * forge's Certificate type only takes RSA keys, so the TBSCertificate is put together here
 * from forge's pieces (names, extensions, times) and the SubjectPublicKeyInfo node exports.
 */
import { createHash, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { spkiDer } from './keys.js';

const { asn1, pki } = forge;

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';

/** One attribute of a distinguished name, by forge's short names (`CN`, `O`, ...). */
export interface NameAttribute {
  shortName: 'CN' | 'O' | 'OU' | 'C' | 'L' | 'ST';
  value: string;
}

export interface CertificateSpec {
  subject: readonly NameAttribute[];
  /** The issuer's name; the subject's for a self-signed certificate. */
  issuer?: readonly NameAttribute[];
  /** The certified key (its public half goes into the certificate). */
  publicKey: KeyObject;
  /** The key that signs: the issuer's. */
  signingKey: KeyObject;
  /** The issuer's SubjectPublicKeyInfo DER, for the authority key identifier; none when self-signed. */
  issuerSpki?: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** A CA certificate (basicConstraints CA:TRUE, keyCertSign) or a TLS leaf (serverAuth). */
  ca: boolean;
  /** subjectAltName entries: DNS names and IP literals (told apart by `isIP`). */
  altNames?: readonly string[];
  /** Hex serial; a random positive 16-byte one by default. */
  serial?: string;
}

/** The SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2, method 1). */
export function keyIdentifier(spki: Buffer): Buffer {
  const parsed = asn1.fromDer(forge.util.createBuffer(spki.toString('binary')));
  const bits = (parsed.value as forge.asn1.Asn1[])[1]!.value as string;
  // a BIT STRING's first content byte counts unused bits
  return createHash('sha1')
    .update(Buffer.from(bits.slice(1), 'binary'))
    .digest();
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive
  bytes[0]! |= 0x01; // no leading zero byte to strip
  return bytes.toString('hex');
}

function toDer(node: forge.asn1.Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

function fromDer(der: Buffer): forge.asn1.Asn1 {
  return asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
}

function time(date: Date): forge.asn1.Asn1 {
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function signatureAlgorithm(signingKey: KeyObject): { oid: string; node: forge.asn1.Asn1 } {
  const type = signingKey.asymmetricKeyType;
  if (type === 'ec') {
    const oid = OID_ECDSA_SHA256;
    return { oid, node: algorithmIdentifier(oid, false) };
  }
  if (type === 'rsa') {
    const oid = OID_RSA_SHA256;
    return { oid, node: algorithmIdentifier(oid, true) };
  }
  throw new Error(`cannot sign certificates with a ${type} key (ec or rsa)`);
}

function algorithmIdentifier(oid: string, nullParams: boolean): forge.asn1.Asn1 {
  const parts = [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes())];
  if (nullParams) parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts);
}

function extensions(spec: CertificateSpec, spki: Buffer): forge.pki.CertificateField[] {
  const ski = keyIdentifier(spki);
  const list: Record<string, unknown>[] = [
    { name: 'basicConstraints', cA: spec.ca, critical: spec.ca },
    spec.ca
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : {
          name: 'keyUsage',
          digitalSignature: true,
          keyEncipherment: spec.publicKey.asymmetricKeyType === 'rsa',
          critical: true,
        },
  ];
  if (!spec.ca) list.push({ name: 'extKeyUsage', serverAuth: true, clientAuth: true });
  if (spec.altNames?.length) {
    list.push({
      name: 'subjectAltName',
      altNames: spec.altNames.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    });
  }
  list.push({
    name: 'subjectKeyIdentifier',
    value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, ski.toString('binary')),
  });
  if (spec.issuerSpki) {
    list.push({
      name: 'authorityKeyIdentifier',
      keyIdentifier: keyIdentifier(spec.issuerSpki).toString('binary'),
    });
  }
  return list as forge.pki.CertificateField[];
}

/** Builds and signs a certificate; returns its DER. */
export function buildCertificateDer(spec: CertificateSpec): Buffer {
  const spki = spkiDer(spec.publicKey);
  // forge's Certificate only as a carrier for names and extensions (it fills OIDs and values)
  const carrier = pki.createCertificate();
  carrier.setSubject(spec.subject.map((a) => ({ shortName: a.shortName, value: a.value })));
  carrier.setIssuer((spec.issuer ?? spec.subject).map((a) => ({ shortName: a.shortName, value: a.value })));
  carrier.setExtensions(extensions(spec, spki));
  const alg = signatureAlgorithm(spec.signingKey);
  const tbs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes()),
    ]),
    asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.INTEGER,
      false,
      forge.util.hexToBytes(spec.serial ?? randomSerial()),
    ),
    alg.node,
    pki.distinguishedNameToAsn1(carrier.issuer),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [time(spec.notBefore), time(spec.notAfter)]),
    pki.distinguishedNameToAsn1(carrier.subject),
    fromDer(spki),
    (
      pki as unknown as { certificateExtensionsToAsn1(e: unknown): forge.asn1.Asn1 }
    ).certificateExtensionsToAsn1(carrier.extensions),
  ]);
  const tbsDer = toDer(tbs);
  const signature = sign('sha256', tbsDer, spec.signingKey);
  return assemble(tbsDer, toDer(alg.node), signature);
}

/** SEQUENCE { tbsCertificate, signatureAlgorithm, BIT STRING signature }. */
function assemble(tbsDer: Buffer, algDer: Buffer, signature: Buffer): Buffer {
  const bitString = Buffer.concat([derHeader(0x03, signature.length + 1), Buffer.from([0]), signature]);
  const body = Buffer.concat([tbsDer, algDer, bitString]);
  return Buffer.concat([derHeader(0x30, body.length), body]);
}

function derHeader(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/** Builds and signs a certificate; returns it parsed, with its PEM. */
export function buildCertificate(spec: CertificateSpec): { cert: X509Certificate; pem: string } {
  const der = buildCertificateDer(spec);
  const pem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  return { cert: new X509Certificate(der), pem };
}
