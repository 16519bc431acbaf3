import { QUIC_V1, QUIC_V2 } from '../versions.js';

// the version codes live with the other wire versions; re-exported for this module's users
export {
  isQuicGreaseVersion,
  QUIC_V1,
  QUIC_V2,
  QUIC_VERSION_NEGOTIATION,
  quicVersionFromWire,
} from '../versions.js';

/** The versions whose Initial packets this module can decrypt. */
export type QuicVersion = typeof QUIC_V1 | typeof QUIC_V2;

/** Long header packet types, named as in RFC 9000 (the wire bits differ per version). */
export type LongPacketType = 'initial' | '0rtt' | 'handshake' | 'retry';

export function isSupportedVersion(version: number): version is QuicVersion {
  return version === QUIC_V1 || version === QUIC_V2;
}

// Index = the two type bits of the first byte. RFC 9369, 3.2 rotates them in v2.
const V1_TYPES: readonly LongPacketType[] = ['initial', '0rtt', 'handshake', 'retry'];
const V2_TYPES: readonly LongPacketType[] = ['retry', 'initial', '0rtt', 'handshake'];

/** Packet type of a long header first byte, for a supported version. */
export function longPacketType(version: QuicVersion, firstByte: number): LongPacketType {
  return (version === QUIC_V2 ? V2_TYPES : V1_TYPES)[(firstByte >> 4) & 0x03]!;
}

/** The two type bits that encode `type` in `version`. */
export function longPacketTypeBits(version: QuicVersion, type: LongPacketType): number {
  return (version === QUIC_V2 ? V2_TYPES : V1_TYPES).indexOf(type);
}

/** Per-version constants of Initial protection (RFC 9001, 5.2 and 5.8; RFC 9369, 3.3). */
export interface VersionParameters {
  readonly initialSalt: Uint8Array;
  /** Label prefix of packet protection keys: "quic" in v1, "quicv2" in v2. */
  readonly labelPrefix: string;
  readonly retryKey: Uint8Array;
  readonly retryNonce: Uint8Array;
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

const V1_PARAMETERS: VersionParameters = {
  initialSalt: hex('38762cf7f55934b34d179ae6a4c80cadccbb7f0a'),
  labelPrefix: 'quic',
  retryKey: hex('be0c690b9f66575a1d766b54e368c84e'),
  retryNonce: hex('461599d35d632bf2239825bb'),
};

const V2_PARAMETERS: VersionParameters = {
  initialSalt: hex('0dede3def700a6db819381be6e269dcbf9bd2ed9'),
  labelPrefix: 'quicv2',
  retryKey: hex('8fb4b01b56ac48e260fbcbcead7ccc92'),
  retryNonce: hex('d86969bc2d7c6d9990efb04a'),
};

export function versionParameters(version: QuicVersion): VersionParameters {
  return version === QUIC_V2 ? V2_PARAMETERS : V1_PARAMETERS;
}
