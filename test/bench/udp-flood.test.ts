/**
 * The collision-flood benchmark runs (a small flood, one round): speed is measured by
 * `npm run bench udp-flood`, not asserted here.
 */
import { describe, expect, it } from 'vitest';
import type * as Bench from '../../bench/udp-flood.js';

// the built bench (test/setup builds dist/): it starts its relays and peers from dist/bench/*.js
const BUILT = new URL('../../dist/bench/udp-flood.js', import.meta.url).href;

describe('benchmarks run', () => {
  it('udp-flood', async () => {
    const { runUdpFloodBench } = (await import(BUILT)) as typeof Bench;
    const rows = await runUdpFloodBench({
      sources: 300,
      floodRate: 2000,
      rounds: 1,
      durationMs: 100,
      warmupMs: 20,
      lookupMs: 20,
    });
    expect(rows.map((r) => r.name).filter((n) => n.includes('under a flood'))).toHaveLength(2);
    for (const r of rows) expect(r.value, r.name).toBeGreaterThan(0);
    // our relay looked up each flood datagram's flow with about one compare, and refused none
    const compares = rows.find((r) => r.name.includes('entries compared'));
    expect(compares?.value).toBeLessThan(1.1);
    expect(compares?.name).toContain('new peers refused: 0');
  }, 60_000);
});
