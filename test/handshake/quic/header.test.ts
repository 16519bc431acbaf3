import { describe, expect, it } from 'vitest';
import {
  deriveInitialKeys,
  isQuicGreaseVersion,
  isSupportedVersion,
  longPacketType,
  parseDatagram,
  parsePacketHeader,
  QUIC_V1,
  QUIC_V2,
  quicVersionFromWire,
} from '../../../src/handshake/quic/index.js';
import { buildLongPacket, concat, cryptoFrame, hex, toHex } from './helpers.js';

const DCID = hex('8394c8f03e515708');
const SCID = hex('f067a5502a4262b5');
const keys = (version: typeof QUIC_V1 | typeof QUIC_V2) => deriveInitialKeys(version, DCID);

function packet(
  version: typeof QUIC_V1 | typeof QUIC_V2,
  type: 'initial' | '0rtt' | 'handshake',
  payload = cryptoFrame(0, hex('0100000401020304')),
) {
  return buildLongPacket({
    version,
    type,
    dcid: DCID,
    scid: SCID,
    packetNumber: 0,
    payload,
    protector: keys(version).client,
  });
}

describe('versions', () => {
  it('names, support and GREASE', () => {
    expect(quicVersionFromWire(QUIC_V1)).toBe('QUICv1');
    expect(quicVersionFromWire(QUIC_V2)).toBe('QUICv2');
    expect(quicVersionFromWire(0xff00001d)).toBeNull();
    expect(isSupportedVersion(0x6b3343cf)).toBe(true);
    expect(isSupportedVersion(0x709a50c4)).toBe(false);
    expect(isQuicGreaseVersion(0x0a0a0a0a)).toBe(true);
    expect(isQuicGreaseVersion(0x1a2a3a4a)).toBe(true);
    expect(isQuicGreaseVersion(0xfafafafa)).toBe(true);
    expect(isQuicGreaseVersion(QUIC_V1)).toBe(false);
    expect(isQuicGreaseVersion(0x1a2a3a4b)).toBe(false);
  });

  it('long packet types: v1 uses 0b00 for Initial, v2 rotates them (RFC 9369, 3.2)', () => {
    expect(
      ['initial', '0rtt', 'handshake', 'retry'].map((_, i) => longPacketType(QUIC_V1, 0xc0 | (i << 4))),
    ).toEqual(['initial', '0rtt', 'handshake', 'retry']);
    expect(['a', 'b', 'c', 'd'].map((_, i) => longPacketType(QUIC_V2, 0xc0 | (i << 4)))).toEqual([
      'retry',
      'initial',
      '0rtt',
      'handshake',
    ]);
  });
});

