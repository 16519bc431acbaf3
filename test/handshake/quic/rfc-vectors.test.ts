/**
 * RFC 9001 Appendix A (QUIC v1) and RFC 9369 Appendix A (QUIC v2), byte for byte. The vectors
 * are read from the RFC text kept in test/fixtures/quic/ (sources noted there).
 */
import { describe, expect, it } from 'vitest';
import {
  decryptInitial,
  deriveInitialKeys,
  derivePacketKeys,
  encodeHkdfLabel,
  hkdfExpandLabel,
  InitialTracker,
  PacketProtector,
  parseDatagram,
  QUIC_V1,
  QUIC_V2,
  type QuicVersion,
  verifyRetryIntegrity,
} from '../../../src/handshake/quic/index.js';
import { buildLongPacket, fixtureText, hex, hexAfter, toHex } from './helpers.js';

const DCID = hex('8394c8f03e515708');
const SERVER_SCID = hex('f067a5502a4262b5');

interface Rfc {
  readonly name: string;
  readonly version: QuicVersion;
  readonly text: string;
  readonly prefix: string;
}

const RFCS: readonly Rfc[] = [
  {
    name: 'RFC 9001 (QUIC v1)',
    version: QUIC_V1,
    text: fixtureText('rfc9001-appendix-a.txt'),
    prefix: 'quic',
  },
  {
    name: 'RFC 9369 (QUIC v2)',
    version: QUIC_V2,
    text: fixtureText('rfc9369-appendix-a.txt'),
    prefix: 'quicv2',
  },
];

