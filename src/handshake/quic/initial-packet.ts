import { done, failed, HandshakeParseError, type ParseResult } from '../errors.js';
import { type LongHeaderPacket, parseDatagram } from './header.js';
import {
  deriveInitialKeys,
  type InitialKeyCache,
  type InitialKeys,
  type QuicSender,
} from './initial-keys.js';
import type { PacketProtector } from './packet-protection.js';
import { asUint8Array } from './reader.js';

/** An Initial packet with its protection removed. */
export interface InitialPacket {
  readonly header: LongHeaderPacket;
  /** The first byte without header protection. */
  readonly firstByte: number;
  readonly packetNumber: number;
  /** The decrypted frames (a fresh buffer). */
  readonly payload: Uint8Array;
}

/**
 * Removes the protection of one Initial packet of `datagram`, whose header was parsed by
 * `parseDatagram`, with the sender's protector. `largestPacketNumber` is the largest packet
 * number received so far in the sender's Initial space (-1 if none), used to expand the
 * truncated packet number. Errors: `quic-truncated`, `quic-decryption-failed`,
 * `quic-reserved-bits` (non-zero after removing protection, RFC 9000, 17.2).
 */
export function unprotectInitial(
  datagram: Uint8Array,
  header: LongHeaderPacket,
  protector: PacketProtector,
  largestPacketNumber = -1,
): ParseResult<InitialPacket> {
  try {
    const end = header.offset + header.packetLength;
    const opened = protector.unprotect(datagram, header.offset, header.pnOffset, end, largestPacketNumber);
    if ((opened.firstByte & 0x0c) !== 0) {
      return failed(
        HandshakeParseError.at('quic-reserved-bits', 'reserved header bits are set', datagram, header.offset),
      );
    }
    const packet: InitialPacket = {
      header,
      firstByte: opened.firstByte,
      packetNumber: opened.packetNumber,
      payload: opened.payload,
    };
    return done(packet, header.packetLength);
  } catch (error) {
    if (error instanceof HandshakeParseError) return failed(error);
    throw error;
  }
}

export interface DecryptInitialOptions {
  /** Largest packet number already received from this sender in the Initial space; -1 (default) if none. */
  readonly largestPacketNumber?: number;
  /** Where to find and keep keys when a DCID is given instead of keys. */
  readonly keyCache?: InitialKeyCache;
}

/**
 * Decrypts every Initial packet of a datagram (coalesced packets of other types, and trailing
 * padding, are stepped over). `keysOrDcid` is either the connection's Initial keys or the
 * client's original Destination Connection ID to derive them from, for the version in each
 * packet's header: for a client Initial that is its own DCID, for a server Initial the DCID of
 * the client's first Initial (or of the Retry's SCID after a Retry). `sender` picks the
 * direction's keys. A datagram without Initial packets (a short header one, say) gives an
 * empty list.
 */
export function decryptInitial(
  datagram: Uint8Array,
  keysOrDcid: InitialKeys | Uint8Array,
  sender: QuicSender,
  options: DecryptInitialOptions = {},
): ParseResult<InitialPacket[]> {
  const packets: InitialPacket[] = [];
  // A datagram that starts with a short header holds only 1-RTT packets.
  if (datagram.length > 0 && (datagram[0]! & 0x80) === 0) return done(packets, datagram.length);
  datagram = asUint8Array(datagram);
  const parsed = parseDatagram(datagram);
  if (parsed.status !== 'done') return parsed;
  let largest = options.largestPacketNumber ?? -1;
  for (const header of parsed.value.packets) {
    if (header.form !== 'long' || header.type !== 'initial') continue;
    let keys: InitialKeys;
    if (keysOrDcid instanceof Uint8Array) {
      keys =
        options.keyCache?.get(header.version, keysOrDcid) ?? deriveInitialKeys(header.version, keysOrDcid);
    } else {
      keys = keysOrDcid;
      if (keys.version !== header.version) {
        return failed(
          HandshakeParseError.at(
            'quic-version-mismatch',
            `Initial of version 0x${header.version.toString(16)} with keys of 0x${keys.version.toString(16)}`,
            datagram,
            header.offset + 1,
          ),
        );
      }
    }
    if (sender === 'server' && header.token.length > 0) {
      return failed(
        HandshakeParseError.at('quic-invalid-header', 'server Initial with a token', datagram, header.offset),
      );
    }
    const result = unprotectInitial(datagram, header, keys[sender], largest);
    if (result.status !== 'done') return result;
    packets.push(result.value);
    largest = Math.max(largest, result.value.packetNumber);
  }
  return done(packets, datagram.length);
}
