import { runHandshakeBench } from './handshake-parse.js';
import { runQuicBench } from './quic.js';
import { runQuicInitialBench } from './quic-initial.js';
import type { Row } from './report.js';
import { runTcpBench } from './tcp.js';

/** Every benchmark, by the name `wirelayer bench NAME` takes. */
export const BENCHMARKS: Record<string, { title: string; run(): Promise<Row[]> }> = {
  tcp: { title: 'TCP driver vs node:net', run: () => runTcpBench() },
  handshake: { title: 'Handshake parsing (ClientHello, JA3/JA4, detect)', run: () => runHandshakeBench() },
  quic: { title: 'QUIC driver vs the raw quiche loop', run: () => runQuicBench() },
  'quic-initial': {
    title: 'QUIC Initial decrypt + ClientHello vs bare AES-128-GCM',
    run: () => runQuicInitialBench(),
  },
};
