import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  encodeVarint,
  type LongPacketType,
  longPacketTypeBits,
  type PacketProtector,
  type QuicVersion,
} from '../../../src/handshake/quic/index.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/quic/', import.meta.url));

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function fixtureText(name: string): string {
  return readFileSync(`${FIXTURES}${name}`, 'utf8');
}

const HEX_LINE = /^[0-9a-f]{2,}( [0-9a-f]{2,})*$/;

/**
 * The first block of hex that follows `marker` in an RFC appendix: hex on the marker's own
 * line after "=" or ":", or on the next lines (inside ~~~ fences or indented), up to the first
 * line that is not hex.
 */
export function hexAfter(text: string, marker: string | RegExp): Uint8Array {
  const match =
    typeof marker === 'string' ? { index: text.indexOf(marker), length: marker.length } : undefined;
  let start: number;
  if (match) {
    if (match.index < 0) throw new Error(`marker not found: ${marker}`);
    start = match.index + match.length;
  } else {
    const found = (marker as RegExp).exec(text);
    if (!found) throw new Error(`marker not found: ${marker}`);
    start = found.index + found[0].length;
  }
  const lines = text.slice(start).split('\n');
  const collected: string[] = [];
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/^\s*[=:]?\s*/, '').trim();
    if (line === '~~~' && collected.length === 0) continue;
    if (HEX_LINE.test(line)) {
      collected.push(line.replace(/ /g, ''));
      continue;
    }
    if (collected.length > 0) break;
    if (i > 6) break;
  }
  if (collected.length === 0) throw new Error(`no hex after ${marker}`);
  return hex(collected.join(''));
}

export interface BuildLongPacket {
  readonly version: QuicVersion;
  readonly type?: Exclude<LongPacketType, 'retry'>;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  readonly token?: Uint8Array;
  readonly packetNumber: number;
  readonly pnLength?: 1 | 2 | 3 | 4;
  /** Frames; padded with PADDING so that the header protection sample fits. */
  readonly payload: Uint8Array;
  readonly protector: PacketProtector;
  /** Overrides the reserved bits (0..3) of the first byte. */
  readonly reservedBits?: number;
}

/** Builds and protects a long header packet (RFC 9001, 5), the way a sender does. */
export function buildLongPacket(options: BuildLongPacket): Uint8Array {
  const { version, dcid, scid, packetNumber, protector } = options;
  const type = options.type ?? 'initial';
  const pnLength = options.pnLength ?? 4;
  let payload = options.payload;
  const minimum = 4 - pnLength;
  if (payload.length < minimum) {
    const padded = new Uint8Array(minimum);
    padded.set(payload);
    payload = padded;
  }
  const length = pnLength + payload.length + 16;
  const parts: Uint8Array[] = [
    Uint8Array.of(
      0xc0 | (longPacketTypeBits(version, type) << 4) | ((options.reservedBits ?? 0) << 2) | (pnLength - 1),
    ),
    Uint8Array.of(version >>> 24, (version >>> 16) & 0xff, (version >>> 8) & 0xff, version & 0xff),
    Uint8Array.of(dcid.length),
    dcid,
    Uint8Array.of(scid.length),
    scid,
  ];
  if (type === 'initial') {
    const token = options.token ?? new Uint8Array(0);
    parts.push(encodeVarint(token.length), token);
  }
  parts.push(encodeVarint(length, length < 0x4000 ? 2 : 4));
  const pn = new Uint8Array(pnLength);
  for (let i = 0; i < pnLength; i++) pn[pnLength - 1 - i] = Math.floor(packetNumber / 256 ** i) & 0xff;
  parts.push(pn);
  const header = Buffer.concat(parts);
  const sealed = protector.seal(packetNumber, header, payload);
  const packet = new Uint8Array(header.length + sealed.length);
  packet.set(header);
  packet.set(sealed, header.length);
  const pnOffset = header.length - pnLength;
  const mask = protector.headerMask(packet.subarray(pnOffset + 4, pnOffset + 20));
  packet[0] = packet[0]! ^ (mask[0]! & 0x0f);
  for (let i = 0; i < pnLength; i++) packet[pnOffset + i] = packet[pnOffset + i]! ^ mask[1 + i]!;
  return packet;
}

/** A CRYPTO frame. */
export function cryptoFrame(offset: number, data: Uint8Array): Uint8Array {
  return Buffer.concat([Uint8Array.of(0x06), encodeVarint(offset), encodeVarint(data.length), data]);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
