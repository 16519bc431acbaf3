/**
 * QUIC Initial packets, sans-IO: headers and coalesced packets, Initial keys, removal of
 * packet protection, Initial frames, CRYPTO stream reassembly, and a tracker that yields the
 * raw ClientHello and ServerHello of a connection it observes.
 *
 * @example
 * ```ts
 * const keyCache = new InitialKeyCache(); // one per listener: keys derived once per DCID
 * const tracker = new InitialTracker({ keyCache }); // one per connection
 * const result = tracker.receive(datagramFromClient, 'client');
 * if (result.status === 'done' && result.value.clientHello) {
 *   // result.value.clientHello: type 0x01, 3-byte length, body, ready for a ClientHello parser
 * }
 * tracker.receive(datagramFromServer, 'server'); // then .serverHello (and .helloRetryRequest)
 * ```
 */
export { CryptoStream, DEFAULT_MAX_CRYPTO_BYTES, DEFAULT_MAX_CRYPTO_GAPS } from './crypto-stream.js';
export {
  type AckFrame,
  type ConnectionCloseFrame,
  type CryptoFrame,
  FrameType,
  type InitialFrames,
  parseInitialFrames,
} from './frames.js';
export {
  type LongHeaderPacket,
  MAX_CID_LENGTH,
  parseDatagram,
  parsePacketHeader,
  type QuicDatagram,
  type QuicPacketHeader,
  RETRY_INTEGRITY_TAG_LENGTH,
  type RetryPacket,
  type ShortHeaderPacket,
  type UnsupportedVersionPacket,
  type VersionNegotiationPacket,
} from './header.js';
export { encodeHkdfLabel, type HkdfHash, hkdfExpand, hkdfExpandLabel, hkdfExtract } from './hkdf.js';
export { deriveInitialKeys, InitialKeyCache, type InitialKeys, type QuicSender } from './initial-keys.js';
export {
  type DecryptInitialOptions,
  decryptInitial,
  type InitialPacket,
  unprotectInitial,
} from './initial-packet.js';
export {
  HandshakeType,
  type InitialConnectionClose,
  type InitialHandshake,
  InitialTracker,
  type InitialTrackerOptions,
  isHelloRetryRequest,
} from './initial-tracker.js';
export {
  AEAD_TAG_LENGTH,
  decodePacketNumber,
  derivePacketKeys,
  HP_SAMPLE_LENGTH,
  type PacketKeys,
  PacketProtector,
  type QuicAead,
  type UnprotectedPacket,
} from './packet-protection.js';
export { verifyRetryIntegrity } from './retry.js';
export {
  encodeVarint,
  readVarint,
  readVarintBigInt,
  VARINT_MAX,
  varintLengthFor,
  varintSize,
} from './varint.js';
export {
  isQuicGreaseVersion,
  isSupportedVersion,
  type LongPacketType,
  longPacketType,
  longPacketTypeBits,
  QUIC_V1,
  QUIC_V2,
  QUIC_VERSION_NEGOTIATION,
  type QuicVersion,
  quicVersionFromWire,
  type VersionParameters,
  versionParameters,
} from './version.js';
