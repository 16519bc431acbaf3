import type { Row } from './report.js';

/**
 * Every benchmark, by the name `wirelayer bench NAME` takes. A benchmark gives rows (formatted by
 * report.ts) or, for a table of its own shape, Markdown text. Each module is imported when its
 * benchmark runs, so `bench tcp` loads neither QUIC nor the DTLS engine.
 */
export const BENCHMARKS: Record<string, { title: string; run(): Promise<Row[] | string> }> = {
  tcp: { title: 'TCP driver vs node:net', run: async () => (await import('./tcp.js')).runTcpBench() },
  udp: {
    title: 'UDP relay vs a minimal node:dgram relay and socat (round trips/s)',
    run: async () => {
      const { formatUdpBenchTable, runUdpBench } = await import('./udp.js');
      return formatUdpBenchTable(
        await runUdpBench({ progress: (line) => process.stderr.write(`${line}\n`) }),
      );
    },
  },
  'udp-flood': {
    title: 'UDP relay under a hash-collision flood (a legitimate flow, with and without the flood)',
    run: async () =>
      (await import('./udp-flood.js')).runUdpFloodBench({
        progress: (line) => process.stderr.write(`${line}\n`),
      }),
  },
  tls: { title: 'TLS driver vs node:tls', run: async () => (await import('./tls.js')).runTlsBench() },
  certs: {
    title: 'Leaf certificates (forge structure, node:crypto signature) vs forge',
    run: async () => (await import('./certs.js')).runCertsBench(),
  },
  'dtls-engine': {
    title: 'DTLS engine (native, sans-IO) vs node:crypto AES-256-GCM',
    run: async () => (await import('./dtls-engine.js')).runDtlsEngineBench(),
  },
  dtls: {
    title: 'DTLS driver (loopback) vs the bare engine and werift-dtls',
    run: async () => (await import('./dtls.js')).runDtlsBench(),
  },
  handshake: {
    title: 'Handshake parsing (ClientHello, JA3/JA4, detect)',
    run: async () => (await import('./handshake-parse.js')).runHandshakeBench(),
  },
  quic: {
    title: 'QUIC driver vs the raw quiche loop',
    run: async () => (await import('./quic.js')).runQuicBench(),
  },
  'quic-flood': {
    title: 'QUIC listener under an Initial flood vs gtlsserver (ngtcp2)',
    run: async () => (await import('./quic-flood.js')).runQuicFloodBench(),
  },
  'quic-cids': {
    title: 'QUIC connection IDs per encoding (QUIC-LB) and reset tokens vs random, IDs/s',
    run: async () => (await import('./quic-cids.js')).runQuicCidsBench(),
  },
  'quic-initial': {
    title: 'QUIC Initial decrypt + ClientHello vs bare AES-128-GCM',
    run: async () => (await import('./quic-initial.js')).runQuicInitialBench(),
  },
  proxy: {
    title: 'Intercepting proxy: TLS, QUIC and DTLS through it vs direct and vs mitmdump; idle flow memory',
    run: async () =>
      (await import('./proxy.js')).runProxyBench({
        progress: (line) => process.stderr.write(`bench proxy: ${line}\n`),
      }),
  },
  intercept: {
    title: 'Interception matrix: QUIC, DTLS and TLS through the proxy, impaired and not, beside direct',
    run: async () =>
      (await import('./intercept.js')).runInterceptBench({
        progress: (line) => process.stderr.write(`bench intercept: ${line}\n`),
      }),
  },
  load: {
    title: 'wirelayer load: the generator beside iperf3 on loopback, and against C echo servers',
    run: async () =>
      (await import('./load.js')).runLoadBench({
        progress: (line) => process.stderr.write(`bench load: ${line}\n`),
      }),
  },
  socks5: {
    title: 'SOCKS5 UDP ASSOCIATE beside the reverse UDP relay (round trips/s)',
    run: async () =>
      (await import('./socks5.js')).runSocks5Bench({
        progress: (line) => process.stderr.write(`${line}\n`),
      }),
  },
  'proxy-protocol': {
    title: 'PROXY protocol v2 on the UDP relay path: accepted and sent upstream, beside the option off',
    run: async () =>
      (await import('./proxy-protocol.js')).runProxyProtocolBench({
        progress: (line) => process.stderr.write(`${line}\n`),
      }),
  },
  workers: {
    title: 'Workers: the UDP relay and QUIC handshakes with 1 and 2 worker processes (CPU per operation)',
    run: async () =>
      (await import('./workers.js')).runWorkersBench({
        progress: (line) => process.stderr.write(`${line}\n`),
      }),
  },
};