describe.each(RFCS)('$name appendix A', ({ version, text, prefix }) => {
  const v = (marker: string | RegExp) => hexAfter(text, marker);

  it('A.1: HkdfLabel encodings', () => {
    const empty = new Uint8Array(0);
    expect(toHex(encodeHkdfLabel('client in', empty, 32))).toBe(toHex(v('client in:')));
    expect(toHex(encodeHkdfLabel('server in', empty, 32))).toBe(toHex(v('server in:')));
    expect(toHex(encodeHkdfLabel(`${prefix} key`, empty, 16))).toBe(toHex(v(`${prefix} key:`)));
    expect(toHex(encodeHkdfLabel(`${prefix} iv`, empty, 12))).toBe(toHex(v(`${prefix} iv:`)));
    expect(toHex(encodeHkdfLabel(`${prefix} hp`, empty, 16))).toBe(toHex(v(`${prefix} hp:`)));
  });

  it('A.1: initial, client and server secrets, keys, IVs and header protection keys', () => {
    const keys = deriveInitialKeys(version, DCID);
    expect(toHex(keys.initialSecret)).toBe(toHex(v('HKDF-Extract(initial_salt, cid)')));
    expect(toHex(keys.clientSecret)).toBe(toHex(v('"client in", "", 32)')));
    expect(toHex(keys.serverSecret)).toBe(toHex(v('"server in", "", 32)')));
    expect(toHex(keys.client.keys.key)).toBe(toHex(v(`(client_initial_secret, "${prefix} key", "", 16)`)));
    expect(toHex(keys.client.keys.iv)).toBe(toHex(v(`(client_initial_secret, "${prefix} iv", "", 12)`)));
    expect(toHex(keys.client.keys.hp)).toBe(toHex(v(`(client_initial_secret, "${prefix} hp", "", 16)`)));
    expect(toHex(keys.server.keys.key)).toBe(toHex(v(`(server_initial_secret, "${prefix} key", "", 16)`)));
    expect(toHex(keys.server.keys.iv)).toBe(toHex(v(`(server_initial_secret, "${prefix} iv", "", 12)`)));
    expect(toHex(keys.server.keys.hp)).toBe(toHex(v(`(server_initial_secret, "${prefix} hp", "", 16)`)));
  });

  const clientFrames = v('1162-byte payload:');
  const clientPayload = new Uint8Array(1162);
  clientPayload.set(clientFrames);
  const clientHeader = v('packet number of 2:');
  const clientPacket = v('The resulting protected packet is:');
  const serverPayload = v('and no PADDING frames:');
  const serverHeader = v('packet number of 1:');
  const serverPacket = v('final protected packet is then:');

  it('A.2: the client Initial decrypts to the exact payload', () => {
    expect(clientPacket.length).toBe(1200);
    const result = decryptInitial(clientPacket, DCID, 'client');
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    expect(result.value).toHaveLength(1);
    const packet = result.value[0]!;
    expect(packet.packetNumber).toBe(2);
    expect(toHex(packet.payload)).toBe(toHex(clientPayload));
    expect(packet.header.length).toBe(1182);
    expect(toHex(packet.header.dcid)).toBe(toHex(DCID));
    expect(packet.header.scid).toHaveLength(0);
    expect(packet.header.token).toHaveLength(0);
    // The unprotected header: unprotected first byte, then the header up to the packet number, then it.
    const rebuilt = Uint8Array.from(clientPacket.subarray(0, packet.header.pnOffset + 4));
    rebuilt[0] = packet.firstByte;
    rebuilt.set([0, 0, 0, 2], packet.header.pnOffset);
    expect(toHex(rebuilt)).toBe(toHex(clientHeader));
  });

  it('A.2: sample and mask, and protecting the payload gives the exact packet', () => {
    const keys = deriveInitialKeys(version, DCID);
    const sample = clientPacket.subarray(22, 38);
    expect(toHex(sample)).toBe(toHex(v('sample = ')));
    expect(toHex(keys.client.headerMask(sample).subarray(0, 5))).toBe(
      toHex(v('= AES-ECB(hp, sample)[0..4]')),
    );
    const built = buildLongPacket({
      version,
      dcid: DCID,
      scid: new Uint8Array(0),
      packetNumber: 2,
      payload: clientPayload,
      protector: keys.client,
    });
    expect(toHex(built)).toBe(toHex(clientPacket));
  });

  it('A.3: the server Initial decrypts with keys from the client DCID', () => {
    const result = decryptInitial(serverPacket, DCID, 'server');
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    const packet = result.value[0]!;
    expect(packet.packetNumber).toBe(1);
    expect(toHex(packet.payload)).toBe(toHex(serverPayload));
    expect(toHex(packet.header.scid)).toBe(toHex(SERVER_SCID));
    expect(packet.header.dcid).toHaveLength(0);
    const rebuilt = Uint8Array.from(serverPacket.subarray(0, packet.header.pnOffset + 2));
    rebuilt[0] = packet.firstByte;
    rebuilt.set([0, 1], packet.header.pnOffset);
    expect(toHex(rebuilt)).toBe(toHex(serverHeader));
    const keys = deriveInitialKeys(version, DCID);
    const built = buildLongPacket({
      version,
      dcid: new Uint8Array(0),
      scid: SERVER_SCID,
      packetNumber: 1,
      pnLength: 2,
      payload: serverPayload,
      protector: keys.server,
    });
    expect(toHex(built)).toBe(toHex(serverPacket));
  });

  it('A.2 + A.3: the tracker yields the ClientHello and the ServerHello', () => {
    const tracker = new InitialTracker();
    expect(tracker.receive(clientPacket, 'client').status).toBe('done');
    const result = tracker.receive(serverPacket, 'server');
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    const { clientHello, serverHello, version: seen, originalDcid } = result.value;
    expect(seen).toBe(version);
    expect(toHex(originalDcid!)).toBe(toHex(DCID));
    // CRYPTO frame header is 06 00 40f1: the ClientHello is the 0xf1 bytes after it.
    expect(toHex(clientHello!)).toBe(toHex(clientFrames.subarray(4, 4 + 0xf1)));
    expect(clientHello![0]).toBe(1);
    // ACK (02 00 00 00 00), then CRYPTO 06 00 405a.
    expect(toHex(serverHello!)).toBe(toHex(serverPayload.subarray(9, 9 + 0x5a)));
    expect(result.value.helloRetryRequest).toBeUndefined();
  });

  it('A.4: the Retry parses and its integrity tag verifies against the original DCID', () => {
    const retry = v('in the final Retry packet:');
    const parsed = parseDatagram(retry);
    expect(parsed.status).toBe('done');
    if (parsed.status !== 'done') return;
    const packet = parsed.value.packets[0]!;
    expect(packet.form).toBe('retry');
    if (packet.form !== 'retry') return;
    expect(packet.version).toBe(version);
    expect(toHex(packet.scid)).toBe(toHex(SERVER_SCID));
    expect(Buffer.from(packet.token).toString('latin1')).toBe('token');
    expect(verifyRetryIntegrity(retry, packet, DCID)).toBe(true);
    expect(verifyRetryIntegrity(retry, packet, hex('8394c8f03e515709'))).toBe(false);
  });

  it('A.5: ChaCha20-Poly1305 short header packet', () => {
    const a5 = text.slice(text.indexOf('ChaCha20-Poly1305 Short Header Packet'));
    const v = (marker: string | RegExp) => hexAfter(a5, marker);
    const secret = v(/^\s*secret\s*$/m);
    const keys = derivePacketKeys(secret, 'chacha20-poly1305', version);
    expect(toHex(keys.key)).toBe(toHex(v(`(secret, "${prefix} key", "", 32)`)));
    expect(toHex(keys.iv)).toBe(toHex(v(`(secret, "${prefix} iv", "", 12)`)));
    expect(toHex(keys.hp)).toBe(toHex(v(`(secret, "${prefix} hp", "", 32)`)));
    expect(toHex(hkdfExpandLabel(secret, `${prefix} ku`, new Uint8Array(0), 32))).toBe(
      toHex(v(`(secret, "${prefix} ku", "", 32)`)),
    );
    const packet = v('packet = ');
    const protector = new PacketProtector(keys);
    expect(toHex(protector.headerMask(packet.subarray(5, 21)).subarray(0, 5))).toBe(toHex(v('mask   = ')));
    const opened = protector.unprotect(packet, 0, 1, packet.length, 654360563);
    expect(opened.packetNumber).toBe(654360564);
    expect(opened.pnLength).toBe(3);
    expect(toHex(opened.payload)).toBe(toHex(v('payload plaintext  = ')));
    const header = Uint8Array.of(opened.firstByte, ...packet.subarray(1, 4));
    expect(header[0]).toBe(0x42);
    expect(toHex(protector.seal(654360564, hex('4200bff4'), hex('01')))).toBe(
      toHex(v('payload ciphertext = ')),
    );
  });
});
