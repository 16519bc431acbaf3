import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TLS_VERSIONS } from '../../src/connection/types.js';
import {
  cipherSuiteCode,
  cipherSuiteName,
  IANA_CIPHER_SUITES,
  ianaCipherName,
  OPENSSL_CIPHER_CODES,
} from '../../src/handshake/ciphers.js';
import { groupName } from '../../src/handshake/groups.js';
import { signatureSchemeName } from '../../src/handshake/signature-schemes.js';
import {
  compareWireVersions,
  isGrease,
  isQuicGreaseVersion,
  quicVersionFromWire,
  tlsVersionFromName,
  tlsVersionFromWire,
  tlsVersionToWire,
} from '../../src/handshake/versions.js';

describe('versions', () => {
  it('maps every wire code (docs/ARCHITECTURE.md, wire facts)', () => {
    expect(tlsVersionFromWire(0x0300)).toBe('SSLv3');
    expect(tlsVersionFromWire(0x0301)).toBe('TLSv1');
    expect(tlsVersionFromWire(0x0302)).toBe('TLSv1.1');
    expect(tlsVersionFromWire(0x0303)).toBe('TLSv1.2');
    expect(tlsVersionFromWire(0x0304)).toBe('TLSv1.3');
    expect(tlsVersionFromWire(0x0100)).toBe('DTLSv0.9');
    expect(tlsVersionFromWire(0xfeff)).toBe('DTLSv1');
    expect(tlsVersionFromWire(0xfefd)).toBe('DTLSv1.2');
    expect(tlsVersionFromWire(0xfefc)).toBe('DTLSv1.3');
    expect(tlsVersionFromWire(0x0a0a)).toBeNull();
    expect(tlsVersionFromWire(0xfefe)).toBeNull();
    expect(quicVersionFromWire(1)).toBe('QUICv1');
    expect(quicVersionFromWire(0x6b3343cf)).toBe('QUICv2');
    expect(quicVersionFromWire(0)).toBeNull();
  });

  it('round-trips every TlsVersion through its wire code and its name', () => {
    for (const v of TLS_VERSIONS) {
      const code = tlsVersionToWire(v);
      expect(v.startsWith('QUIC') ? quicVersionFromWire(code) : tlsVersionFromWire(code)).toBe(v);
      expect(tlsVersionFromName(v)).toBe(v);
    }
    expect(tlsVersionFromName('unknown')).toBeNull();
    expect(tlsVersionFromName(null)).toBeNull();
    expect(tlsVersionFromName('toString')).toBeNull();
  });

  it('orders DTLS versions by age, not by number', () => {
    expect(compareWireVersions(0xfefc, 0xfefd)).toBeGreaterThan(0);
    expect(compareWireVersions(0xfefd, 0xfeff)).toBeGreaterThan(0);
    expect(compareWireVersions(0xfeff, 0x0100)).toBeGreaterThan(0);
    expect(compareWireVersions(0x0304, 0x0303)).toBeGreaterThan(0);
  });

  it('recognises exactly the 16 GREASE values and QUIC GREASE versions', () => {
    const grease: number[] = [];
    for (let v = 0; v <= 0xffff; v++) if (isGrease(v)) grease.push(v);
    expect(grease).toEqual(Array.from({ length: 16 }, (_, i) => i * 0x1010 + 0x0a0a));
    expect(isQuicGreaseVersion(0x1a2a3a4a)).toBe(true);
    expect(isQuicGreaseVersion(0xfafafafa)).toBe(true);
    expect(isQuicGreaseVersion(1)).toBe(false);
    expect(isQuicGreaseVersion(0x6b3343cf)).toBe(false);
  });
});

describe('cipher suites', () => {
  it('holds the IANA registry (352 assignments incl. TLS 1.3, SCSVs)', () => {
    expect(IANA_CIPHER_SUITES.size).toBe(352);
    expect(cipherSuiteName(0x1301)).toBe('TLS_AES_128_GCM_SHA256');
    expect(cipherSuiteName(0x1305)).toBe('TLS_AES_128_CCM_8_SHA256');
    expect(cipherSuiteName(0x00ff)).toBe('TLS_EMPTY_RENEGOTIATION_INFO_SCSV');
    expect(cipherSuiteName(0x5600)).toBe('TLS_FALLBACK_SCSV');
    expect(cipherSuiteName(0xc02f)).toBe('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
    expect(cipherSuiteName(0x0a0a)).toBeNull();
  });

  it('accepts a code, an OpenSSL name or an IANA name', () => {
    expect(ianaCipherName(0xc030)).toBe('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
    expect(ianaCipherName('ECDHE-RSA-AES256-GCM-SHA384')).toBe('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
    expect(ianaCipherName('TLS_AES_256_GCM_SHA384')).toBe('TLS_AES_256_GCM_SHA384');
    expect(ianaCipherName('AES128-SHA')).toBe('TLS_RSA_WITH_AES_128_CBC_SHA');
    expect(ianaCipherName('NOPE')).toBeNull();
    expect(cipherSuiteCode('ECDHE-ECDSA-CHACHA20-POLY1305')).toBe(0xcca9);
    expect(cipherSuiteCode('TLS_FALLBACK_SCSV')).toBe(0x5600);
  });

  it('maps every cipher this OpenSSL can report', () => {
    const out = execFileSync('openssl', ['ciphers', '-V', '-stdname', 'ALL:COMPLEMENTOFALL'], {
      encoding: 'utf8',
    });
    let rows = 0;
    for (const line of out.split('\n')) {
      const m = /^\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+- (\S+)/.exec(line);
      if (!m) continue;
      rows++;
      const code = Number.parseInt(m[1] + m[2], 16);
      expect(ianaCipherName(code)).toBe(m[3]);
      expect(ianaCipherName(m[4])).toBe(m[3]);
      expect(ianaCipherName(m[3])).toBe(m[3]);
    }
    expect(rows).toBeGreaterThan(100);
    expect(OPENSSL_CIPHER_CODES.size).toBeGreaterThanOrEqual(rows - 5);
  });

  it("agrees with Wireshark's table wherever Wireshark knows the code", () => {
    // The whole value dump is ~90 MB: let grep keep the cipher suite lines.
    const out = execFileSync(
      'sh',
      ['-c', "tshark -G values 2>/dev/null | grep '^V.tls.handshake.ciphersuite.'"],
      {
        encoding: 'utf8',
      },
    );
    let compared = 0;
    for (const line of out.split('\n')) {
      const f = line.split('\t');
      if (f[0] !== 'V' || f[1] !== 'tls.handshake.ciphersuite') continue;
      const ours = cipherSuiteName(Number(f[2]));
      if (ours === null) continue; // Wireshark also lists drafts and vendor codes
      expect(ours).toBe(f[3]);
      compared++;
    }
    expect(compared).toBeGreaterThan(340);
  });

  it('names groups and signature schemes', () => {
    expect(groupName(0x11ec)).toBe('X25519MLKEM768');
    expect(groupName(29)).toBe('x25519');
    expect(signatureSchemeName(0x0804)).toBe('rsa_pss_rsae_sha256');
    expect(groupName(0x0a0a)).toBeNull();
  });
});
