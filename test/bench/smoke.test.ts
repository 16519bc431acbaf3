/**
 * The benchmarks run (tiny sizes, one round): speed is measured by `npm run bench`, not asserted
 * here, but a benchmark that no longer runs would otherwise go unnoticed until someone measures.
 */
import { describe, expect, it } from 'vitest';
import { runCertsBench } from '../../bench/certs.js';
import { runDtlsBench } from '../../bench/dtls.js';
import { runDtlsEngineBench } from '../../bench/dtls-engine.js';
import { runHandshakeBench } from '../../bench/handshake-parse.js';
import { runInterceptBench } from '../../bench/intercept.js';
import { runQuicBench } from '../../bench/quic.js';
import type { Row } from '../../bench/report.js';
import { runTcpBench } from '../../bench/tcp.js';
import { runTlsBench } from '../../bench/tls.js';

const measured = (rows: Row[]): void => {
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect(r.value, r.name).toBeGreaterThan(0);
};

describe('benchmarks run', () => {
  it('tcp', async () => measured(await runTcpBench(1)));
  it('tls', async () => measured(await runTlsBench({ rounds: 1, bulkBytes: 1 << 20, handshakes: 5 })));
  it('certs', () => measured(runCertsBench({ leaves: 10 })));
  it('handshake parsing', async () => measured(await runHandshakeBench(20)));
  it('dtls engine', async () => measured(await runDtlsEngineBench({ roundMs: 50, rounds: 1 })));
  it('dtls driver', async () => measured(await runDtlsBench({ roundMs: 100, rounds: 1 })));
  it('quic', async () => measured(await runQuicBench({ mb: 1, handshakes: 3, rounds: 1 })));
  it('intercept (its TLS part)', async () =>
    measured(await runInterceptBench({ parts: ['tls'], rounds: 1, transferBytes: 300_000 })));
});
