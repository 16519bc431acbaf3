import { describe, expect, it } from 'vitest';
import { ianaCipherName } from '../../src/handshake/ciphers.js';
import { X25519MLKEM768 } from '../../src/handshake/groups.js';
import {
  HELLO_RETRY_REQUEST_RANDOM,
  highestOfferedVersion,
  parseClientHello,
  parseClientHelloRecords,
  parseServerHello,
  parseServerHelloRecords,
  TlsRecordReader,
} from '../../src/handshake/index.js';
import { tlsVersionFromName, tlsVersionFromWire } from '../../src/handshake/versions.js';
import { opensslStandardName, wiresharkCipherName } from '../helpers/cipher-names.js';
import {
  chromeLikeClientHello,
  clientHelloBody,
  handshake,
  keyShareExt,
  sniExt,
  tlsRecords,
} from './build.js';
import { sessionSummary, tlsPeerOutput, tlsStream, tracedHello, traceMessages } from './fixtures.js';

const OPENSSL = [
  'openssl-tls13',
  'openssl-tls12',
  'openssl-tls11',
  'openssl-tls10',
  'openssl-tls13-frag',
  'openssl-tls13-hrr',
] as const;

function mustClientHello(bytes: Uint8Array) {
  const r = parseClientHelloRecords(bytes);
  if (r.status !== 'done') throw new Error(`ClientHello: ${JSON.stringify(r)}`);
  return r;
}

function mustServerHello(bytes: Uint8Array) {
  const r = parseServerHelloRecords(bytes);
  if (r.status !== 'done') throw new Error(`ServerHello: ${JSON.stringify(r)}`);
  return r;
}

describe('openssl s_client against s_server (fixtures)', () => {
  for (const name of OPENSSL) {
    it(`${name}: ClientHello and ServerHello agree with openssl -trace and the session`, () => {
      const trace = tlsPeerOutput(name);
      const msgs = traceMessages(trace);
      const tracedCh = tracedHello(msgs.find((m) => m.type === 'ClientHello')!);
      const tracedSh = tracedHello(msgs.find((m) => m.type === 'ServerHello')!);

      const ch = mustClientHello(tlsStream(name, 'client')).value;
      expect(ch.legacyVersion).toBe(tracedCh.version);
      expect(ch.cipherSuites).toEqual(tracedCh.ciphers);
      expect(ch.extensions.map((e) => e.type)).toEqual(tracedCh.extensions);
      expect(ch.sni).toBe('example.com');
      expect(ch.keyShareGroups).toEqual(tracedCh.groups);

      const sh = mustServerHello(tlsStream(name, 'server')).value;
      expect(sh.legacyVersion).toBe(tracedSh.version);
      expect([sh.cipherSuite]).toEqual(tracedSh.ciphers);
      expect(sh.extensions.map((e) => e.type)).toEqual(tracedSh.extensions);

      // The negotiated values, as the client reported them at the end.
      const summary = sessionSummary(trace);
      expect(tlsVersionFromWire(sh.version)).toBe(tlsVersionFromName(summary.protocol));
      expect(ianaCipherName(sh.cipherSuite)).toBe(opensslStandardName(summary.cipher));
      expect(ianaCipherName(sh.cipherSuite)).toBe(wiresharkCipherName(sh.cipherSuite));
      if (sh.version === 0x0303) expect(sh.alpn).toBe(summary.alpn);
    });
  }

  it('TLS 1.3 hello offers 1.3 in supported_versions and ALPN h2, http/1.1', () => {
    const ch = mustClientHello(tlsStream('openssl-tls13', 'client')).value;
    expect(ch.supportedVersions).toEqual([0x0304]);
    expect(highestOfferedVersion(ch)).toBe(0x0304);
    expect(ch.alpnProtocols).toEqual(['h2', 'http/1.1']);
    expect(ch.supportedGroups).toContain(29);
    expect(ch.signatureAlgorithms.length).toBeGreaterThan(5);
    expect(ch.pskKeyExchangeModes).toEqual([1]);
  });

  it('TLS 1.2: the ServerHello carries the selected ALPN', () => {
    const sh = mustServerHello(tlsStream('openssl-tls12', 'server')).value;
    expect(sh.alpn).toBe('h2');
    expect(sh.selectedVersion).toBeNull();
  });

  it('a ClientHello split over records by -max_send_frag 512 is reassembled', () => {
    const stream = tlsStream('openssl-tls13-frag', 'client');
    const r = mustClientHello(stream);
    expect(r.value.alpnProtocols).toHaveLength(21);
    // More than one record went into it.
    expect(r.consumed).toBeGreaterThan(5 + 512);
    expect(stream[0]).toBe(0x16);
    expect((stream[3] << 8) | stream[4]).toBe(512);
  });

  it('recognises the HelloRetryRequest and the group it asks for, then the second ClientHello', () => {
    const sh = mustServerHello(tlsStream('openssl-tls13-hrr', 'server')).value;
    expect(sh.helloRetryRequest).toBe(true);
    expect(sh.random).toEqual(HELLO_RETRY_REQUEST_RANDOM);
    expect(sh.keyShareGroup).toBe(23);
    const normal = mustServerHello(tlsStream('openssl-tls13', 'server')).value;
    expect(normal.helloRetryRequest).toBe(false);
    expect(normal.keyShareGroup).toBe(29);

    const reader = new TlsRecordReader();
    reader.push(tlsStream('openssl-tls13-hrr', 'client'));
    const hellos = [];
    for (let r = reader.read(); r.status === 'done'; r = reader.read()) {
      if (r.value.kind === 'handshake' && r.value.msgType === 1) hellos.push(r.value.body);
    }
    // The second hello comes after the client's compatibility ChangeCipherSpec: still plaintext,
    // and it carries the key share the HelloRetryRequest asked for.
    expect(hellos).toHaveLength(2);
    const second = parseClientHello(hellos[1]!);
    expect(second.status === 'done' && second.value.keyShareGroups).toEqual([23]);

    // likewise the real ServerHello after the server's HelloRetryRequest and its ChangeCipherSpec
    const serverReader = new TlsRecordReader();
    serverReader.push(tlsStream('openssl-tls13-hrr', 'server'));
    const kinds: string[] = [];
    for (let r = serverReader.read(); r.status === 'done'; r = serverReader.read()) {
      kinds.push(
        r.value.kind === 'handshake' ? `handshake:${r.value.msgType}` : `record:${r.value.contentType}`,
      );
    }
    expect(kinds.slice(0, 3)).toEqual(['handshake:2', 'record:20', 'handshake:2']);
    expect(kinds.slice(3).every((k) => k.startsWith('record:'))).toBe(true); // encrypted from here
  });
});

