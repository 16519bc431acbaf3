/**
 * Real handshakes between ngtcp2's gtlsclient and gtlsserver (GnuTLS), captured on loopback
 * (test/fixtures/quic/captures/, README there). The ServerHello cipher we hand over is checked
 * against what the client printed and what tshark, which decrypts Initials by itself, saw.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decryptInitial,
  deriveInitialKeys,
  type InitialHandshake,
  InitialKeyCache,
  InitialTracker,
  type LongHeaderPacket,
  parseDatagram,
  QUIC_V2,
  type QuicSender,
} from '../../../src/handshake/quic/index.js';
import { buildLongPacket, concat, FIXTURES, hex, toHex } from './helpers.js';
import {
  GNUTLS_CIPHER_CODES,
  helloRandom,
  keyShareGroups,
  serverHelloCipher,
  serverHelloExtensions,
  sni,
} from './tls-peek.js';

interface Capture {
  readonly name: string;
  readonly description: string;
  readonly client: { readonly negotiatedCipherSuite: string; readonly negotiatedAlpn: string };
  readonly tshark: { readonly serverHellos: { cipherSuite: string; random: string }[]; readonly sni: string };
  readonly datagrams: { readonly from: QuicSender; readonly hex: string }[];
}

interface Datagram {
  readonly from: QuicSender;
  readonly bytes: Uint8Array;
}

const NAMES = [
  'aes-128-gcm',
  'aes-256-gcm',
  'chacha20-poly1305',
  'aes-128-ccm',
  'hello-retry-request',
  'retry',
];

function load(name: string): { capture: Capture; datagrams: Datagram[] } {
  const capture = JSON.parse(readFileSync(`${FIXTURES}captures/${name}.json`, 'utf8')) as Capture;
  return { capture, datagrams: capture.datagrams.map((d) => ({ from: d.from, bytes: hex(d.hex) })) };
}

function feed(tracker: InitialTracker, datagrams: readonly Datagram[]): InitialHandshake {
  for (const [i, d] of datagrams.entries()) {
    const result = tracker.receive(d.bytes, d.from);
    if (result.status === 'error') throw new Error(`datagram ${i} (${d.from}): ${result.error.message}`);
  }
  return tracker.handshake;
}

function firstClientInitial(datagrams: readonly Datagram[]): LongHeaderPacket {
  const parsed = parseDatagram(datagrams.find((d) => d.from === 'client')!.bytes);
  if (parsed.status !== 'done') throw new Error('first client datagram does not parse');
  return parsed.value.packets[0] as LongHeaderPacket;
}

const summary = (h: InitialHandshake) => ({
  clientHello: h.clientHello && toHex(h.clientHello),
  retriedClientHello: h.retriedClientHello && toHex(h.retriedClientHello),
  helloRetryRequest: h.helloRetryRequest && toHex(h.helloRetryRequest),
  serverHello: h.serverHello && toHex(h.serverHello),
  clientMessages: h.clientMessages.map(toHex),
  serverMessages: h.serverMessages.map(toHex),
});

describe.each(NAMES)('capture %s', (name) => {
  const { capture, datagrams } = load(name);

  it('yields the ClientHello and the ServerHello that the peers and tshark saw', () => {
    const handshake = feed(new InitialTracker(), datagrams);
    expect(handshake.version).toBe(1);
    expect(handshake.clientHello?.[0]).toBe(1);
    expect(sni(handshake.clientHello!)).toBe(capture.tshark.sni);
    expect(sni(handshake.clientHello!)).toBe('localhost');
    const serverHello = handshake.serverHello!;
    expect(serverHello[0]).toBe(2);
    const finalHello = capture.tshark.serverHellos.at(-1)!;
    expect(serverHelloCipher(serverHello)).toBe(Number(finalHello.cipherSuite));
    expect(serverHelloCipher(serverHello)).toBe(GNUTLS_CIPHER_CODES[capture.client.negotiatedCipherSuite]);
    expect(toHex(helloRandom(serverHello))).toBe(finalHello.random);
    // The Initial space carries nothing but the hellos.
    expect(handshake.clientMessages.every((m) => m[0] === 1)).toBe(true);
    expect(handshake.serverMessages.every((m) => m[0] === 2)).toBe(true);
  });

  it('gives the same messages whatever the order and with duplicates', () => {
    const reference = summary(feed(new InitialTracker(), datagrams));
    const header = firstClientInitial(datagrams);
    // Datagrams protected after a Retry cannot be opened before it arrives: keep what precedes
    // and includes the Retry in place and shuffle the rest.
    const retryAt = datagrams.findIndex((d) => d.from === 'server' && (d.bytes[0]! & 0xb0) === 0xb0);
    const fixed = retryAt >= 0 ? retryAt + 1 : 0;
    fc.assert(
      fc.property(
        fc.shuffledSubarray(datagrams.slice(fixed), { minLength: datagrams.length - fixed }),
        fc.array(fc.nat(datagrams.length - fixed - 1), { maxLength: 4 }),
        (shuffled, duplicates) => {
          const tracker = new InitialTracker({ originalDcid: header.dcid, version: header.version });
          const order = [...datagrams.slice(0, fixed), ...shuffled, ...duplicates.map((i) => shuffled[i]!)];
          expect(summary(feed(tracker, order))).toEqual(reference);
        },
      ),
      { numRuns: 40 },
    );
    const reversed = new InitialTracker({ originalDcid: header.dcid, version: header.version });
    expect(
      summary(feed(reversed, [...datagrams.slice(0, fixed), ...datagrams.slice(fixed).reverse()])),
    ).toEqual(reference);
  });

  it('decryptInitial opens every Initial of the capture with the client DCID', () => {
    const header = firstClientInitial(datagrams);
    const cache = new InitialKeyCache();
    let initials = 0;
    const retry = datagrams.find((d) => d.from === 'server' && (d.bytes[0]! & 0xb0) === 0xb0);
    for (const d of datagrams) {
      if (d === retry) continue;
      const parsed = parseDatagram(d.bytes, 0);
      if (parsed.status !== 'done') continue;
      const first = parsed.value.packets[0]!;
      if (first.form !== 'long' || first.type !== 'initial') continue;
      // After a Retry, Initial keys come from the Retry's SCID, which the client then uses as DCID.
      const afterRetry = retry !== undefined && datagrams.indexOf(d) > datagrams.indexOf(retry);
      const keyDcid = afterRetry ? retryScid(retry) : header.dcid;
      const result = decryptInitial(d.bytes, keyDcid, d.from, { keyCache: cache });
      expect(result.status, `datagram ${datagrams.indexOf(d)}`).toBe('done');
      if (result.status === 'done') initials += result.value.length;
    }
    expect(initials).toBeGreaterThanOrEqual(2);
    expect(cache.size).toBe(retry ? 2 : 1);
  });
});

function retryScid(retry: Datagram): Uint8Array {
  const parsed = parseDatagram(retry.bytes);
  if (parsed.status !== 'done' || parsed.value.packets[0]!.form !== 'retry') throw new Error('not a Retry');
  return parsed.value.packets[0]!.scid;
}

describe('capture hello-retry-request', () => {
  const { capture, datagrams } = load('hello-retry-request');

  it('exposes the HelloRetryRequest and both ClientHellos', () => {
    const handshake = feed(new InitialTracker(), datagrams);
    const [hrr, final] = capture.tshark.serverHellos;
    expect(toHex(helloRandom(handshake.helloRetryRequest!))).toBe(hrr!.random);
    expect(toHex(helloRandom(handshake.serverHello!))).toBe(final!.random);
    expect(handshake.clientMessages).toHaveLength(2);
    expect(handshake.serverMessages).toHaveLength(2);
    // The first ClientHello shares x25519 and secp256r1; the HRR asks for secp384r1; the second shares it.
    expect(keyShareGroups(handshake.clientHello!)).toEqual([0x001d, 0x0017]);
    expect(toHex(serverHelloExtensions(handshake.helloRetryRequest!).get(51)!)).toBe('0018');
    expect(keyShareGroups(handshake.retriedClientHello!)).toEqual([0x0018]);
    expect(handshake.retriedClientHello).toEqual(handshake.clientMessages[1]);
  });
});

describe('capture retry', () => {
  const { datagrams } = load('retry');

  it('follows the Retry: later Initials use keys from its SCID', () => {
    const handshake = feed(new InitialTracker(), datagrams);
    expect(handshake.retry).toBeDefined();
    expect(toHex(handshake.retry!.scid)).toBe(toHex(retryScid(datagrams[1]!)));
    expect(handshake.retry!.token.length).toBeGreaterThan(0);
    expect(handshake.serverHello).toBeDefined();
  });

  it('rejects a Retry whose integrity tag does not verify, and stays on the original keys', () => {
    const tracker = new InitialTracker();
    expect(tracker.receive(datagrams[0]!.bytes, 'client').status).toBe('done');
    const forged = Uint8Array.from(datagrams[1]!.bytes);
    forged[forged.length - 1]! ^= 1;
    const result = tracker.receive(forged, 'server');
    expect(result.status === 'error' && result.error.code).toBe('quic-retry-integrity');
    expect(tracker.handshake.retry).toBeUndefined();
  });
});

describe('capture hello-retry-request, re-protected as QUIC v2', () => {
  const { datagrams } = load('hello-retry-request');

  it('gives the same messages as in v1', () => {
    const header = firstClientInitial(datagrams);
    const v2Keys = deriveInitialKeys(QUIC_V2, header.dcid);
    const v2: Datagram[] = [];
    for (const d of datagrams) {
      const opened = decryptInitial(d.bytes, header.dcid, d.from);
      if (opened.status !== 'done' || opened.value.length === 0) continue;
      const packets = opened.value.map((p) =>
        buildLongPacket({
          version: QUIC_V2,
          dcid: p.header.dcid,
          scid: p.header.scid,
          token: p.header.token,
          packetNumber: p.packetNumber,
          pnLength: ((p.firstByte & 3) + 1) as 1 | 2 | 3 | 4,
          payload: p.payload,
          protector: v2Keys[d.from],
        }),
      );
      v2.push({ from: d.from, bytes: concat(...packets) });
    }
    expect(v2.length).toBeGreaterThanOrEqual(4);
    expect((v2[0]!.bytes[0]! >> 4) & 3).toBe(1);
    const v1Handshake = feed(new InitialTracker(), datagrams);
    const v2Handshake = feed(new InitialTracker(), v2);
    expect(v2Handshake.version).toBe(QUIC_V2);
    expect(summary(v2Handshake)).toEqual(summary(v1Handshake));
  });
});
