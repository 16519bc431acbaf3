/**
 * inspectCapture on synthetic captures: GREASE, split hellos, role guessing, HelloRetryRequest,
 * ALPN, unassigned codes, what is and is not a TLS/DTLS/QUIC connection, and notes.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HELLO_RETRY_REQUEST_RANDOM, ja3, ja4, parseClientHelloRecords } from '../../src/handshake/index.js';
import { QUIC_V1, QUIC_V2 } from '../../src/handshake/quic/index.js';
import { formatTable, INSPECT_RECORD_KEYS, inspectCapture, recordJson } from '../../src/inspect/index.js';
import { text } from '../capture/synth.js';
import { alpnExt, chromeLikeClientHello, type Ext, sniExt, u16VectorExt } from '../handshake/build.js';
import { fixtureText, hexAfter } from '../handshake/quic/helpers.js';
import {
  CLIENT,
  CLIENT_PORT,
  clientHelloBody,
  handshake,
  retryKeyShareExt,
  SERVER,
  SERVER_PORT,
  serverHelloBody,
  serverHelloRecords,
  serverKeyShareExt,
  supportedVersionsServerExt,
  tcpCapture,
  tlsRecords,
  udpCapture,
} from './synth.js';
import { tsharkRecords } from './tshark.js';

const tmp = mkdtempSync(join(tmpdir(), 'wirelayer-inspect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes a capture to a file, for tshark. */
function save(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

const CCS = tlsRecords(20, 0x0303, Uint8Array.of(1));
const TLS13_SERVER_HELLO = serverHelloRecords(serverHelloBody(0x1301));

function tls12ClientHello(
  ciphers: number[],
  extensions = [sniExt('example.com'), alpnExt(['h2', 'http/1.1'])],
) {
  return tlsRecords(0x16, 0x0301, handshake(1, clientHelloBody({ ciphers, extensions })));
}

describe('TLS over TCP', () => {
  it('keeps GREASE out of offered_ciphers, JA3 and JA4 (a Chrome-like hello split over two segments)', () => {
    const hello = chromeLikeClientHello();
    const capture = tcpCapture([
      { from: 'client', data: hello.subarray(0, 700) },
      { from: 'client', data: hello.subarray(700) },
      { from: 'server', data: TLS13_SERVER_HELLO },
    ]);
    const { records, notes, error } = inspectCapture(capture);
    expect(error).toBeNull();
    expect(notes).toEqual([]);
    expect(records).toHaveLength(1);
    const record = records[0]!;
    const parsed = parseClientHelloRecords(hello);
    if (parsed.status !== 'done') throw new Error('hello does not parse');
    expect(parsed.value.cipherSuites[0]).toBe(0x8a8a); // GREASE first on the wire ...
    expect(record.offered_ciphers).toHaveLength(15); // ... and left out here
    expect(record.offered_ciphers.slice(0, 3)).toEqual([
      'TLS_AES_128_GCM_SHA256',
      'TLS_AES_256_GCM_SHA384',
      'TLS_CHACHA20_POLY1305_SHA256',
    ]);
    expect(record).toEqual({
      protocol: 'tls',
      client: [CLIENT, CLIENT_PORT],
      server: [SERVER, SERVER_PORT],
      sni: 'www.example.com',
      alpn_offers: ['h2', 'http/1.1'],
      offered_ciphers: record.offered_ciphers,
      tls_version: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256',
      alpn: null,
      ja3: ja3(parsed.value).hash,
      ja4: ja4(parsed.value, 'tcp').ja4,
    });
    expect(record.ja4).toMatch(/^t13d1516h2_/);
    const { ja3_full: _, ...fromTshark } = tsharkRecords(save('grease.pcap', capture))[0]!;
    expect(record).toEqual(fromTshark);
  });

  it('TLS 1.2: version from legacy_version, ALPN from the ServerHello; without ALPN there, null', () => {
    const hello = tls12ClientHello([0xc02f, 0x009c]);
    const serverHello = (exts: Ext[]) => serverHelloRecords(serverHelloBody(0xc02f, exts));
    const withAlpn = inspectCapture(
      tcpCapture([
        { from: 'client', data: hello },
        { from: 'server', data: serverHello([alpnExt(['h2'])]) },
      ]),
    ).records[0]!;
    expect(withAlpn).toMatchObject({
      tls_version: 'TLSv1.2',
      cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
      alpn: 'h2',
      alpn_offers: ['h2', 'http/1.1'],
    });
    const without = inspectCapture(
      tcpCapture([
        { from: 'client', data: hello },
        { from: 'server', data: serverHello([]) },
      ]),
    ).records[0]!;
    expect(without).toMatchObject({ tls_version: 'TLSv1.2', alpn: null });
  });

  it('names an unassigned cipher code 0xNNNN and keeps SCSVs', () => {
    const capture = tcpCapture([
      { from: 'client', data: tls12ClientHello([0x1301, 0x1399, 0x5600, 0x00ff], []) },
      { from: 'server', data: serverHelloRecords(serverHelloBody(0x1399, [])) },
    ]);
    const record = inspectCapture(capture).records[0]!;
    expect(record.offered_ciphers).toEqual([
      'TLS_AES_128_GCM_SHA256',
      '0x1399',
      'TLS_FALLBACK_SCSV',
      'TLS_EMPTY_RENEGOTIATION_INFO_SCSV',
    ]);
    expect(record.cipher).toBe('0x1399');
    expect(record.sni).toBeNull();
    expect(record.alpn_offers).toEqual([]);
  });

  it.each([
    ['with', true],
    ['without', false],
  ])('HelloRetryRequest %s the ChangeCipherSpec after it: the final ServerHello counts', (_, ccs) => {
    const hrr = serverHelloRecords(
      serverHelloBody(0x1302, [supportedVersionsServerExt(0x0304), retryKeyShareExt(23)], {
        random: HELLO_RETRY_REQUEST_RANDOM,
      }),
    );
    const final = serverHelloRecords(
      serverHelloBody(0x1302, [supportedVersionsServerExt(0x0304), serverKeyShareExt(23)]),
    );
    const hello = chromeLikeClientHello();
    const capture = tcpCapture([
      { from: 'client', data: hello },
      { from: 'server', data: ccs ? Buffer.concat([hrr, CCS]) : hrr },
      { from: 'client', data: hello },
      { from: 'server', data: final },
    ]);
    const { records, notes } = inspectCapture(capture);
    expect(notes).toEqual([]);
    expect(records[0]).toMatchObject({ tls_version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
    // Only the HelloRetryRequest seen: no ServerHello, so nothing negotiated yet.
    const cut = inspectCapture(
      tcpCapture([
        { from: 'client', data: hello },
        { from: 'server', data: hrr },
      ]),
    );
    expect(cut.records[0]).toMatchObject({ tls_version: null, cipher: null });
  });

  it('finds the client by its ClientHello when the capture missed the SYNs and the server spoke first', () => {
    const capture = tcpCapture(
      [
        { from: 'server', data: text('stale bytes') },
        { from: 'client', data: tls12ClientHello([0xc02f]) },
      ],
      { synFrom: 'none' },
    );
    // The server's stream starts with junk, the client's with a ClientHello: roles come from that.
    const { records } = inspectCapture(capture);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ client: [CLIENT, CLIENT_PORT], server: [SERVER, SERVER_PORT] });
  });

  it('leaves out TCP flows that do not start with a ClientHello record', () => {
    const http = tcpCapture([
      { from: 'client', data: text('GET / HTTP/1.1\r\nHost: x\r\n\r\n') },
      { from: 'server', data: text('HTTP/1.1 200 OK\r\n\r\n') },
    ]);
    expect(inspectCapture(http)).toMatchObject({ records: [], notes: [], error: null });
    // A ServerHello first (the capture began after the ClientHello, SYN seen): not a connection we can read.
    const late = tcpCapture([{ from: 'client', data: TLS13_SERVER_HELLO }]);
    expect(inspectCapture(late).records).toEqual([]);
  });

  it('notes a ClientHello cut by the end of the capture, and an alert instead of a ServerHello', () => {
    const hello = chromeLikeClientHello();
    const cut = inspectCapture(tcpCapture([{ from: 'client', data: hello.subarray(0, 300) }]));
    expect(cut.records).toHaveLength(1);
    expect(cut.records[0]).toMatchObject({
      sni: null,
      ja3: null,
      ja4: null,
      offered_ciphers: [],
      tls_version: null,
    });
    expect(cut.notes).toEqual([
      {
        record: 0,
        message: "ClientHello incomplete: the client's stream has 300 bytes (the capture ends there)",
      },
    ]);
    const alert = tlsRecords(21, 0x0303, Uint8Array.of(2, 40));
    const refused = inspectCapture(
      tcpCapture([
        { from: 'client', data: hello },
        { from: 'server', data: alert },
      ]),
    );
    expect(refused.records[0]).toMatchObject({ sni: 'www.example.com', tls_version: null });
    expect(refused.notes).toEqual([
      { record: 0, message: 'the server sent alert 40 instead of a ServerHello' },
    ]);
  });

  it('notes a ClientHello that does not parse', () => {
    const body = clientHelloBody({ ciphers: [0x1301], extensions: [u16VectorExt(10, [29])] });
    body[body.length - 3] = 9; // the groups vector now claims more bytes than the extension has
    const { records, notes } = inspectCapture(
      tcpCapture([{ from: 'client', data: tlsRecords(0x16, 0x0301, handshake(1, body)) }]),
    );
    expect(records[0]!.ja3).toBeNull();
    expect(notes).toHaveLength(1);
    expect(notes[0]!.message).toMatch(
      /^ClientHello does not parse: bad-extension: malformed extension 10 at offset \d+$/,
    );
  });
});

describe('QUIC', () => {
  // RFC 9001 / RFC 9369 appendix A: a client Initial (ClientHello for example.com) and the
  // server Initial answering it (ServerHello, TLS_AES_128_GCM_SHA256), protected with the keys
  // of DCID 8394c8f03e515708.
  it.each([
    ['QUICv1', QUIC_V1, 'rfc9001-appendix-a.txt'],
    ['QUICv2', QUIC_V2, 'rfc9369-appendix-a.txt'],
  ])('%s: the RFC appendix A packets', (name, _version, file) => {
    const appendix = fixtureText(file);
    const capture = udpCapture([
      { from: 'client', data: hexAfter(appendix, 'The resulting protected packet is:') },
      { from: 'server', data: hexAfter(appendix, 'final protected packet is then:') },
    ]);
    const { records, notes, error } = inspectCapture(capture);
    expect(error).toBeNull();
    expect(notes).toEqual([]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      protocol: 'quic',
      sni: 'example.com',
      tls_version: name,
      cipher: 'TLS_AES_128_GCM_SHA256',
      alpn: null,
    });
    expect(records[0]!.ja4).toMatch(/^q13d/);
    if (name === 'QUICv1') {
      // tshark 4.0 decrypts v1 Initials; its v2 support predates RFC 9369's final values.
      const { ja3_full: _, ...fromTshark } = tsharkRecords(save(`${name}.pcap`, capture))[0]!;
      expect(records[0]).toEqual(fromTshark);
    }
  });

  it('a client Initial alone: the ClientHello, nothing negotiated', () => {
    const appendix = fixtureText('rfc9001-appendix-a.txt');
    const capture = udpCapture([
      { from: 'client', data: hexAfter(appendix, 'The resulting protected packet is:') },
    ]);
    expect(inspectCapture(capture).records[0]).toMatchObject({
      sni: 'example.com',
      tls_version: null,
      cipher: null,
    });
  });

  it('notes an Initial that does not decrypt', () => {
    const appendix = fixtureText('rfc9001-appendix-a.txt');
    const packet = Uint8Array.from(hexAfter(appendix, 'The resulting protected packet is:'));
    packet[100]! ^= 0xff;
    const { records, notes } = inspectCapture(udpCapture([{ from: 'client', data: packet }]));
    expect(records[0]).toMatchObject({ protocol: 'quic', sni: null, ja4: null });
    expect(notes).toHaveLength(1);
    expect(notes[0]!.message).toMatch(/^an Initial from the client does not parse: quic-decryption-failed/);
  });
});