describe('parseDatagram', () => {
  it.each([QUIC_V1, QUIC_V2] as const)('reads each long header type of version %i', (version) => {
    for (const type of ['initial', '0rtt', 'handshake'] as const) {
      const bytes = packet(version, type);
      const result = parseDatagram(bytes);
      expect(result.status).toBe('done');
      if (result.status !== 'done') continue;
      const header = result.value.packets[0]!;
      expect(header.form).toBe('long');
      if (header.form !== 'long') continue;
      expect(header.type).toBe(type);
      expect(header.version).toBe(version);
      expect(toHex(header.dcid)).toBe(toHex(DCID));
      expect(toHex(header.scid)).toBe(toHex(SCID));
      expect(header.packetLength).toBe(bytes.length);
    }
    // The first byte tells the type apart: Initial is 0b00 in v1 and 0b01 in v2.
    expect((packet(version, 'initial')[0]! >> 4) & 3).toBe(version === QUIC_V1 ? 0 : 1);
  });

  it('reads the token of an Initial', () => {
    const bytes = buildLongPacket({
      version: QUIC_V1,
      dcid: DCID,
      scid: SCID,
      token: hex('00112233445566778899'),
      packetNumber: 0,
      payload: hex('01'),
      protector: keys(QUIC_V1).client,
    });
    const result = parsePacketHeader(bytes, 0, 0);
    expect(result.status === 'done' && result.value.form === 'long' && toHex(result.value.token)).toBe(
      '00112233445566778899',
    );
    expect(result.status === 'done' && result.consumed).toBe(bytes.length);
  });

  it('walks coalesced packets by Length and counts trailing padding', () => {
    const initial = packet(QUIC_V1, 'initial');
    const handshake = packet(QUIC_V1, 'handshake');
    const result = parseDatagram(concat(initial, handshake, new Uint8Array(300)));
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    expect(result.value.packets.map((p) => (p.form === 'long' ? p.type : p.form))).toEqual([
      'initial',
      'handshake',
    ]);
    expect(result.value.packets[1]!.offset).toBe(initial.length);
    expect(result.value.paddingLength).toBe(300);
  });

  it('reads a coalesced short header packet with the DCID length of the long one before it', () => {
    const short = concat(Uint8Array.of(0x41), DCID, hex('00112233445566778899aabbccddeeff0011'));
    const result = parseDatagram(concat(packet(QUIC_V1, 'handshake'), short));
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    const last = result.value.packets[1]!;
    expect(last.form).toBe('short');
    expect(last.form === 'short' && toHex(last.dcid)).toBe(toHex(DCID));
  });

  it('needs the DCID length for a datagram that starts with a short header', () => {
    const short = concat(Uint8Array.of(0x41), DCID, hex('00112233445566778899aabbccddeeff0011'));
    const unknown = parseDatagram(short);
    expect(unknown.status === 'error' && unknown.error.code).toBe('quic-short-dcid-length-unknown');
    const known = parseDatagram(short, 8);
    expect(known.status === 'done' && known.value.packets[0]!.form === 'short').toBe(true);
    const header = known.status === 'done' ? known.value.packets[0]! : undefined;
    expect(header?.form === 'short' && toHex(header.dcid)).toBe(toHex(DCID));
  });

  it('reads a Version Negotiation packet', () => {
    const vn = concat(
      hex('c5'),
      hex('00000000'),
      hex('04'),
      hex('01020304'),
      hex('08'),
      DCID,
      hex('6b3343cf000000011a2a3a4a'),
    );
    const result = parseDatagram(vn);
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    const header = result.value.packets[0]!;
    expect(header.form).toBe('version-negotiation');
    if (header.form !== 'version-negotiation') return;
    expect(header.versions).toEqual([QUIC_V2, QUIC_V1, 0x1a2a3a4a]);
    expect(toHex(header.dcid)).toBe('01020304');
    const broken = parseDatagram(vn.subarray(0, vn.length - 1));
    expect(broken.status === 'error' && broken.error.code).toBe('quic-invalid-version-negotiation');
  });

  it('reads only the invariant fields of a GREASE or unknown version, with CIDs up to 255 bytes', () => {
    const longCid = new Uint8Array(40).fill(7);
    const bytes = concat(
      hex('c0'),
      hex('1a2a3a4a'),
      Uint8Array.of(40),
      longCid,
      hex('00'),
      new Uint8Array(1100),
    );
    const result = parseDatagram(bytes);
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    const header = result.value.packets[0]!;
    expect(header.form).toBe('unsupported-version');
    expect(header.form === 'unsupported-version' && header.version).toBe(0x1a2a3a4a);
    expect(header.packetLength).toBe(bytes.length);
  });

  it('rejects a connection ID over 20 bytes in v1 and v2', () => {
    const bytes = concat(
      hex('c0'),
      hex('00000001'),
      Uint8Array.of(21),
      new Uint8Array(21),
      hex('00'),
      new Uint8Array(100),
    );
    const result = parseDatagram(bytes);
    expect(result.status === 'error' && result.error.code).toBe('quic-cid-too-long');
    expect(result.status === 'error' && result.error.offset).toBe(5);
  });

  it('rejects a Length that runs past the datagram, and every truncation of a packet', () => {
    const bytes = packet(QUIC_V2, 'initial');
    for (let cut = 0; cut < bytes.length; cut++) {
      const result = parseDatagram(bytes.subarray(0, cut));
      expect(result.status, `cut at ${cut}`).toBe('error');
      if (result.status === 'error') expect(result.error.code).toMatch(/^quic-truncated$/);
    }
  });
});
