import { runCertsBench } from './certs.js';
import { runDtlsBench } from './dtls.js';
import { runDtlsEngineBench } from './dtls-engine.js';
import { runHandshakeBench } from './handshake-parse.js';
import { runQuicBench } from './quic.js';
import { runQuicInitialBench } from './quic-initial.js';
import type { Row } from './report.js';
import { runTcpBench } from './tcp.js';
import { runTlsBench } from './tls.js';

/** Every benchmark, by the name `wirelayer bench NAME` takes. */
export const BENCHMARKS: Record<string, { title: string; run(): Promise<Row[]> }> = {
  tcp: { title: 'TCP driver vs node:net', run: () => runTcpBench() },
  tls: { title: 'TLS driver vs node:tls', run: () => runTlsBench() },
  certs: {
    title: 'Leaf certificates (forge structure, node:crypto signature) vs forge',
    run: async () => runCertsBench(),
  },
  'dtls-engine': {
    title: 'DTLS engine (native, sans-IO) vs node:crypto AES-256-GCM',
    run: () => runDtlsEngineBench(),
  },
  dtls: { title: 'DTLS driver (loopback) vs the bare engine and werift-dtls', run: () => runDtlsBench() },
  handshake: { title: 'Handshake parsing (ClientHello, JA3/JA4, detect)', run: () => runHandshakeBench() },
  quic: { title: 'QUIC driver vs the raw quiche loop', run: () => runQuicBench() },
  'quic-initial': {
    title: 'QUIC Initial decrypt + ClientHello vs bare AES-128-GCM',
    run: () => runQuicInitialBench(),
  },
};
