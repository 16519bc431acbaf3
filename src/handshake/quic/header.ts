import { done, failed, HandshakeParseError, type ParseResult } from '../errors.js';
import { asUint8Array, QuicReader } from './reader.js';
import {
  isSupportedVersion,
  type LongPacketType,
  longPacketType,
  QUIC_VERSION_NEGOTIATION,
  type QuicVersion,
} from './version.js';

/** Longest connection ID in QUIC v1 and v2 (RFC 9000, 17.2). Other versions allow 255. */
export const MAX_CID_LENGTH = 20;
/** Length of a Retry packet's integrity tag. */
export const RETRY_INTEGRITY_TAG_LENGTH = 16;

/**
 * A long header packet that carries a packet number: Initial, 0-RTT or Handshake. Offsets are
 * in the datagram; the low bits of `firstByte` and the packet number are still under header
 * protection. Byte fields are views into the datagram.
 */
export interface LongHeaderPacket {
  readonly form: 'long';
  readonly type: Exclude<LongPacketType, 'retry'>;
  readonly version: QuicVersion;
  readonly firstByte: number;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  /** The address validation token of an Initial; empty for other types. */
  readonly token: Uint8Array;
  /** Where the packet starts in the datagram. */
  readonly offset: number;
  /** Where the (protected) packet number starts in the datagram. */
  readonly pnOffset: number;
  /** The Length field: bytes of packet number and protected payload. */
  readonly length: number;
  /** The whole packet, header included: `pnOffset - offset + length`. */
  readonly packetLength: number;
}

/** A Retry packet (RFC 9000, 17.2.5): it has no length or packet number and ends the datagram. */
export interface RetryPacket {
  readonly form: 'retry';
  readonly version: QuicVersion;
  readonly firstByte: number;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  readonly token: Uint8Array;
  readonly integrityTag: Uint8Array;
  readonly offset: number;
  readonly packetLength: number;
}

/** A Version Negotiation packet (version 0): the versions the server supports, to the end of the datagram. */
export interface VersionNegotiationPacket {
  readonly form: 'version-negotiation';
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  readonly versions: readonly number[];
  readonly offset: number;
  readonly packetLength: number;
}

/**
 * A long header of a version this module does not know (GREASE or future versions): only the
 * version-independent fields (RFC 8999) are read, and the packet is taken to fill the datagram.
 */
export interface UnsupportedVersionPacket {
  readonly form: 'unsupported-version';
  readonly version: number;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  readonly offset: number;
  readonly packetLength: number;
}

/** A short header (1-RTT) packet. It fills the rest of the datagram; only its DCID is readable. */
export interface ShortHeaderPacket {
  readonly form: 'short';
  readonly firstByte: number;
  readonly dcid: Uint8Array;
  readonly offset: number;
  readonly packetLength: number;
}

export type QuicPacketHeader =
  | LongHeaderPacket
  | RetryPacket
  | VersionNegotiationPacket
  | UnsupportedVersionPacket
  | ShortHeaderPacket;

/** The packets found in one UDP datagram, in order, and how many trailing padding bytes followed them. */
export interface QuicDatagram {
  readonly packets: readonly QuicPacketHeader[];
  readonly paddingLength: number;
}

function readCid(reader: QuicReader, max: number, what: string): Uint8Array {
  const at = reader.pos;
  const length = reader.u8(`${what} length`);
  if (length > max) throw reader.fail('quic-cid-too-long', `${what} of ${length} bytes exceeds ${max}`, at);
  return reader.take(length, what);
}

