/** Why a packet gave no TCP segment or UDP datagram. Skipped packets are counted, never fatal. */
export type SkipReason =
  /** The interface's link type is not one the decoder knows. */
  | 'unsupported-link-type'
  /** The frame carries something other than IPv4 or IPv6 (ARP, LLC, netlink, ...). */
  | 'not-ip'
  /** The IP payload is neither TCP nor UDP (ICMP, ESP, ...). */
  | 'not-tcp-udp'
  /** A header is cut short by the snapshot length or the frame's end. */
  | 'truncated'
  /** A header field is impossible (IPv4 header length under 20, TCP data offset under 5, ...). */
  | 'malformed'
  /** An IP fragment held until the datagram is whole, or one that never could be. */
  | 'fragment';

export const SKIP_REASONS: readonly SkipReason[] = [
  'unsupported-link-type',
  'not-ip',
  'not-tcp-udp',
  'truncated',
  'malformed',
  'fragment',
];

/** A decoding step's "no": the reason, so callers can count it. */
export interface Skipped {
  readonly kind: 'skipped';
  readonly reason: SkipReason;
}

const SKIPPED: { readonly [R in SkipReason]: Skipped } = {
  'unsupported-link-type': { kind: 'skipped', reason: 'unsupported-link-type' },
  'not-ip': { kind: 'skipped', reason: 'not-ip' },
  'not-tcp-udp': { kind: 'skipped', reason: 'not-tcp-udp' },
  truncated: { kind: 'skipped', reason: 'truncated' },
  malformed: { kind: 'skipped', reason: 'malformed' },
  fragment: { kind: 'skipped', reason: 'fragment' },
};

/** The shared, frozen `Skipped` value for `reason` (no allocation per packet). */
export function skipped(reason: SkipReason): Skipped {
  return SKIPPED[reason];
}
