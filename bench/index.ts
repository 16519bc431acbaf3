import { runCertsBench } from './certs.js';
import { runDtlsBench } from './dtls.js';
import { runDtlsEngineBench } from './dtls-engine.js';
import { runHandshakeBench } from './handshake-parse.js';
import { runQuicBench } from './quic.js';
import { runQuicFloodBench } from './quic-flood.js';
import { runQuicInitialBench } from './quic-initial.js';
import type { Row } from './report.js';
import { runTcpBench } from './tcp.js';
import { runTlsBench } from './tls.js';
import { formatUdpBenchTable, runUdpBench } from './udp.js';

/** Every benchmark, by the name `wirelayer bench NAME` takes. */
/** A benchmark gives rows (formatted by report.ts) or, for a table of its own shape, Markdown text. */
export const BENCHMARKS: Record<string, { title: string; run(): Promise<Row[] | string> }> = {
  tcp: { title: 'TCP driver vs node:net', run: () => runTcpBench() },
  udp: {
    title: 'UDP relay vs a minimal node:dgram relay and socat (round trips/s)',
    run: async () =>
      formatUdpBenchTable(await runUdpBench({ progress: (line) => process.stderr.write(`${line}\n`) })),
  },
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
  'quic-flood': {
    title: 'QUIC listener under an Initial flood vs gtlsserver (ngtcp2)',
    run: () => runQuicFloodBench(),
  },
  'quic-initial': {
    title: 'QUIC Initial decrypt + ClientHello vs bare AES-128-GCM',
    run: () => runQuicInitialBench(),
  },
};
