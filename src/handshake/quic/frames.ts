import { done, failed, HandshakeParseError, type ParseResult } from '../errors.js';
import { QuicReader } from './reader.js';
import { readVarintBigInt, VARINT_MAX } from './varint.js';

/** Frame types allowed in Initial packets (RFC 9000, 12.4, table 3). */
export const FrameType = {
  PADDING: 0x00,
  PING: 0x01,
  ACK: 0x02,
  ACK_ECN: 0x03,
  CRYPTO: 0x06,
  CONNECTION_CLOSE: 0x1c,
} as const;

/** A CRYPTO frame: `data` (a view into the payload) belongs at `offset` of the CRYPTO stream. */
export interface CryptoFrame {
  readonly offset: number;
  readonly data: Uint8Array;
}

export interface AckFrame {
  readonly largestAcknowledged: number;
  /** Encoded ACK Delay (not yet scaled by the ack_delay_exponent). */
  readonly ackDelay: number;
  /** Number of ACK ranges after the first. */
  readonly rangeCount: number;
  readonly firstRange: number;
  /** ECN counts of an ACK frame of type 0x03. */
  readonly ecn?: { readonly ect0: number; readonly ect1: number; readonly ce: number };
}

/** A transport CONNECTION_CLOSE (0x1c); codes 0x0100-0x01ff carry a TLS alert (RFC 9001, 4.8). */
export interface ConnectionCloseFrame {
  readonly errorCode: bigint;
  /** The frame type that caused the error, 0 if unknown. */
  readonly frameType: number;
  readonly reason: string;
}

/** What an Initial packet's payload carried. */
export interface InitialFrames {
  readonly crypto: readonly CryptoFrame[];
  readonly acks: readonly AckFrame[];
  readonly connectionClose?: ConnectionCloseFrame;
  readonly ping: boolean;
  readonly paddingLength: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const ZEROS = new Uint8Array(1500);

function parseAck(reader: QuicReader, ecn: boolean): AckFrame {
  const at = reader.pos;
  const largestAcknowledged = reader.varint('ACK largest acknowledged');
  const ackDelay = reader.varint('ACK delay');
  const rangeCount = reader.varint('ACK range count');
  const firstRange = reader.varint('ACK first range');
  let smallest = largestAcknowledged - firstRange;
  if (smallest < 0) throw reader.fail('quic-frame-encoding', 'ACK first range below packet number 0', at);
  // Each range is at least two bytes, so a huge count fails on truncation without looping long.
  for (let i = 0; i < rangeCount; i++) {
    const gap = reader.varint('ACK gap');
    const length = reader.varint('ACK range length');
    const largest = smallest - gap - 2;
    smallest = largest - length;
    if (largest < 0 || smallest < 0)
      throw reader.fail('quic-frame-encoding', 'ACK range below packet number 0', at);
  }
  if (!ecn) return { largestAcknowledged, ackDelay, rangeCount, firstRange };
  const ect0 = reader.varint('ACK ECT0 count');
  const ect1 = reader.varint('ACK ECT1 count');
  const ce = reader.varint('ACK ECN-CE count');
  return { largestAcknowledged, ackDelay, rangeCount, firstRange, ecn: { ect0, ect1, ce } };
}

function parseConnectionClose(reader: QuicReader): ConnectionCloseFrame {
  const codeAt = reader.pos;
  reader.varint('CONNECTION_CLOSE error code');
  const errorCode = readVarintBigInt(reader.bytes, codeAt);
  const frameType = reader.varint('CONNECTION_CLOSE frame type');
  const reasonLength = reader.varint('CONNECTION_CLOSE reason length');
  const reason = utf8.decode(reader.take(reasonLength, 'CONNECTION_CLOSE reason'));
  return { errorCode, frameType, reason };
}

/**
 * Parses the frames of a decrypted Initial packet's payload. Only PADDING, PING, ACK, CRYPTO
 * and CONNECTION_CLOSE (0x1c) may appear in Initial packets; any other type, a frame type in
 * a longer encoding than needed, an empty payload or a truncated frame is an error (codes
 * `quic-frame-not-allowed`, `quic-frame-encoding`, `quic-empty-payload`).
 */
export function parseInitialFrames(payload: Uint8Array): ParseResult<InitialFrames> {
  if (payload.length === 0) {
    return failed(HandshakeParseError.at('quic-empty-payload', 'Initial packet without frames', payload, 0));
  }
  const reader = new QuicReader(payload, 0, payload.length, 'quic-frame-encoding');
  const crypto: CryptoFrame[] = [];
  const acks: AckFrame[] = [];
  let connectionClose: ConnectionCloseFrame | undefined;
  let ping = false;
  let paddingLength = 0;
  try {
    while (reader.pos < reader.end) {
      const at = reader.pos;
      const first = payload[at]!;
      if (first === FrameType.PADDING) {
        // Padding usually runs to the end of a client Initial: compare it at once, natively.
        const rest = reader.end - at;
        if (
          rest <= ZEROS.length &&
          Buffer.compare(payload.subarray(at, reader.end), ZEROS.subarray(0, rest)) === 0
        ) {
          paddingLength += rest;
          reader.pos = reader.end;
          continue;
        }
        let end = at + 1;
        while (end < reader.end && payload[end] === 0) end++;
        paddingLength += end - at;
        reader.pos = end;
        continue;
      }
      if (first >= 0x40) {
        // Every frame type allowed here fits one byte; a longer encoding is either another
        // frame type or a non-minimal one (RFC 9000, 12.4).
        const type = reader.varint('frame type');
        const minimal =
          type < 0x40 ? 'a frame type in a non-minimal encoding' : `frame type 0x${type.toString(16)}`;
        throw reader.fail(
          type < 0x40 ? 'quic-frame-encoding' : 'quic-frame-not-allowed',
          `${minimal} in an Initial packet`,
          at,
        );
      }
      reader.pos = at + 1;
      switch (first) {
        case FrameType.PING:
          ping = true;
          break;
        case FrameType.ACK:
        case FrameType.ACK_ECN:
          acks.push(parseAck(reader, first === FrameType.ACK_ECN));
          break;
        case FrameType.CRYPTO: {
          const offsetAt = reader.pos;
          const offset = reader.varint('CRYPTO offset');
          const length = reader.varint('CRYPTO length');
          // Past 2^53 a number is inexact: check the 2^62-1 limit (RFC 9000, 19.6) in bigint there.
          if (offset >= 2 ** 53 && readVarintBigInt(payload, offsetAt) + BigInt(length) > VARINT_MAX) {
            throw reader.fail('quic-frame-encoding', 'CRYPTO frame beyond 2^62-1', at);
          }
          crypto.push({ offset, data: reader.take(length, 'CRYPTO data') });
          break;
        }
        case FrameType.CONNECTION_CLOSE:
          connectionClose = parseConnectionClose(reader);
          break;
        default:
          throw reader.fail(
            'quic-frame-not-allowed',
            `frame type 0x${first.toString(16)} in an Initial packet`,
            at,
          );
      }
    }
  } catch (error) {
    if (error instanceof HandshakeParseError) return failed(error);
    throw error;
  }
  const frames: InitialFrames =
    connectionClose === undefined
      ? { crypto, acks, ping, paddingLength }
      : { crypto, acks, connectionClose, ping, paddingLength };
  return done(frames, payload.length);
}
