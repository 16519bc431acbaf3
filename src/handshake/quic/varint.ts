/**
 * QUIC variable-length integers (RFC 9000, section 16): the two high bits of the first
 * byte give the length (1, 2, 4 or 8 bytes), the rest is the big-endian value.
 */

/** Largest value a varint can hold: 2^62 - 1. */
export const VARINT_MAX = 2n ** 62n - 1n;

/** Length in bytes of the varint whose first byte is `firstByte`. */
export function varintSize(firstByte: number): 1 | 2 | 4 | 8 {
  return (1 << (firstByte >> 6)) as 1 | 2 | 4 | 8;
}

/**
 * Reads the varint at `offset`, or returns -1 when `bytes` ends before it does.
 * Values above 2^53 lose precision (use {@link readVarintBigInt} where that matters).
 */
export function readVarint(bytes: Uint8Array, offset: number): number {
  if (offset >= bytes.length) return -1;
  const first = bytes[offset]!;
  const size = varintSize(first);
  if (offset + size > bytes.length) return -1;
  switch (size) {
    case 1:
      return first;
    case 2:
      return ((first & 0x3f) << 8) | bytes[offset + 1]!;
    case 4:
      return (
        ((first & 0x3f) * 0x1000000 + (bytes[offset + 1]! << 16)) |
        (bytes[offset + 2]! << 8) |
        bytes[offset + 3]!
      );
    default: {
      const high =
        (first & 0x3f) * 0x1000000 +
        ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!);
      const low =
        bytes[offset + 4]! * 0x1000000 +
        ((bytes[offset + 5]! << 16) | (bytes[offset + 6]! << 8) | bytes[offset + 7]!);
      return high * 0x100000000 + low;
    }
  }
}

/** Reads the varint at `offset` exactly, or returns -1n when `bytes` ends before it does. */
export function readVarintBigInt(bytes: Uint8Array, offset: number): bigint {
  if (offset >= bytes.length) return -1n;
  const size = varintSize(bytes[offset]!);
  if (offset + size > bytes.length) return -1n;
  let value = BigInt(bytes[offset]! & 0x3f);
  for (let i = 1; i < size; i++) value = (value << 8n) | BigInt(bytes[offset + i]!);
  return value;
}

/** Smallest encoding length for `value`. Throws RangeError outside 0..2^62-1 (a programming error). */
export function varintLengthFor(value: number | bigint): 1 | 2 | 4 | 8 {
  const v = BigInt(value);
  if (v < 0n || v > VARINT_MAX) throw new RangeError(`varint out of range: ${value}`);
  if (v < 0x40n) return 1;
  if (v < 0x4000n) return 2;
  if (v < 0x40000000n) return 4;
  return 8;
}

/**
 * Encodes `value` as a varint, in its shortest form unless `size` asks for a longer one.
 * Meant for building packets in tests and tools, not for the receive path.
 */
export function encodeVarint(value: number | bigint, size?: 1 | 2 | 4 | 8): Uint8Array {
  const minimum = varintLengthFor(value);
  const length = size ?? minimum;
  if (length < minimum) throw new RangeError(`varint ${value} does not fit in ${length} bytes`);
  const out = new Uint8Array(length);
  let v = BigInt(value);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0] = out[0]! | ((Math.log2(length) << 6) & 0xc0);
  return out;
}
