/**
 * The proxy benchmark runs (short measures, one round, 10 idle flows, without mitmdump): speed is
 * measured by `wirelayer bench proxy`, not asserted here.
 */
import { describe, expect, it } from 'vitest';
import type * as Bench from '../../bench/proxy.js';

// the built bench: it starts `wirelayer proxy` and `wirelayer listen` from dist/src/cli/main.js
const BUILT = new URL('../../dist/bench/proxy.js', import.meta.url).href;

describe('benchmarks run', () => {
  it('proxy', async () => {
    const { runProxyBench } = (await import(BUILT)) as typeof Bench;
    const rows = await runProxyBench({ seconds: 0.2, rounds: 1, flows: 10, mitmdump: false });
    expect(rows.map((r) => r.name)).toEqual([
      'intercepted TLS bulk (vs direct)',
      'intercepted TLS handshakes/s (vs direct)',
      'intercepted QUIC bulk, one stream (vs direct)',
      'intercepted DTLS 1200 B echo, 16 in flight (vs direct)',
      ...['tls', 'udp', 'dtls', 'quic'].map(
        (k) => `idle intercepted ${k} flow, RSS (vs a listener's session; lower is better)`,
      ),
    ]);
    // rates measured on both sides; memory can round to nothing with 20 flows
    for (const r of rows.slice(0, 4)) {
      expect(r.value, r.name).toBeGreaterThan(0);
      expect(r.baseline, r.name).toBeGreaterThan(0);
    }
  }, 120_000);
});
