import { done, failed, HandshakeParseError, type ParseResult } from '../errors.js';
import { CryptoStream, DEFAULT_MAX_CRYPTO_BYTES } from './crypto-stream.js';
import { type ConnectionCloseFrame, type InitialFrames, parseInitialFrames } from './frames.js';
import { type LongHeaderPacket, parseDatagram, type RetryPacket } from './header.js';
import {
  deriveInitialKeys,
  type InitialKeyCache,
  type InitialKeys,
  type QuicSender,
} from './initial-keys.js';
import { unprotectInitial } from './initial-packet.js';
import { asUint8Array } from './reader.js';
import { verifyRetryIntegrity } from './retry.js';
import type { QuicVersion } from './version.js';

/** TLS handshake message types the Initial space carries (RFC 8446, 4). */
export const HandshakeType = { CLIENT_HELLO: 1, SERVER_HELLO: 2 } as const;

// SHA-256("HelloRetryRequest"): the ServerHello random that marks a HelloRetryRequest (RFC 8446, 4.1.3).
const HRR_RANDOM = Uint8Array.from(
  Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex'),
);
// type(1) + length(3) + legacy_version(2), then the 32-byte random.
const SERVER_HELLO_RANDOM_OFFSET = 6;

/** Whether a raw handshake message (type, length, body) is a HelloRetryRequest. */
export function isHelloRetryRequest(message: Uint8Array): boolean {
  if (message[0] !== HandshakeType.SERVER_HELLO) return false;
  if (message.length < SERVER_HELLO_RANDOM_OFFSET + HRR_RANDOM.length) return false;
  for (let i = 0; i < HRR_RANDOM.length; i++) {
    if (message[SERVER_HELLO_RANDOM_OFFSET + i] !== HRR_RANDOM[i]) return false;
  }
  return true;
}

/** A CONNECTION_CLOSE seen in an Initial packet, and who sent it. */
export interface InitialConnectionClose {
  readonly sender: QuicSender;
  readonly frame: ConnectionCloseFrame;
}

/**
 * What the Initial packets of one connection revealed so far. Messages are raw TLS handshake
 * messages (type, 3-byte length, body), in stream order, ready for a ClientHello or
 * ServerHello parser.
 */
export interface InitialHandshake {
  /** The version in use: that of the server's Initials once one was seen, else the client's. */
  readonly version?: QuicVersion;
  /** The DCID of the client's first Initial, from which Initial keys are derived. */
  readonly originalDcid?: Uint8Array;
  /** The first ClientHello. */
  readonly clientHello?: Uint8Array;
  /** The HelloRetryRequest, if the server sent one. */
  readonly helloRetryRequest?: Uint8Array;
  /** The ClientHello the client sent in answer to the HelloRetryRequest. */
  readonly retriedClientHello?: Uint8Array;
  /** The ServerHello that the handshake goes on with (never a HelloRetryRequest). */
  readonly serverHello?: Uint8Array;
  /** Every complete handshake message of the client's Initial CRYPTO stream. */
  readonly clientMessages: readonly Uint8Array[];
  /** Every complete handshake message of the server's Initial CRYPTO stream. */
  readonly serverMessages: readonly Uint8Array[];
  /** The Source Connection ID and token of the Retry the tracker followed, if any. */
  readonly retry?: { readonly scid: Uint8Array; readonly token: Uint8Array };
  /** Versions listed in a Version Negotiation packet from the server. */
  readonly versionNegotiation?: readonly number[];
  readonly connectionClose?: InitialConnectionClose;
}

export interface InitialTrackerOptions {
  /** The connection's version; learnt from the client's first Initial when absent. */
  readonly version?: QuicVersion;
  /** The client's first DCID; learnt from the client's first Initial when absent. */
  readonly originalDcid?: Uint8Array;
  /** A cache shared with other trackers, so a connection's keys are derived once. */
  readonly keyCache?: InitialKeyCache;
  /** Bound of each direction's CRYPTO stream, default 64 KiB. */
  readonly maxCryptoBytes?: number;
}

class Direction {
  readonly stream: CryptoStream;
  readonly messages: Uint8Array[] = [];
  largestPacketNumber = -1;

  constructor(maxBytes: number) {
    this.stream = new CryptoStream(maxBytes);
  }
}

