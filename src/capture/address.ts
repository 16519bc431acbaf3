import { compressIPv6 } from '../connection/address.js';

/** Dotted-quad text of a 4-byte IPv4 address. */
export function formatIpv4(bytes: Uint8Array): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/**
 * RFC 5952 text of a 16-byte IPv6 address: lower-case hex, leading zeros dropped, the longest run
 * of two or more zero groups (the first on a tie) as `::`, and `::ffff:a.b.c.d` for IPv4-mapped ones.
 */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIpv4(bytes.subarray(12, 16))}`;
  }
  return compressIPv6(groups);
}

/** Text of an IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export function formatIp(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIpv4(bytes) : formatIpv6(bytes);
}