describe('UDP flows that are neither DTLS nor QUIC', () => {
  it('gives no record', () => {
    const capture = udpCapture([
      { from: 'client', data: text('hello') },
      { from: 'server', data: text('HELLO') },
    ]);
    expect(inspectCapture(capture)).toMatchObject({ records: [], notes: [], error: null });
  });
});

describe('output forms', () => {
  const record = {
    protocol: 'tls',
    client: ['::1', 5000],
    server: ['10.0.0.2', 443],
    sni: 'a\u001bb',
    alpn_offers: [],
    offered_ciphers: ['TLS_AES_128_GCM_SHA256'],
    tls_version: null,
    cipher: null,
    alpn: null,
    ja3: null,
    ja4: null,
  } as const;

  it('JSON: exactly the contract keys, in order, whatever order the object had', () => {
    const shuffled = Object.fromEntries(Object.entries(record).reverse()) as unknown as typeof record;
    expect(Object.keys(JSON.parse(recordJson(shuffled)))).toEqual([...INSPECT_RECORD_KEYS]);
  });

  it('table: a header, a row per record, aligned columns, - for none, no control characters', () => {
    const [header, row] = formatTable([record]);
    expect(header).toMatch(
      /^PROTO {2}CLIENT +SERVER +SNI +VERSION {2}CIPHER {2}ALPN {2}ALPN OFFERS {2}CIPHERS {2}JA4$/,
    );
    expect(row).toMatch(/^tls {4}\[::1\]:5000 {2}10\.0\.0\.2:443 {2}a\?b +- +- +- +- +1 +-$/);
    expect(header!.indexOf('SERVER')).toBe(row!.indexOf('10.0.0.2'));
  });
});

describe('many connections in one capture', () => {
  it('gives one record per connection, in the order of their first packets', () => {
    const dir = join(import.meta.dirname, '../fixtures/inspect');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.pcap'))
      .sort();
    const captures = files.map((f) => new Uint8Array(readFileSync(join(dir, f))));
    // Same link type and precision throughout: one file header, then every file's records.
    const merged = Buffer.concat([captures[0]!.subarray(0, 24), ...captures.map((c) => c.subarray(24))]);
    const { records, notes, error } = inspectCapture(merged);
    expect(error).toBeNull();
    expect(notes).toEqual([]);
    expect(records).toEqual(captures.map((c) => inspectCapture(c).records[0]));
    expect(new Set(records.map((r) => r.protocol))).toEqual(new Set(['tls', 'dtls', 'quic']));
  });
});