/**
 * Follows the Initial packets of one QUIC connection, both directions, as a pass-through
 * observer: decrypts each Initial with the keys derived from the client's original DCID,
 * reassembles each direction's CRYPTO stream (out of order, across packets and datagrams) and
 * returns the TLS handshake messages found so far: the ClientHello, and the ServerHello,
 * including a HelloRetryRequest and the second ClientHello after it. Follows a Retry (keys
 * derived from its SCID from then on) and compatible version negotiation (server Initials
 * in another version, keys from the same DCID). Sans-IO: feed datagrams, read results.
 *
 * A datagram is all or nothing per packet: a packet that fails to decrypt or parse leaves
 * the state as it was, and `receive` returns its error; earlier packets of the datagram stay.
 */
export class InitialTracker {
  private version: QuicVersion | undefined;
  private originalDcid: Uint8Array | undefined;
  /** The DCID Initial keys derive from: the original one, or the Retry's SCID. */
  private keyDcid: Uint8Array | undefined;
  private previousKeyDcid: Uint8Array | undefined;
  /** Keys from `keyDcid`, one set per version met (compatible version negotiation can switch). */
  private keys: InitialKeys[] = [];
  private previousKeys: InitialKeys[] = [];
  private readonly client: Direction;
  private serverDirection: Direction | undefined;
  private readonly maxCryptoBytes: number;
  private readonly keyCache: InitialKeyCache | undefined;
  private retry: { scid: Uint8Array; token: Uint8Array } | undefined;
  private versionNegotiation: number[] | undefined;
  private connectionClose: InitialConnectionClose | undefined;
  private clientHello: Uint8Array | undefined;
  private secondClientHello: Uint8Array | undefined;
  private helloRetryRequest: Uint8Array | undefined;
  private serverHello: Uint8Array | undefined;

  constructor(options: InitialTrackerOptions = {}) {
    this.version = options.version;
    if (options.originalDcid !== undefined) {
      this.originalDcid = new Uint8Array(options.originalDcid);
      this.keyDcid = this.originalDcid;
    }
    this.keyCache = options.keyCache;
    this.maxCryptoBytes = options.maxCryptoBytes ?? DEFAULT_MAX_CRYPTO_BYTES;
    this.client = new Direction(this.maxCryptoBytes);
  }

  private get server(): Direction {
    this.serverDirection ??= new Direction(this.maxCryptoBytes);
    return this.serverDirection;
  }

  /** The handshake as known now (a snapshot). */
  get handshake(): InitialHandshake {
    const result: { -readonly [K in keyof InitialHandshake]: InitialHandshake[K] } = {
      clientMessages: this.client.messages.slice(),
      serverMessages: this.serverDirection?.messages.slice() ?? [],
    };
    if (this.version !== undefined) result.version = this.version;
    if (this.originalDcid !== undefined) result.originalDcid = this.originalDcid;
    if (this.clientHello !== undefined) result.clientHello = this.clientHello;
    if (this.helloRetryRequest !== undefined) {
      result.helloRetryRequest = this.helloRetryRequest;
      if (this.secondClientHello !== undefined) result.retriedClientHello = this.secondClientHello;
    }
    if (this.serverHello !== undefined) result.serverHello = this.serverHello;
    if (this.retry !== undefined) result.retry = this.retry;
    if (this.versionNegotiation !== undefined) result.versionNegotiation = this.versionNegotiation;
    if (this.connectionClose !== undefined) result.connectionClose = this.connectionClose;
    return result;
  }

  /** Files newly complete messages under their names. */
  private classify(message: Uint8Array): void {
    if (message[0] === HandshakeType.CLIENT_HELLO) {
      if (this.clientHello === undefined) this.clientHello = message;
      else this.secondClientHello ??= message;
    } else if (message[0] === HandshakeType.SERVER_HELLO) {
      if (isHelloRetryRequest(message)) this.helloRetryRequest ??= message;
      else this.serverHello ??= message;
    }
  }

  /**
   * Feeds one UDP datagram, sent by `sender`. Returns the handshake as known after it, or the
   * error of the first packet that could not be used (undecryptable, malformed frames, a
   * CRYPTO stream over its bound, a Retry that does not authenticate). An error's offset is
   * in the datagram, except for frame errors (`quic-frame-*`, `quic-empty-payload`), whose
   * offset is in the decrypted payload.
   */
  receive(datagram: Uint8Array, sender: QuicSender): ParseResult<InitialHandshake> {
    // A datagram that starts with a short header holds only 1-RTT packets: nothing for us.
    if (datagram.length > 0 && (datagram[0]! & 0x80) === 0) return done(this.handshake, datagram.length);
    datagram = asUint8Array(datagram);
    const parsed = parseDatagram(datagram);
    if (parsed.status !== 'done') return parsed;
    for (const header of parsed.value.packets) {
      let problem: HandshakeParseError | undefined;
      if (header.form === 'long' && header.type === 'initial') {
        problem = this.receiveInitial(datagram, header, sender);
      } else if (header.form === 'retry' && sender === 'server') {
        problem = this.receiveRetry(datagram, header);
      } else if (header.form === 'version-negotiation' && sender === 'server') {
        this.versionNegotiation ??= [...header.versions];
      }
      if (problem !== undefined) return failed(problem);
    }
    return done(this.handshake, datagram.length);
  }

