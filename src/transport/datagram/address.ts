/**
 * IP addresses between the four-word form of the addon's rows (big-endian 32-bit words; an
 * IPv4 address is the first word) and the strings node:dgram reports (`inet_ntop`'s form).
 * Received addresses go through small direct-mapped caches, so a datagram from a known peer
 * costs a multiply and a compare, not a string built.
 */
import { compressIPv6 } from '../../connection/address.js';

const V4_BITS = 12;
const v4Words = new Int32Array(1 << V4_BITS);
const v4Names: (string | undefined)[] = new Array<string | undefined>(1 << V4_BITS).fill(undefined);

/** The dotted form of an IPv4 address word. */
export function ipv4Name(word: number): string {
  const slot = Math.imul(word, 0x9e3779b1) >>> (32 - V4_BITS);
  const cached = v4Names[slot];
  if (cached !== undefined && v4Words[slot] === word) return cached;
  const name = `${word >>> 24}.${(word >>> 16) & 255}.${(word >>> 8) & 255}.${word & 255}`;
  v4Words[slot] = word;
  v4Names[slot] = name;
  return name;
}

/**
 * An IPv6 address as `inet_ntop` writes it (RFC 5952: lower-case hex, the longest run of two or
 * more zero groups as `::`, the first of equal runs), with an embedded IPv4 address for the
 * v4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) forms, as glibc and libuv do.
 */
export function formatIpv6(w0: number, w1: number, w2: number, w3: number): string {
  if (w0 === 0 && w1 === 0) {
    // inet_ntop's embedded IPv4: v4-mapped, and IPv4-compatible (the first six groups zero)
    if (w2 === 0xffff) return `::ffff:${ipv4Name(w3)}`;
    if (w2 === 0 && w3 >>> 16 !== 0) return `::${ipv4Name(w3)}`;
  }
  // otherwise the model's RFC 5952 form, which inet_ntop's is
  return compressIPv6([
    w0 >>> 16,
    w0 & 0xffff,
    w1 >>> 16,
    w1 & 0xffff,
    w2 >>> 16,
    w2 & 0xffff,
    w3 >>> 16,
    w3 & 0xffff,
  ]);
}

const V6_BITS = 10;
const v6Words = new Int32Array(4 << V6_BITS);
const v6Names: (string | undefined)[] = new Array<string | undefined>(1 << V6_BITS).fill(undefined);

/** The IPv6 address in `words[at..at+4)`, through the cache. */
export function ipv6Name(words: Int32Array, at: number): string {
  const a = words[at]!;
  const b = words[at + 1]!;
  const c = words[at + 2]!;
  const d = words[at + 3]!;
  const slot =
    Math.imul(
      a ^ Math.imul(b, 0x01000193) ^ Math.imul(c, 0x85ebca6b) ^ Math.imul(d, 0xc2b2ae35),
      0x9e3779b1,
    ) >>>
    (32 - V6_BITS);
  const cached = v6Names[slot];
  const k = slot << 2;
  if (
    cached !== undefined &&
    v6Words[k] === a &&
    v6Words[k + 1] === b &&
    v6Words[k + 2] === c &&
    v6Words[k + 3] === d
  )
    return cached;
  const name = formatIpv6(a, b, c, d);
  v6Words[k] = a;
  v6Words[k + 1] = b;
  v6Words[k + 2] = c;
  v6Words[k + 3] = d;
  v6Names[slot] = name;
  return name;
}
