/**
 * Shared secrets, the pure parts: the `--quic-secrets` file format, Retry tokens under a shared
 * key, and Stateless Resets (tokens, sizes). The two-instance tests are in quic-scale-out.test.ts.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIN_RESET, StatelessResets } from '../../src/transport/quic/reset.js';
import { RetryTokens } from '../../src/transport/quic/retry.js';
import {
  checkQuicSecrets,
  parseQuicSecrets,
  QuicSecretsError,
  readQuicSecrets,
} from '../../src/transport/quic/secrets.js';

const KEY_A = 'aa'.repeat(32);
const KEY_B = '0123456789abcdef'.repeat(5);

function secretsError(fn: () => unknown): QuicSecretsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuicSecretsError);
    expect((e as QuicSecretsError).code).toBe('ERR_QUIC_SECRETS');
    return e as QuicSecretsError;
  }
  throw new Error('did not throw');
}

describe('the --quic-secrets file', () => {
  it('holds one or both keys as hex strings of 32 octets or more', () => {
    expect(parseQuicSecrets(JSON.stringify({ statelessResetKey: KEY_A, tokenKey: KEY_B }))).toEqual({
      statelessResetKey: Buffer.from(KEY_A, 'hex'),
      tokenKey: Buffer.from(KEY_B, 'hex'),
    });
    expect(parseQuicSecrets(`{"tokenKey": "${KEY_B.toUpperCase()}"}`)).toEqual({
      tokenKey: Buffer.from(KEY_B, 'hex'),
    });
  });

  it('refuses anything else with a message that says what is wrong', () => {
    const bad: [string, RegExp][] = [
      ['', /not JSON/],
      ['{"statelessResetKey": ', /not JSON/],
      ['[]', /JSON object/],
      ['"aa"', /JSON object/],
      ['{}', /neither/],
      [`{"statelessResetKey": "${KEY_A}", "tokenkey": "${KEY_B}"}`, /unknown field tokenkey/],
      [`{"statelessResetKey": 12}`, /hex digits/],
      [`{"statelessResetKey": "${KEY_A}0"}`, /hex digits/],
      [`{"statelessResetKey": "${'zz'.repeat(32)}"}`, /hex digits/],
      [`{"tokenKey": "${'ab'.repeat(31)}"}`, /tokenKey must be 32 octets or more, not 31/],
    ];
    for (const [text, message] of bad)
      expect(secretsError(() => parseQuicSecrets(text)).message, text).toMatch(message);
    expect(secretsError(() => checkQuicSecrets({ statelessResetKey: randomBytes(16) })).message).toMatch(
      /32 octets/,
    );
  });

  it('is read from a file; the errors name it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wl-secrets-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ statelessResetKey: KEY_A }));
    expect(readQuicSecrets(good).statelessResetKey).toEqual(Buffer.from(KEY_A, 'hex'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"tokenKey": "00"}');
    expect(secretsError(() => readQuicSecrets(bad)).message).toContain(bad);
    expect(secretsError(() => readQuicSecrets(join(dir, 'missing.json'))).message).toMatch(
      /cannot read .*missing\.json/,
    );
  });
});

describe('Retry tokens under a shared key', () => {
  it('one instance accepts the tokens of another with the same key, not of one with another key', () => {
    const key = randomBytes(32);
    const a = new RetryTokens(10_000, key);
    const b = new RetryTokens(10_000, key);
    const other = new RetryTokens(10_000, randomBytes(32));
    const odcid = randomBytes(20);
    const scid = randomBytes(16);
    const token = a.mint(odcid, scid, '198.51.100.4', 5555);
    expect(Buffer.from(b.verify(token, scid, '198.51.100.4', 5555)!)).toEqual(odcid);
    expect(other.verify(token, scid, '198.51.100.4', 5555)).toBeNull();
  });
});

describe('Stateless Resets', () => {
  const key = randomBytes(32);
  const cid = randomBytes(16);
  const resets = new StatelessResets(key);

  it('tokens are HMAC-SHA256(key, connection ID), first 16 octets, as quiche takes them', () => {
    const mac = createHmac('sha256', key).update(cid).digest().subarray(0, 16);
    expect(resets.token(cid)).toBe(BigInt(`0x${mac.toString('hex')}`));
    expect(new StatelessResets(key).token(cid)).toBe(resets.token(cid));
    expect(new StatelessResets(randomBytes(32)).token(cid)).not.toBe(resets.token(cid));
    expect(resets.enabled).toBe(true);
    // no key: tokens from a random one, and no resets sent
    expect(new StatelessResets(undefined).enabled).toBe(false);
  });

  it('are short headers ending in the token, always smaller than their trigger, none for triggers of 21 octets or less', () => {
    const token = createHmac('sha256', key).update(cid).digest().subarray(0, 16);
    for (let trigger = 0; trigger <= MIN_RESET; trigger++) expect(resets.build(cid, trigger)).toBeNull();
    for (const trigger of [22, 30, 43, 44, 45, 60, 100, 1200, 1500]) {
      for (let round = 0; round < 20; round++) {
        const reset = resets.build(cid, trigger)!;
        expect(reset.length).toBeLessThan(trigger);
        expect(reset.length).toBeGreaterThanOrEqual(MIN_RESET);
        // RFC 9000 10.3: answering 43 octets or less, one octet less
        if (trigger <= 43) expect(reset.length).toBe(trigger - 1);
        else expect(reset.length).toBeGreaterThanOrEqual(42);
        expect(reset[0]! & 0xc0).toBe(0x40);
        expect(reset.subarray(reset.length - 16)).toEqual(token);
      }
    }
    // the unpredictable bits are random
    expect(resets.build(cid, 100)!.subarray(0, 20)).not.toEqual(resets.build(cid, 100)!.subarray(0, 20));
  });
});