  private keysFor(version: QuicVersion, dcid: Uint8Array, memo: InitialKeys[]): InitialKeys {
    for (const keys of memo) if (keys.version === version) return keys;
    const keys = this.keyCache?.get(version, dcid) ?? deriveInitialKeys(version, dcid);
    memo.push(keys);
    return keys;
  }

  private receiveInitial(
    datagram: Uint8Array,
    header: LongHeaderPacket,
    sender: QuicSender,
  ): HandshakeParseError | undefined {
    if (this.keyDcid === undefined) {
      if (sender === 'server') {
        return HandshakeParseError.at(
          'quic-keys-unknown',
          'server Initial before any client Initial, and no original DCID given',
          datagram,
          header.offset,
        );
      }
      this.originalDcid = new Uint8Array(header.dcid);
      this.keyDcid = this.originalDcid;
    }
    if (sender === 'server' && header.token.length > 0) {
      return HandshakeParseError.at(
        'quic-invalid-header',
        'server Initial with a token',
        datagram,
        header.offset,
      );
    }
    const direction = sender === 'client' ? this.client : this.server;
    const keys = this.keysFor(header.version, this.keyDcid, this.keys);
    let opened = unprotectInitial(datagram, header, keys[sender], direction.largestPacketNumber);
    if (opened.status === 'error' && opened.error.code === 'quic-decryption-failed' && this.previousKeyDcid) {
      // A packet protected before the Retry, arriving after it.
      const previous = this.keysFor(header.version, this.previousKeyDcid, this.previousKeys);
      const retried = unprotectInitial(datagram, header, previous[sender], direction.largestPacketNumber);
      if (retried.status === 'done') opened = retried;
    }
    if (opened.status !== 'done') return opened.status === 'error' ? opened.error : undefined;
    const frames = parseInitialFrames(opened.value.payload);
    if (frames.status !== 'done') return frames.status === 'error' ? frames.error : undefined;
    const problem = this.commit(direction, frames.value, sender);
    if (problem !== undefined) return problem;
    direction.largestPacketNumber = Math.max(direction.largestPacketNumber, opened.value.packetNumber);
    // The server's Initials are in the negotiated version (RFC 9368: it may differ from the client's).
    if (sender === 'server' || this.version === undefined) this.version = header.version;
    return undefined;
  }

  private commit(
    direction: Direction,
    frames: InitialFrames,
    sender: QuicSender,
  ): HandshakeParseError | undefined {
    const problem = direction.stream.checkAll(frames.crypto);
    if (problem !== undefined) return problem;
    for (const frame of frames.crypto) direction.stream.write(frame.offset, frame.data);
    if (frames.connectionClose !== undefined)
      this.connectionClose = { sender, frame: frames.connectionClose };
    const messages = direction.stream.takeMessages();
    if (messages instanceof HandshakeParseError) return messages;
    for (const message of messages) {
      direction.messages.push(message);
      this.classify(message);
    }
    return undefined;
  }

  private receiveRetry(datagram: Uint8Array, retry: RetryPacket): HandshakeParseError | undefined {
    // A client follows one Retry at most (RFC 9000, 17.2.5.2); later ones are ignored.
    if (this.retry !== undefined || this.originalDcid === undefined) return undefined;
    if (!verifyRetryIntegrity(datagram, retry, this.originalDcid)) {
      return HandshakeParseError.at(
        'quic-retry-integrity',
        'Retry integrity tag does not verify',
        datagram,
        retry.offset + retry.packetLength - retry.integrityTag.length,
      );
    }
    this.retry = { scid: new Uint8Array(retry.scid), token: new Uint8Array(retry.token) };
    this.previousKeyDcid = this.keyDcid;
    this.previousKeys = this.keys;
    this.keys = [];
    this.keyDcid = this.retry.scid;
    return undefined;
  }
}