function parseLong(bytes: Uint8Array, offset: number): QuicPacketHeader {
  const reader = new QuicReader(bytes, offset);
  const firstByte = reader.u8('first byte');
  const version = reader.u32('version');
  if (version === QUIC_VERSION_NEGOTIATION) {
    const dcid = readCid(reader, 255, 'destination connection ID');
    const scid = readCid(reader, 255, 'source connection ID');
    if (reader.remaining % 4 !== 0) {
      throw reader.fail('quic-invalid-version-negotiation', 'version list is not a whole number of versions');
    }
    const versions: number[] = [];
    while (reader.remaining > 0) versions.push(reader.u32('supported version'));
    return { form: 'version-negotiation', dcid, scid, versions, offset, packetLength: bytes.length - offset };
  }
  if (!isSupportedVersion(version)) {
    const dcid = readCid(reader, 255, 'destination connection ID');
    const scid = readCid(reader, 255, 'source connection ID');
    return { form: 'unsupported-version', version, dcid, scid, offset, packetLength: bytes.length - offset };
  }
  const dcid = readCid(reader, MAX_CID_LENGTH, 'destination connection ID');
  const scid = readCid(reader, MAX_CID_LENGTH, 'source connection ID');
  const type = longPacketType(version, firstByte);
  if (type === 'retry') {
    const tokenLength = reader.remaining - RETRY_INTEGRITY_TAG_LENGTH;
    if (tokenLength < 0) throw reader.fail('quic-truncated', 'Retry packet shorter than its integrity tag');
    const token = reader.take(tokenLength, 'retry token');
    const integrityTag = reader.take(RETRY_INTEGRITY_TAG_LENGTH, 'retry integrity tag');
    return {
      form: 'retry',
      version,
      firstByte,
      dcid,
      scid,
      token,
      integrityTag,
      offset,
      packetLength: bytes.length - offset,
    };
  }
  let token: Uint8Array = bytes.subarray(reader.pos, reader.pos);
  if (type === 'initial') {
    const tokenLength = reader.varint('token length');
    token = reader.take(tokenLength, 'token');
  }
  const lengthAt = reader.pos;
  const length = reader.varint('length');
  const pnOffset = reader.pos;
  if (length > reader.remaining) {
    throw reader.fail(
      'quic-truncated',
      `packet length ${length} runs past the end of the datagram`,
      lengthAt,
    );
  }
  return {
    form: 'long',
    type,
    version,
    firstByte,
    dcid,
    scid,
    token,
    offset,
    pnOffset,
    length,
    packetLength: pnOffset - offset + length,
  };
}

/**
 * Parses the header of the packet at `offset` of a datagram. `shortDcidLength` is the length
 * of the connection IDs this endpoint issued, needed to read a short header (it does not carry
 * it). On success `consumed` is the packet's length in the datagram.
 */
export function parsePacketHeader(
  datagram: Uint8Array,
  offset: number,
  shortDcidLength: number,
): ParseResult<QuicPacketHeader> {
  datagram = asUint8Array(datagram);
  try {
    const header = parseHeaderAt(datagram, offset, shortDcidLength);
    return done(header, header.packetLength);
  } catch (error) {
    if (error instanceof HandshakeParseError) return failed(error);
    throw error;
  }
}

function parseHeaderAt(
  datagram: Uint8Array,
  offset: number,
  shortDcidLength: number | undefined,
): QuicPacketHeader {
  if (offset >= datagram.length) {
    throw HandshakeParseError.at('quic-truncated', 'no packet at this offset', datagram, offset);
  }
  const firstByte = datagram[offset]!;
  if (firstByte & 0x80) return parseLong(datagram, offset);
  if (shortDcidLength === undefined) {
    throw HandshakeParseError.at(
      'quic-short-dcid-length-unknown',
      'short header packet, and the connection ID length is not known',
      datagram,
      offset,
    );
  }
  if (shortDcidLength < 0 || shortDcidLength > MAX_CID_LENGTH) {
    throw HandshakeParseError.at(
      'quic-cid-too-long',
      `short header CID length ${shortDcidLength}`,
      datagram,
      offset,
    );
  }
  const reader = new QuicReader(datagram, offset + 1);
  const dcid = reader.take(shortDcidLength, 'destination connection ID');
  return { form: 'short', firstByte, dcid, offset, packetLength: datagram.length - offset };
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Splits a datagram into its coalesced packets (RFC 9000, 12.2), following each long header's
 * Length. Zero bytes after the last packet are padding. A short header packet, a Retry,
 * a Version Negotiation or an unknown version ends the datagram. A short header packet after
 * a long one uses that packet's DCID length (coalesced packets share a connection);
 * `shortDcidLength` is needed only for a datagram that starts with a short header.
 */
export function parseDatagram(datagram: Uint8Array, shortDcidLength?: number): ParseResult<QuicDatagram> {
  datagram = asUint8Array(datagram);
  const packets: QuicPacketHeader[] = [];
  let offset = 0;
  let dcidLength = shortDcidLength;
  try {
    while (offset < datagram.length) {
      if (packets.length > 0 && datagram[offset] === 0 && allZero(datagram, offset)) {
        return done({ packets, paddingLength: datagram.length - offset }, datagram.length);
      }
      const header = parseHeaderAt(datagram, offset, dcidLength);
      packets.push(header);
      if (header.form === 'long') dcidLength ??= header.dcid.length;
      offset += header.packetLength;
    }
  } catch (error) {
    if (error instanceof HandshakeParseError) return failed(error);
    throw error;
  }
  if (packets.length === 0)
    return failed(HandshakeParseError.at('quic-truncated', 'empty datagram', datagram, 0));
  return done({ packets, paddingLength: 0 }, datagram.length);
}
