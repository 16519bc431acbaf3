/** The `--impair` spec: what parses, and bad terms named in the error. */
import { describe, expect, it } from 'vitest';
import { ImpairSpecError, noFaults, packetFaults, parseImpairSpec } from '../../src/proxy/impair/spec.js';

function badTerm(spec: string): ImpairSpecError {
  try {
    parseImpairSpec(spec);
  } catch (e) {
    if (e instanceof ImpairSpecError) return e;
    throw e;
  }
  throw new Error(`parsed: ${spec}`);
}

describe('parseImpairSpec', () => {
  it('applies unprefixed faults both ways and prefixed ones to their direction', () => {
    const spec = parseImpairSpec('loss=0.3,burst=3,up:delay=20,down:jitter=5,seed=42');
    expect(spec.up).toMatchObject({ loss: 0.3, burst: 3, delay: 20, jitter: 0 });
    expect(spec.down).toMatchObject({ loss: 0.3, burst: 3, delay: 0, jitter: 5 });
    expect(spec.seed).toBe(42);
    expect(spec.rebind).toBeNull();
  });

  it('reads drop lists across commas, percentages, rates with units, blackholes and rebinding', () => {
    const spec = parseImpairSpec(
      'up:drop=3,4,7,down:loss=2%,rate=10M,queue=25,blackhole=500/250,rebind-addr=300',
    );
    expect(spec.up.drop).toEqual([3, 4, 7]);
    expect(spec.down.drop).toEqual([]);
    expect(spec.down.loss).toBeCloseTo(0.02);
    expect(spec.up.rate).toBe(10_000_000);
    expect(spec.down.queue).toBe(25);
    expect(spec.up.blackhole).toEqual({ onMs: 500, offMs: 250 });
    expect(spec.rebind).toEqual({ everyMs: 300, address: true });
    expect(parseImpairSpec('rate=800k').up.rate).toBe(800_000);
    expect(parseImpairSpec('mtu=300,corrupt=0.1,duplicate=1,reorder=0.5,gap=2').down).toMatchObject({
      mtu: 300,
      corrupt: 0.1,
      duplicate: 1,
      reorder: 0.5,
      gap: 2,
    });
  });

  it('names packet faults (those TCP and TLS cannot take)', () => {
    expect(packetFaults(parseImpairSpec('delay=10,rate=1M,blackhole=10/10'))).toEqual([]);
    expect(packetFaults(parseImpairSpec('up:loss=0.1,rebind=100'))).toEqual(['loss', 'rebind']);
    expect(noFaults().queue).toBeGreaterThan(0);
  });

  it.each([
    ['loss=1.5', 'loss=1.5', /0\.\.1/],
    ['loss=-0.1', 'loss=-0.1', /probability/],
    ['up:reorder=120%', 'up:reorder=120%', /0\.\.1/],
    ['delay=-5', 'delay=-5', /negative/],
    ['jitter=abc', 'jitter=abc', /milliseconds/],
    ['blackhole=100', 'blackhole=100', /ON_MS\/OFF_MS/],
    ['blackhole=100/-1', 'blackhole=100/-1', /negative/],
    ['warp=9', 'warp=9', /unknown fault "warp"/],
    ['loss=0.1,loss=0.2', 'loss=0.2', /twice/],
    ['down:rebind=100', 'down:rebind=100', /up only/],
    ['up:seed=1', 'up:seed=1', /both directions/],
    ['burst=3', 'burst=3', /give loss/],
    ['up:loss=0.1,burst=2', 'burst=2', /give loss for down/],
    ['rate=fast', 'rate=fast', /bits per second/],
    ['drop=0', 'drop=0', /1\.\./],
    ['mtu=0', 'mtu=0', /1\.\./],
    ['loss', 'loss', /KEY=VALUE/],
    ['loss=0.1,,delay=3', '', /empty term/],
    ['', '', /empty spec/],
  ])('refuses %s, naming the term', (spec, term, reason) => {
    const e = badTerm(spec);
    expect(e.term).toBe(term);
    expect(e.code).toBe('ERR_IMPAIR_SPEC');
    expect(e.message).toMatch(reason);
  });
});
