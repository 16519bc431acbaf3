/**
 * `wirelayer bench socks5` runs (one short round): its figures are measured by the bench, not
 * asserted here, but a benchmark that no longer runs would otherwise go unnoticed. The built
 * bench (test/setup builds dist/): it forks dist/bench/socks5-relays.js.
 */
import { describe, expect, it } from 'vitest';
import type * as Bench from '../../bench/socks5.js';

const BUILT = new URL('../../dist/bench/socks5.js', import.meta.url).href;

describe('bench socks5', () => {
  it('measures the UDP ASSOCIATE path beside reverse:udp, every datagram relayed, none dropped', async () => {
    const { measureSocks5, formatSocks5Table } = (await import(BUILT)) as typeof Bench;
    const result = await measureSocks5({
      sizes: [64],
      flows: [1, 4],
      rounds: 1,
      durationMs: 150,
      warmupMs: 50,
    });
    expect(result.cases.map((c) => [c.size, c.flows])).toEqual([
      [64, 1],
      [64, 4],
    ]);
    for (const c of result.cases) {
      expect(c.rate.reverse).toBeGreaterThan(0);
      expect(c.rate.socks5).toBeGreaterThan(0);
    }
    // one association per flow and case, and nothing dropped on the way
    expect(result.socks5.associations).toBe(1 + 4);
    expect(result.socks5).toMatchObject({
      fragDrops: 0,
      foreignDrops: 0,
      malformedDrops: 0,
      pendingDrops: 0,
    });
    expect(formatSocks5Table(result.cases, result)).toMatch(/\| +64 B \| +4 \| .* \| +\d\.\d\dx \|/);
  }, 90_000);
});
