import { describe, expect, it } from 'vitest';
import { detectDatagram, detectStream } from '../../src/handshake/detect.js';
import { clientHelloBody, handshake, tlsRecords } from './build.js';
import { dtlsDatagrams, tlsStream } from './fixtures.js';

const TLS = [
  'openssl-tls13',
  'openssl-tls12',
  'openssl-tls11',
  'openssl-tls10',
  'gnutls-tls13',
  'gnutls-tls12',
];

/** A QUIC long header: flags, version, DCID, SCID, then filler. */
function quicLong(version: number, dcidLen = 8, scidLen = 8, first = 0xc3): Uint8Array {
  return Uint8Array.from([
    first,
    (version >>> 24) & 0xff,
    (version >>> 16) & 0xff,
    (version >>> 8) & 0xff,
    version & 0xff,
    dcidLen,
    ...new Array<number>(dcidLen).fill(1),
    scidLen,
    ...new Array<number>(scidLen).fill(2),
    ...new Array<number>(40).fill(0),
  ]);
}

describe('detectStream', () => {
  it('finds TLS in every captured client stream, need-more on its prefixes', () => {
    for (const name of TLS) {
      const s = tlsStream(name, 'client');
      expect(detectStream(s)).toBe('tls');
      for (let i = 0; i < 6; i++) expect(detectStream(s.subarray(0, i))).toBe('need-more');
    }
  });

  it('finds an SSLv3 ClientHello', () => {
    const s = tlsRecords(
      0x16,
      0x0300,
      handshake(1, clientHelloBody({ version: 0x0300, ciphers: [4], extensions: null })),
    );
    expect(detectStream(s)).toBe('tls');
  });

  it('says other for plain protocols and non-hello records', () => {
    const enc = new TextEncoder();
    expect(detectStream(enc.encode('GET / HTTP/1.1\r\n'))).toBe('other');
    expect(detectStream(enc.encode('SSH-2.0-OpenSSH_9.2\r\n'))).toBe('other');
    expect(detectStream(Uint8Array.from([0x16, 0x02, 0x00]))).toBe('other');
    expect(detectStream(Uint8Array.from([0x16, 0x03, 0x05]))).toBe('other');
    expect(detectStream(Uint8Array.from([0x16, 0x03, 0x03, 0x00, 0x00, 0x01]))).toBe('other');
    expect(detectStream(Uint8Array.from([0x16, 0x03, 0x03, 0x50, 0x00, 0x01]))).toBe('other');
    expect(detectStream(tlsStream('openssl-tls12', 'server'))).toBe('other'); // ServerHello
    expect(detectStream(Uint8Array.from([0x80, 0x2e, 0x01]))).toBe('other'); // SSLv2 hello
  });
});

describe('detectDatagram', () => {
  it('finds DTLS in the captured first datagrams (0xfeff records too)', () => {
    for (const name of ['openssl-dtls12', 'openssl-dtls1', 'openssl-dtls12-frag']) {
      expect(detectDatagram(dtlsDatagrams(name)[0].bytes)).toBe('dtls');
    }
  });

  it('finds QUIC v1, v2, GREASE and version negotiation long headers', () => {
    expect(detectDatagram(quicLong(1))).toBe('quic');
    expect(detectDatagram(quicLong(0x6b3343cf))).toBe('quic');
    expect(detectDatagram(quicLong(0x1a2a3a4a))).toBe('quic');
    expect(detectDatagram(quicLong(0))).toBe('quic');
    expect(detectDatagram(quicLong(1, 20, 20))).toBe('quic');
    expect(detectDatagram(quicLong(1, 0, 0))).toBe('quic');
  });

  it('says raw for the rest', () => {
    expect(detectDatagram(new Uint8Array(0))).toBe('raw');
    expect(detectDatagram(new TextEncoder().encode('hello over udp'))).toBe('raw');
    expect(detectDatagram(quicLong(2))).toBe('raw'); // unknown version
    expect(detectDatagram(quicLong(1, 21))).toBe('raw'); // CID too long
    expect(detectDatagram(quicLong(1, 8, 8, 0x83))).toBe('raw'); // fixed bit clear
    expect(detectDatagram(quicLong(1).subarray(0, 10))).toBe('raw'); // CIDs cut
    expect(detectDatagram(Uint8Array.from([0x43, 1, 2, 3]))).toBe('raw'); // short header
    const dtls = dtlsDatagrams('openssl-dtls12')[0].bytes;
    const epoch1 = dtls.slice();
    epoch1[4] = 1;
    expect(detectDatagram(epoch1)).toBe('raw');
    const fefe = dtls.slice();
    fefe[2] = 0xfe;
    expect(detectDatagram(fefe)).toBe('raw');
    expect(detectDatagram(dtls.subarray(0, 20))).toBe('raw');
    // The server's HelloVerifyRequest is DTLS but not a ClientHello.
    expect(detectDatagram(dtlsDatagrams('openssl-dtls12')[1].bytes)).toBe('raw');
  });
});
