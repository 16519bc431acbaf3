/**
 * The QUIC listener's admission measures, with a clock given by the test: the Initial rate
 * meter, the token buckets on decryptions and Retries, and Retry tokens (HMAC-checked before
 * any decryption).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RateMeter, TokenBucket } from '../../src/transport/quic/admission.js';
import { CLOCK_SKEW_MS, RetryTokens } from '../../src/transport/quic/retry.js';

describe('RateMeter', () => {
  it('measures a steady rate, follows it up and down, and forgets it after a silence', () => {
    const meter = new RateMeter(100);
    let rate = 0;
    // 20,000 per second: one event every 0.05 ms, for half a second
    for (let t = 0; t < 500; t += 0.05) rate = meter.hit(1000 + t);
    expect(rate).toBeGreaterThan(18_000);
    expect(rate).toBeLessThan(22_000);
    // then 100 per second for a second: the estimate comes down within a window or two
    for (let t = 500; t < 1500; t += 10) rate = meter.hit(1000 + t);
    expect(rate).toBeGreaterThan(50);
    expect(rate).toBeLessThan(200);
    // after a silence longer than two windows, nothing is left of it
    expect(meter.rate(1000 + 1500 + 250)).toBe(0);
    expect(meter.hit(1000 + 1500 + 250)).toBe(10); // one event in a 100 ms window
  });

  it('crosses a threshold of 1000/s within a few milliseconds of a flood starting', () => {
    const meter = new RateMeter(100);
    let t = 0;
    for (; t < 1000; t += 5) meter.hit(t); // 200 per second: quiet
    expect(meter.rate(t)).toBeLessThan(1000);
    let crossedAt = -1;
    for (let i = 0; crossedAt < 0 && i < 10_000; i++, t += 0.05) if (meter.hit(t) > 1000) crossedAt = t;
    expect(crossedAt).toBeGreaterThan(0);
    expect(crossedAt - 1000).toBeLessThan(10);
  });
});

describe('TokenBucket', () => {
  it('gives its capacity at once, then perSecond on average', () => {
    const bucket = new TokenBucket(100, 10);
    let taken = 0;
    for (let i = 0; i < 50; i++) if (bucket.take(0)) taken++;
    expect(taken).toBe(10);
    // one second at one try per millisecond: 100 more, not 1000
    taken = 0;
    for (let t = 1; t <= 1000; t++) if (bucket.take(t)) taken++;
    expect(taken).toBeGreaterThanOrEqual(99);
    expect(taken).toBeLessThanOrEqual(101);
    // a long pause refills to the capacity, not beyond
    taken = 0;
    for (let i = 0; i < 50; i++) if (bucket.take(100_000)) taken++;
    expect(taken).toBe(10);
  });

  it('never runs dry when unbounded, and holds at least one token', () => {
    const unbounded = new TokenBucket(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 1000; i++) expect(unbounded.take(0)).toBe(true);
    const tiny = new TokenBucket(1, 0);
    expect(tiny.take(0)).toBe(true);
    expect(tiny.take(0)).toBe(false);
  });
});

describe('RetryTokens', () => {
  const odcid = randomBytes(8);
  const scid = randomBytes(16);
  const address = '192.0.2.7';

  it('verifies its own token and returns the original DCID', () => {
    const tokens = new RetryTokens();
    const token = tokens.mint(odcid, scid, address, 4433, 5000);
    expect(Buffer.from(tokens.verify(token, scid, address, 4433, 5100)!)).toEqual(odcid);
    // IPv6 with a zone, and the longest connection IDs
    const long = randomBytes(20);
    const v6 = 'fe80::1234:5678:9abc:def0%eth0';
    const t6 = tokens.mint(long, long, v6, 65535, 0);
    expect(Buffer.from(tokens.verify(t6, long, v6, 65535, 1)!)).toEqual(long);
  });

  it('refuses another address, port, connection ID, key, an expired token and any altered byte', () => {
    const tokens = new RetryTokens(10_000);
    const token = tokens.mint(odcid, scid, address, 4433, 5000);
    expect(tokens.verify(token, scid, '192.0.2.8', 4433, 5000)).toBeNull();
    expect(tokens.verify(token, scid, address, 4434, 5000)).toBeNull();
    expect(tokens.verify(token, randomBytes(16), address, 4433, 5000)).toBeNull();
    expect(new RetryTokens().verify(token, scid, address, 4433, 5000)).toBeNull();
    expect(tokens.verify(token, scid, address, 4433, 15_001)).toBeNull();
    // minted in the future (another instance's clock): good within the skew allowed, not beyond
    expect(Buffer.from(tokens.verify(token, scid, address, 4433, 5000 - CLOCK_SKEW_MS)!)).toEqual(odcid);
    expect(tokens.verify(token, scid, address, 4433, 5000 - CLOCK_SKEW_MS - 1)).toBeNull();
    for (let i = 0; i < token.length; i++) {
      const altered = Buffer.from(token);
      altered[i] = altered[i]! ^ 0x01;
      expect(tokens.verify(altered, scid, address, 4433, 5000)).toBeNull();
    }
    expect(tokens.isOurs(token)).toBe(true);
    expect(tokens.isOurs(Buffer.alloc(token.length))).toBe(false);
    // shapes that are not ours are refused before any MAC is computed
    expect(tokens.verify(token.subarray(0, token.length - 1), scid, address, 4433, 5000)).toBeNull();
    expect(tokens.verify(new Uint8Array(0), scid, address, 4433, 5000)).toBeNull();
    expect(tokens.verify(randomBytes(100), scid, address, 4433, 5000)).toBeNull();
  });
});