describe('gnutls-cli against s_server (fixtures)', () => {
  it('gnutls TLS 1.3 hello: versions, groups, key shares, SNI, ALPN; server chose TLS 1.3 AES-256-GCM', () => {
    const ch = mustClientHello(tlsStream('gnutls-tls13', 'client')).value;
    expect(ch.sni).toBe('localhost');
    expect(ch.alpnProtocols).toEqual(['h2', 'http/1.1']);
    expect(ch.supportedVersions).toEqual([0x0304, 0x0303, 0x0302, 0x0301]);
    expect(ch.keyShareGroups.length).toBeGreaterThan(0);
    const sh = mustServerHello(tlsStream('gnutls-tls13', 'server')).value;
    const desc = /Description: \((TLS1\.3)-.*-\((AES-256-GCM)\)/.exec(tlsPeerOutput('gnutls-tls13'));
    expect(desc).not.toBeNull();
    expect(tlsVersionFromWire(sh.version)).toBe('TLSv1.3');
    expect(ianaCipherName(sh.cipherSuite)).toBe('TLS_AES_256_GCM_SHA384');
  });

  it('gnutls TLS 1.2 hello', () => {
    const ch = mustClientHello(tlsStream('gnutls-tls12', 'client')).value;
    expect(ch.supportedVersions).toEqual([]);
    expect(ch.legacyVersion).toBe(0x0303);
    const sh = mustServerHello(tlsStream('gnutls-tls12', 'server')).value;
    expect(tlsVersionFromWire(sh.version)).toBe('TLSv1.2');
    expect(tlsPeerOutput('gnutls-tls12')).toContain(
      'Description: (TLS1.2-X.509)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)',
    );
    expect(ianaCipherName(sh.cipherSuite)).toBe('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
  });
});

describe('large and old hellos', () => {
  it('parses a > 1.5 KB X25519MLKEM768 ClientHello fed one byte at a time', () => {
    const stream = chromeLikeClientHello();
    expect(stream.length).toBeGreaterThan(1700);
    for (let i = 1; i < stream.length; i++) {
      const partial = parseClientHelloRecords(stream.subarray(0, i));
      expect(partial.status).toBe('need-more');
    }
    const reader = new TlsRecordReader();
    let got = null;
    for (let i = 0; i < stream.length; i++) {
      reader.push(stream.subarray(i, i + 1));
      const r = reader.read();
      if (i < stream.length - 1) expect(r.status).toBe('need-more');
      else if (r.status === 'done' && r.value.kind === 'handshake') got = parseClientHello(r.value.body);
    }
    const oneShot = mustClientHello(stream).value;
    expect(got?.status).toBe('done');
    if (got?.status !== 'done') return;
    expect(got.value.keyShareGroups).toEqual([0x4a4a, X25519MLKEM768, 29]);
    expect(got.value.supportedGroups).toEqual(oneShot.supportedGroups);
    expect(got.value.cipherSuites).toEqual(oneShot.cipherSuites);
    expect(got.value.sni).toBe('www.example.com');
  });

  it('parses it split across many small records too', () => {
    const body = parseClientHelloRecords(chromeLikeClientHello());
    expect(body.status).toBe('done');
    const payload = handshake(
      1,
      clientHelloBody({ ciphers: [0x1301], extensions: [keyShareExt([[X25519MLKEM768, 1216]])] }),
    );
    const r = parseClientHelloRecords(tlsRecords(0x16, 0x0303, payload, 7));
    expect(r.status).toBe('done');
    if (r.status === 'done') expect(r.value.keyShareGroups).toEqual([X25519MLKEM768]);
  });

  it('parses an SSLv3 ClientHello (record 0x16 0x03 0x00, no extensions)', () => {
    // Synthetic: neither OpenSSL 3 nor GnuTLS 3.7 on this machine can send SSLv3 any more.
    const body = clientHelloBody({
      version: 0x0300,
      ciphers: [0x000a, 0x0005, 0x0004, 0x00ff],
      extensions: null,
    });
    const stream = tlsRecords(0x16, 0x0300, handshake(1, body));
    expect(Array.from(stream.subarray(0, 3))).toEqual([0x16, 0x03, 0x00]);
    const r = mustClientHello(stream);
    expect(r.value.legacyVersion).toBe(0x0300);
    expect(tlsVersionFromWire(highestOfferedVersion(r.value))).toBe('SSLv3');
    expect(r.value.extensions).toEqual([]);
    expect(r.value.sni).toBeNull();
    expect(r.consumed).toBe(stream.length);
  });
});

describe('errors', () => {
  it('says need-more for a cut stream, with the bytes still needed', () => {
    const stream = tlsStream('openssl-tls12', 'client');
    const r = parseClientHelloRecords(stream.subarray(0, 100));
    expect(r).toEqual({ status: 'need-more', needed: 5 + ((stream[3] << 8) | stream[4]) - 100 });
    expect(parseClientHelloRecords(new Uint8Array(0)).status).toBe('need-more');
  });

  it('returns typed errors with code, offset and a hex excerpt', () => {
    const http = new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = parseClientHelloRecords(http);
    expect(r.status).toBe('error');
    if (r.status !== 'error') return;
    expect(r.error.code).toBe('bad-content-type');
    expect(r.error.offset).toBe(0);
    expect(r.error.excerpt).toBe(Buffer.from(http.subarray(0, 16)).toString('hex'));

    const server = parseClientHelloRecords(tlsStream('openssl-tls12', 'server'));
    expect(server.status === 'error' && server.error.code).toBe('unexpected-message');
    const alert = parseServerHelloRecords(Uint8Array.from([0x15, 3, 3, 0, 2, 2, 40]));
    expect(alert.status === 'error' && alert.error.code).toBe('alert');

    const body = clientHelloBody({ ciphers: [0x1301], extensions: [sniExt('a.example')] });
    body[body.length - 11] = 0xff; // the name's length now runs past the extension
    const bad = parseClientHello(body);
    expect(bad.status === 'error' && bad.error.code).toBe('bad-extension');
    const short = parseServerHello(new Uint8Array(10));
    expect(short.status === 'error' && short.error.code).toBe('truncated');
  });

  it('caps message length and buffered bytes', () => {
    const reader = new TlsRecordReader({ maxMessageLength: 1000 });
    reader.push(tlsRecords(0x16, 0x0303, Uint8Array.from([1, 0, 0x10, 0])));
    const r = reader.read();
    expect(r.status === 'error' && r.error.code).toBe('message-too-large');
    expect(reader.read()).toBe(r); // sticky
    const small = new TlsRecordReader({ maxBuffered: 100 });
    small.push(Uint8Array.from([0x16, 3, 3, 0x40, 0]));
    small.push(new Uint8Array(200));
    expect(small.read().status).toBe('error');
  });

  it('hands out encrypted records after ChangeCipherSpec instead of parsing them', () => {
    const reader = new TlsRecordReader();
    reader.push(tlsStream('openssl-tls12', 'server'));
    const kinds: string[] = [];
    for (let r = reader.read(); r.status === 'done'; r = reader.read()) {
      kinds.push(r.value.kind === 'handshake' ? `hs${r.value.msgType}` : `rec${r.value.contentType}`);
    }
    expect(kinds.slice(0, 4)).toEqual(['hs2', 'hs11', 'hs12', 'hs14']);
    expect(kinds).toContain('rec20');
    const afterCcs = kinds.slice(kinds.indexOf('rec20') + 1);
    expect(afterCcs.every((k) => k.startsWith('rec'))).toBe(true);
    expect(reader.changedCipherSpec).toBe(true);
  });
});
