import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DtlsHandshakeReassembler,
  detectDatagram,
  ianaCipherName,
  ja4,
  parseClientHello,
  parseDtlsClientHello,
  parseDtlsServerHello,
  parseHelloVerifyRequest,
  parseServerHello,
  splitDtlsHandshakeFragments,
  splitDtlsRecords,
  tlsVersionFromName,
  tlsVersionFromWire,
} from '../../src/handshake/index.js';
import { opensslStandardName, wiresharkCipherName } from '../helpers/cipher-names.js';
import { clientHelloBody, dtlsFragment, dtlsRecord, sniExt, supportedVersionsExt } from './build.js';
import { dtlsDatagrams, dtlsPeerOutput, sessionSummary, tracedHello, traceMessages } from './fixtures.js';

const NAMES = ['openssl-dtls12', 'openssl-dtls1', 'openssl-dtls12-frag'] as const;

function exchange(name: string) {
  const c = new DtlsHandshakeReassembler();
  const s = new DtlsHandshakeReassembler();
  const client: { msgType: number; messageSeq: number; body: Uint8Array }[] = [];
  const server: { msgType: number; messageSeq: number; body: Uint8Array }[] = [];
  for (const d of dtlsDatagrams(name)) {
    const r = (d.dir === 'c' ? c : s).pushDatagram(d.bytes);
    if (r.status !== 'done') throw new Error(JSON.stringify(r));
    (d.dir === 'c' ? client : server).push(...r.value);
  }
  return { client, server };
}

