import { defineConfig } from 'vitest/config';

/**
 * The tests of what runs on datagram sockets (the UDP, DTLS and QUIC drivers, their relays in the
 * proxy, the CLIs over them): run a second time on node:dgram, so both socket backends stay
 * tested (the first run takes the default, the native socket on Linux).
 */
const DATAGRAM_TESTS = [
  'test/transport/udp*.test.ts',
  'test/transport/dtls*.test.ts',
  'test/transport/quic*.test.ts',
  'test/proxy/udp.test.ts',
  'test/proxy/dtls.test.ts',
  'test/proxy/quic.test.ts',
  'test/transport/proxy-protocol*.test.ts',
  'test/proxy/proxy-protocol.test.ts',
  'test/bench/udp-flood.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/setup/build.ts'],
    reporters: ['default', './test/setup/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // most files wait on peers and sockets, not the CPU: two at a time on the 2-core CI machine (the default is one)
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          include: ['test/**/*.test.ts'],
          // on Linux the native socket must load: a broken build fails here, never falls back quietly
          env: process.platform === 'linux' ? { WIRELAYER_DATAGRAM: 'native' } : {},
        },
      },
      {
        extends: true,
        test: { name: 'dgram', include: DATAGRAM_TESTS, env: { WIRELAYER_DATAGRAM: 'dgram' } },
      },
    ],
  },
});
