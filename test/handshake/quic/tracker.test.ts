import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decryptInitial,
  deriveInitialKeys,
  encodeVarint,
  InitialKeyCache,
  InitialTracker,
  isHelloRetryRequest,
  QUIC_V1,
  QUIC_V2,
  type QuicVersion,
} from '../../../src/handshake/quic/index.js';
import { buildLongPacket, concat, cryptoFrame, hex, toHex } from './helpers.js';

const DCID = hex('c0ffee0000000001');
const CLIENT_SCID = hex('a1a2a3a4');
const SERVER_SCID = hex('b1b2b3b4b5');
const HRR_RANDOM = 'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c';

/** A fake handshake message of `type` with a `length`-byte body. */
function message(type: number, length: number, fill?: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + length);
  out.set([type, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  out.set(fill ?? randomBytes(length), 4);
  return out;
}

function serverHello(random: string): Uint8Array {
  const body = concat(hex('0303'), hex(random), hex('00'), hex('1301'), hex('00'), hex('0000'));
  return concat(Uint8Array.of(2, 0, 0, body.length), body);
}

function client(
  version: QuicVersion,
  packetNumber: number,
  payload: Uint8Array,
  dcid = DCID,
  keyDcid = DCID,
) {
  return buildLongPacket({
    version,
    dcid,
    scid: CLIENT_SCID,
    packetNumber,
    payload,
    protector: deriveInitialKeys(version, keyDcid).client,
  });
}

function server(version: QuicVersion, packetNumber: number, payload: Uint8Array, keyDcid = DCID) {
  return buildLongPacket({
    version,
    dcid: CLIENT_SCID,
    scid: SERVER_SCID,
    packetNumber,
    pnLength: 2,
    payload,
    protector: deriveInitialKeys(version, keyDcid).server,
  });
}

/** Pads a client datagram to 1200 bytes with zeros after the packet, as some stacks do. */
const padded = (packet: Uint8Array) => concat(packet, new Uint8Array(Math.max(0, 1200 - packet.length)));

describe('InitialTracker', () => {
  it.each([QUIC_V1, QUIC_V2] as const)(
    'reassembles a ClientHello split over two datagrams, received out of order (version %i)',
    (version) => {
      const hello = message(1, 2400);
      // Chrome-style: CRYPTO frames shuffled within a packet, PING and PADDING in between.
      const first = concat(
        cryptoFrame(700, hello.subarray(700, 1150)),
        hex('01'),
        cryptoFrame(0, hello.subarray(0, 700)),
        new Uint8Array(5),
      );
      const second = concat(
        cryptoFrame(1500, hello.subarray(1500)),
        cryptoFrame(1150, hello.subarray(1150, 1500)),
      );
      const tracker = new InitialTracker({ version, originalDcid: DCID });
      const early = tracker.receive(padded(client(version, 1, second)), 'client');
      expect(early.status === 'done' && early.value.clientHello).toBeUndefined();
      const result = tracker.receive(padded(client(version, 0, first)), 'client');
      expect(result.status).toBe('done');
      if (result.status !== 'done') return;
      expect(toHex(result.value.clientHello!)).toBe(toHex(hello));
      expect(result.value.version).toBe(version);
    },
  );

  it('learns the version and the original DCID from the first client Initial', () => {
    const tracker = new InitialTracker();
    tracker.receive(client(QUIC_V2, 0, cryptoFrame(0, message(1, 300))), 'client');
    const { version, originalDcid } = tracker.handshake;
    expect(version).toBe(QUIC_V2);
    expect(toHex(originalDcid!)).toBe(toHex(DCID));
  });

  it('opens server Initials with keys from the client DCID, coalesced with a Handshake packet', () => {
    const tracker = new InitialTracker();
    tracker.receive(client(QUIC_V1, 0, cryptoFrame(0, message(1, 300))), 'client');
    const hello = serverHello('11'.repeat(32));
    const handshakePacket = buildLongPacket({
      version: QUIC_V1,
      type: 'handshake',
      dcid: CLIENT_SCID,
      scid: SERVER_SCID,
      packetNumber: 0,
      payload: randomBytes(200),
      protector: deriveInitialKeys(QUIC_V1, hex('0000')).server,
    });
    const datagram = concat(
      server(QUIC_V1, 0, concat(hex('0200000000'), cryptoFrame(0, hello))),
      handshakePacket,
    );
    const result = tracker.receive(datagram, 'server');
    expect(result.status).toBe('done');
    expect(result.status === 'done' && toHex(result.value.serverHello!)).toBe(toHex(hello));
  });

  it('exposes a HelloRetryRequest, the ServerHello after it and the second ClientHello', () => {
    const hello1 = message(1, 300);
    const hello2 = message(1, 350);
    const hrr = serverHello(HRR_RANDOM);
    const sh = serverHello('22'.repeat(32));
    expect(isHelloRetryRequest(hrr)).toBe(true);
    expect(isHelloRetryRequest(sh)).toBe(false);
    const tracker = new InitialTracker();
    tracker.receive(client(QUIC_V1, 0, cryptoFrame(0, hello1)), 'client');
    tracker.receive(server(QUIC_V1, 0, cryptoFrame(0, hrr)), 'server');
    // The client now addresses the server's SCID, still with keys from the original DCID.
    tracker.receive(client(QUIC_V1, 1, cryptoFrame(hello1.length, hello2), SERVER_SCID), 'client');
    const result = tracker.receive(server(QUIC_V1, 1, cryptoFrame(hrr.length, sh)), 'server');
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    expect(toHex(result.value.clientHello!)).toBe(toHex(hello1));
    expect(toHex(result.value.helloRetryRequest!)).toBe(toHex(hrr));
    expect(toHex(result.value.retriedClientHello!)).toBe(toHex(hello2));
    expect(toHex(result.value.serverHello!)).toBe(toHex(sh));
  });

  it('follows compatible version negotiation: client Initial in v1, server Initial in v2', () => {
    const tracker = new InitialTracker();
    tracker.receive(client(QUIC_V1, 0, cryptoFrame(0, message(1, 300))), 'client');
    const sh = serverHello('33'.repeat(32));
    expect(tracker.handshake.version).toBe(QUIC_V1);
    const result = tracker.receive(server(QUIC_V2, 0, cryptoFrame(0, sh)), 'server');
    expect(result.status === 'done' && toHex(result.value.serverHello!)).toBe(toHex(sh));
    expect(tracker.handshake.version).toBe(QUIC_V2);
  });

  it('records a Version Negotiation packet and a CONNECTION_CLOSE', () => {
    const tracker = new InitialTracker();
    tracker.receive(client(QUIC_V1, 0, cryptoFrame(0, message(1, 300))), 'client');
    const vn = concat(
      hex('80'),
      hex('00000000'),
      Uint8Array.of(4),
      CLIENT_SCID,
      Uint8Array.of(8),
      DCID,
      hex('6b3343cf'),
    );
    tracker.receive(vn, 'server');
    const close = concat(hex('1c'), encodeVarint(0x128), hex('06'), hex('05'), Buffer.from('no h3'));
    const result = tracker.receive(server(QUIC_V1, 0, close), 'server');
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    expect(result.value.versionNegotiation).toEqual([QUIC_V2]);
    expect(result.value.connectionClose).toEqual({
      sender: 'server',
      frame: { errorCode: 0x128n, frameType: 6, reason: 'no h3' },
    });
  });

  it('returns typed errors and keeps its state', () => {
    const hello = message(1, 300);
    const tracker = new InitialTracker();
    const serverFirst = tracker.receive(
      server(QUIC_V1, 0, cryptoFrame(0, serverHello('44'.repeat(32)))),
      'server',
    );
    expect(serverFirst.status === 'error' && serverFirst.error.code).toBe('quic-keys-unknown');

    const good = client(QUIC_V1, 0, cryptoFrame(0, hello.subarray(0, 100)));
    const tampered = Uint8Array.from(good);
    tampered[tampered.length - 20]! ^= 0x40;
    const bad = tracker.receive(tampered, 'client');
    expect(bad.status === 'error' && bad.error.code).toBe('quic-decryption-failed');
    expect(tracker.receive(good, 'client').status).toBe('done');

    const reserved = buildLongPacket({
      version: QUIC_V1,
      dcid: DCID,
      scid: CLIENT_SCID,
      packetNumber: 1,
      payload: cryptoFrame(100, hello.subarray(100)),
      protector: deriveInitialKeys(QUIC_V1, DCID).client,
      reservedBits: 2,
    });
    const reservedResult = tracker.receive(reserved, 'client');
    expect(reservedResult.status === 'error' && reservedResult.error.code).toBe('quic-reserved-bits');

    const stream = tracker.receive(client(QUIC_V1, 2, hex('0800')), 'client');
    expect(stream.status === 'error' && stream.error.code).toBe('quic-frame-not-allowed');

    const token = buildLongPacket({
      version: QUIC_V1,
      dcid: CLIENT_SCID,
      scid: SERVER_SCID,
      token: hex('abcd'),
      packetNumber: 0,
      payload: hex('01'),
      protector: deriveInitialKeys(QUIC_V1, DCID).server,
    });
    const tokenResult = tracker.receive(token, 'server');
    expect(tokenResult.status === 'error' && tokenResult.error.code).toBe('quic-invalid-header');

    // None of the failures above touched the stream: the rest completes the ClientHello.
    const rest = tracker.receive(client(QUIC_V1, 3, cryptoFrame(100, hello.subarray(100))), 'client');
    expect(rest.status === 'done' && toHex(rest.value.clientHello!)).toBe(toHex(hello));
  });

  it('bounds each CRYPTO stream', () => {
    const tracker = new InitialTracker({ maxCryptoBytes: 4096 });
    const result = tracker.receive(client(QUIC_V1, 0, cryptoFrame(4000, new Uint8Array(200))), 'client');
    expect(result.status === 'error' && result.error.code).toBe('quic-crypto-buffer-exceeded');
  });

  it('shares derived keys through a caller-owned cache', () => {
    const cache = new InitialKeyCache(2);
    const packet = client(QUIC_V1, 0, cryptoFrame(0, message(1, 300)));
    for (let i = 0; i < 3; i++) new InitialTracker({ keyCache: cache }).receive(packet, 'client');
    expect(cache.size).toBe(1);
    cache.get(QUIC_V2, DCID);
    cache.get(QUIC_V1, hex('01'));
    expect(cache.size).toBe(2);
  });
});

describe('decryptInitial', () => {
  it('skips a short header datagram and packets of other types', () => {
    const short = concat(hex('41'), DCID, randomBytes(40));
    expect(decryptInitial(short, DCID, 'client')).toEqual({
      status: 'done',
      value: [],
      consumed: short.length,
    });
  });

  it('rejects keys of another version', () => {
    const packet = client(QUIC_V2, 0, hex('01'));
    const result = decryptInitial(packet, deriveInitialKeys(QUIC_V1, DCID), 'client');
    expect(result.status === 'error' && result.error.code).toBe('quic-version-mismatch');
  });

  it('decrypts every Initial of a coalesced datagram, expanding packet numbers', () => {
    const datagram = concat(client(QUIC_V1, 300, hex('01')), client(QUIC_V1, 301, hex('01')));
    const result = decryptInitial(datagram, DCID, 'client', { largestPacketNumber: 290 });
    expect(result.status === 'done' && result.value.map((p) => p.packetNumber)).toEqual([300, 301]);
  });

  it('needs 20 bytes after the packet number start for the header protection sample', () => {
    const packet = client(QUIC_V1, 0, hex('01'));
    // Shrink the Length field so the packet ends before the sample does.
    const cut = Uint8Array.from(packet.subarray(0, packet.length - 10));
    const lengthAt = 1 + 4 + 1 + DCID.length + 1 + CLIENT_SCID.length + 1;
    cut.set(encodeVarint(packet.length - 10 - lengthAt - 2, 2), lengthAt);
    const result = decryptInitial(cut, DCID, 'client');
    expect(result.status === 'error' && result.error.code).toBe('quic-truncated');
  });
});