describe('openssl DTLS fixtures', () => {
  for (const name of NAMES) {
    it(`${name}: ClientHello, HelloVerifyRequest, second ClientHello and ServerHello agree with -trace`, () => {
      const trace = dtlsPeerOutput(name);
      const msgs = traceMessages(trace);
      const tracedCh = msgs.filter((m) => m.type === 'ClientHello').map(tracedHello);
      const tracedHvr = tracedHello(msgs.find((m) => m.type === 'HelloVerifyRequest')!);
      const tracedSh = tracedHello(msgs.find((m) => m.type === 'ServerHello')!);
      const { client, server } = exchange(name);

      const hellos = client.filter((m) => m.msgType === 1);
      expect(hellos.map((m) => m.messageSeq)).toEqual([0, 1]);
      for (const [i, m] of hellos.entries()) {
        const ch = parseClientHello(m.body, 'dtls');
        expect(ch.status).toBe('done');
        if (ch.status !== 'done') continue;
        expect(ch.value.legacyVersion).toBe(tracedCh[i].version);
        expect(ch.value.cipherSuites).toEqual(tracedCh[i].ciphers);
        const types = ch.value.extensions.map((e) => e.type);
        if (name === 'openssl-dtls12-frag') {
          // OpenSSL's -trace decodes a fragmented DTLS message from its fragments' bytes, fragment
          // headers included, and gives up half way ("Message length parse error!"): what it did
          // decode must be where we have it.
          expect(trace).toContain('Message length parse error!');
          expect(types.slice(0, tracedCh[i].extensions.length)).toEqual(tracedCh[i].extensions);
          expect(types).toEqual([0, 11, 10, 35, 16, 22, 23, 13]);
        } else {
          expect(types).toEqual(tracedCh[i].extensions);
        }
        expect(Buffer.from(ch.value.cookie!).toString('hex')).toBe(tracedCh[i].cookie);
        expect(ch.value.sni).toBe('example.com');
      }

      const hvr = parseHelloVerifyRequest(server.find((m) => m.msgType === 3)!.body);
      expect(hvr.status).toBe('done');
      if (hvr.status === 'done') {
        expect(hvr.value.serverVersion).toBe(tracedHvr.version);
        expect(Buffer.from(hvr.value.cookie).toString('hex')).toBe(tracedHvr.cookie);
      }

      const sh = parseServerHello(server.find((m) => m.msgType === 2)!.body, 'dtls');
      expect(sh.status).toBe('done');
      if (sh.status !== 'done') return;
      expect(sh.value.legacyVersion).toBe(tracedSh.version);
      expect([sh.value.cipherSuite]).toEqual(tracedSh.ciphers);
      const summary = sessionSummary(trace);
      expect(tlsVersionFromWire(sh.value.version)).toBe(tlsVersionFromName(summary.protocol));
      expect(ianaCipherName(sh.value.cipherSuite)).toBe(opensslStandardName(summary.cipher));
      expect(ianaCipherName(sh.value.cipherSuite)).toBe(wiresharkCipherName(sh.value.cipherSuite));
    });
  }

  it("a DTLS 1.2 client's first record says 0xfeff, and detection still finds DTLS", () => {
    const first = dtlsDatagrams('openssl-dtls12')[0].bytes;
    expect((first[1] << 8) | first[2]).toBe(0xfeff);
    const records = splitDtlsRecords(first);
    expect(records.status === 'done' && records.value[0].epoch).toBe(0);
    expect(detectDatagram(first)).toBe('dtls');
    for (const d of dtlsDatagrams('openssl-dtls12-frag')
      .filter((d) => d.dir === 'c')
      .slice(0, 4)) {
      expect(detectDatagram(d.bytes)).toBe('dtls');
    }
  });

  it('the fragmented ClientHello came in 4 datagrams and is reassembled in any order, with duplicates', () => {
    const frags = dtlsDatagrams('openssl-dtls12-frag')
      .filter((d) => d.dir === 'c')
      .slice(0, 4);
    for (const d of frags) {
      const rec = splitDtlsRecords(d.bytes);
      expect(rec.status).toBe('done');
      if (rec.status !== 'done') continue;
      const hs = splitDtlsHandshakeFragments(rec.value[0].fragment);
      expect(hs.status === 'done' && hs.value[0].fragmentLength < hs.value[0].length).toBe(true);
    }
    const inOrder = parseDtlsClientHello(frags.map((d) => d.bytes));
    expect(inOrder.status).toBe('done');
    expect(parseDtlsClientHello(frags.slice(0, 3).map((d) => d.bytes)).status).toBe('need-more');
    fc.assert(
      fc.property(
        fc.shuffledSubarray(
          [0, 1, 2, 3, 0, 1, 2, 3].map((i) => frags[i].bytes),
          { minLength: 8, maxLength: 8 },
        ),
        (order) => {
          const r = parseDtlsClientHello(order);
          expect(r.status).toBe('done');
          if (r.status === 'done' && inOrder.status === 'done') {
            expect(r.value.cipherSuites).toEqual(inOrder.value.cipherSuites);
            expect(r.value.alpnProtocols).toEqual(inOrder.value.alpnProtocols);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('parses the ServerHello out of the server datagrams', () => {
    const sh = parseDtlsServerHello(
      dtlsDatagrams('openssl-dtls12')
        .filter((d) => d.dir === 's')
        .map((d) => d.bytes),
    );
    expect(sh.status === 'done' && tlsVersionFromWire(sh.value.version)).toBe('DTLSv1.2');
  });
});

describe('DTLS reassembly of overlapping fragments', () => {
  const body = clientHelloBody({
    version: 0xfefd,
    cookie: new Uint8Array(0),
    ciphers: Array.from({ length: 40 }, (_, i) => 0xc000 + i),
    extensions: [sniExt('overlap.example'), supportedVersionsExt([0xfefc, 0xfefd])],
  });

  it('reassembles any cover of the message by overlapping pieces, in any order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(body.length - 1), fc.integer({ min: 1, max: 64 })), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.integer(),
        (pieces, seed) => {
          // Make sure the pieces cover everything: add a tiling of 50-byte pieces.
          const all = [...pieces];
          for (let o = 0; o < body.length; o += 50) all.push([o, 50]);
          const shuffled = fc.sample(
            fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
            {
              seed,
              numRuns: 1,
            },
          )[0];
          const datagrams = shuffled.map(([o, n], i) =>
            dtlsRecord(22, 0xfefd, 0, i, dtlsFragment(1, 0, body, o, Math.min(n, body.length - o))),
          );
          const r = parseDtlsClientHello(datagrams);
          expect(r.status).toBe('done');
          if (r.status === 'done') {
            expect(r.value.sni).toBe('overlap.example');
            expect(r.value.supportedVersions).toEqual([0xfefc, 0xfefd]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('DTLS 1.3 is announced in supported_versions (JA4 d3)', () => {
    const hello = parseDtlsClientHello([
      dtlsRecord(22, 0xfefd, 0, 0, dtlsFragment(1, 0, body, 0, body.length)),
    ]);
    expect(hello.status).toBe('done');
    if (hello.status === 'done') expect(ja4(hello.value).ja4.slice(0, 3)).toBe('dd3');
  });

  it('rejects fragments that rewrite bytes already held, and ones that disagree on the length', () => {
    const r = new DtlsHandshakeReassembler();
    expect(r.pushDatagram(dtlsRecord(22, 0xfefd, 0, 0, dtlsFragment(1, 0, body, 0, 40))).status).toBe('done');
    const evil = body.slice();
    evil[10] ^= 0xff;
    const bad = r.pushDatagram(dtlsRecord(22, 0xfefd, 0, 1, dtlsFragment(1, 0, evil, 5, 20)));
    expect(bad.status === 'error' && bad.error.code).toBe('inconsistent-fragment');
    const other = r.pushDatagram(
      dtlsRecord(22, 0xfefd, 0, 2, dtlsFragment(1, 0, body.subarray(0, 50), 40, 10)),
    );
    expect(other.status === 'error' && other.error.code).toBe('fragment-mismatch');
    // The bad datagrams were dropped; the message still completes.
    const rest = r.pushDatagram(dtlsRecord(22, 0xfefd, 0, 3, dtlsFragment(1, 0, body, 40, body.length - 40)));
    expect(rest.status === 'done' && rest.value.length).toBe(1);
  });

  it('bounds memory: message length, pending messages, pieces', () => {
    const r = new DtlsHandshakeReassembler({
      maxMessageLength: 100,
      maxPendingMessages: 2,
      maxRangesPerMessage: 3,
    });
    const huge = r.pushFragment({
      msgType: 1,
      length: 1 << 20,
      messageSeq: 0,
      fragmentOffset: 0,
      fragmentLength: 1,
      fragment: new Uint8Array(1),
    });
    expect(huge.status === 'error' && huge.error.code).toBe('message-too-large');
    const frag = (seq: number, off: number) => ({
      msgType: 1,
      length: 100,
      messageSeq: seq,
      fragmentOffset: off,
      fragmentLength: 1,
      fragment: new Uint8Array(1),
    });
    expect(r.pushFragment(frag(0, 0)).status).toBe('done');
    expect(r.pushFragment(frag(1, 0)).status).toBe('done');
    const third = r.pushFragment(frag(2, 0));
    expect(third.status === 'error' && third.error.code).toBe('too-many-messages');
    r.pushFragment(frag(0, 10));
    r.pushFragment(frag(0, 20));
    const many = r.pushFragment(frag(0, 30));
    expect(many.status === 'error' && many.error.code).toBe('too-many-fragments');
    expect(r.bufferedBytes).toBe(200);
  });
});

describe('DTLSv0.9 and record edge cases', () => {
  it('parses DTLSv0.9 (0x0100) records: openssl-dtls1 rewritten to DTLS1_BAD_VER', () => {
    const first = dtlsDatagrams('openssl-dtls1')[0].bytes.slice();
    first[1] = 0x01;
    first[2] = 0x00; // record version
    first[25] = 0x01;
    first[26] = 0x00; // client_version, after the 13-byte record and 12-byte handshake headers
    expect(detectDatagram(first)).toBe('dtls');
    const ch = parseDtlsClientHello([first]);
    expect(ch.status).toBe('done');
    if (ch.status === 'done') expect(tlsVersionFromWire(ch.value.legacyVersion)).toBe('DTLSv0.9');
  });

  it('reads several records per datagram and the 48-bit sequence number', () => {
    const a = dtlsRecord(22, 0xfefd, 0, 0x123456789a, dtlsFragment(1, 0, new Uint8Array(4), 0, 4));
    const b = dtlsRecord(20, 0xfefd, 0, 1, Uint8Array.from([1]));
    const both = new Uint8Array([...a, ...b]);
    const r = splitDtlsRecords(both);
    expect(r.status).toBe('done');
    if (r.status !== 'done') return;
    expect(r.value.map((x) => x.contentType)).toEqual([22, 20]);
    expect(r.value[0].sequence).toBe(0x123456789a);
    const cut = splitDtlsRecords(both.subarray(0, both.length - 1));
    expect(cut.status === 'error' && cut.error.code).toBe('truncated');
  });

  it('HelloVerifyRequest errors', () => {
    expect(parseHelloVerifyRequest(Uint8Array.from([0xfe, 0xff, 5, 1])).status).toBe('error');
    expect(parseHelloVerifyRequest(Uint8Array.from([0xfe, 0xff, 0, 1])).status).toBe('error');
    expect(parseHelloVerifyRequest(Uint8Array.from([0xfe, 0xff, 0])).status).toBe('done');
  });
});
