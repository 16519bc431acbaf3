/**
 * The PROXY protocol benchmark runs (tiny sizes, one round): speed is measured by
 * `wirelayer bench proxy-protocol`, not asserted here. The bench itself fails when the relay did
 * not take the load generator's headers, so a run also proves it measured what it says.
 */
import { describe, expect, it } from 'vitest';
import type * as Bench from '../../bench/proxy-protocol.js';

// the built bench (test/setup builds dist/): it starts its relays and peers from dist/bench/*.js
const BUILT = new URL('../../dist/bench/proxy-protocol.js', import.meta.url).href;

describe('benchmarks run', () => {
  it('proxy-protocol', async () => {
    const { runProxyProtocolBench } = (await import(BUILT)) as typeof Bench;
    const rows = await runProxyProtocolBench({
      sizes: [64],
      flows: [1, 20],
      rounds: 1,
      durationMs: 100,
      warmupMs: 20,
      microMs: 20,
    });
    expect(rows.filter((r) => r.unit === 'rt/s')).toHaveLength(2);
    for (const r of rows.filter((r) => r.unit !== 'ns')) {
      expect(r.value, r.name).toBeGreaterThan(0);
      expect(r.baseline, r.name).toBeGreaterThan(0);
    }
    expect(rows.at(-1)!.unit).toBe('ns');
  }, 60_000);
});
