/**
 * The load benchmark runs (one short round): the figures are measured by `wirelayer bench load`,
 * not asserted here, but a benchmark that no longer runs would otherwise go unnoticed. It runs
 * the built CLI as its generator, beside iperf3, socat and openssl s_server.
 */
import { describe, expect, it } from 'vitest';
import type * as Bench from '../../bench/load.js';

// the built bench (test/setup builds dist/): it starts `wirelayer load` from dist/src/cli/main.js
const BUILT = new URL('../../dist/bench/load.js', import.meta.url).href;

describe('benchmarks run', () => {
  it('load: every row measured, beside its baseline', async () => {
    const { runLoadBench } = (await import(BUILT)) as typeof Bench;
    const rows = await runLoadBench({ seconds: 1, rounds: 1 });
    expect(rows.map((r) => r.baselineName)).toEqual([
      'iperf3',
      'iperf3 -u -b 0',
      'iperf3 -u -b 0',
      'node:dgram',
      'against socat PIPE',
      'against openssl s_server -rev',
    ]);
    for (const r of rows) {
      expect(r.value, r.name).toBeGreaterThan(0);
      expect(r.baseline, r.name).toBeGreaterThan(0);
    }
  }, 90_000);
});
