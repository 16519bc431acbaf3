/**
 * `wirelayer inspect --json` against tshark on real captures: every field tshark can see
 * (SNI, ALPN offered and chosen, offered ciphers, negotiated version and cipher, JA3 string
 * and hash) and JA4 worked out from tshark's dissection of the ClientHello. tshark 4.0 has no
 * JA4 field of its own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFlows, type TcpFlow } from '../../src/capture/index.js';
import { ja3String, parseClientHelloRecords } from '../../src/handshake/index.js';
import { INSPECT_RECORD_KEYS } from '../../src/inspect/index.js';
import { jsonLines, runCli } from '../cli/run.js';
import { tsharkRecords } from './tshark.js';

const FIXTURES = join(import.meta.dirname, '../fixtures');

/** Each fixture, and what it must show whatever the oracle says (so a silent oracle cannot pass). */
const CASES: readonly [file: string, expected: Record<string, unknown>][] = [
  ['inspect/tls10.pcap', { protocol: 'tls', tls_version: 'TLSv1', sni: 'wirelayer.test' }],
  ['inspect/tls11.pcap', { protocol: 'tls', tls_version: 'TLSv1.1' }],
  [
    'inspect/tls12-alpn.pcap',
    { protocol: 'tls', tls_version: 'TLSv1.2', alpn: 'h2', alpn_offers: ['h2', 'http/1.1'] },
  ],
  [
    'inspect/tls13.pcap',
    { protocol: 'tls', tls_version: 'TLSv1.3', alpn: null, alpn_offers: ['h2', 'http/1.1'] },
  ],
  ['inspect/tls13-frag.pcap', { protocol: 'tls', tls_version: 'TLSv1.3' }],
  ['inspect/tls13-hrr.pcap', { protocol: 'tls', tls_version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }],
  ['inspect/dtls1.pcap', { protocol: 'dtls', tls_version: 'DTLSv1' }],
  ['inspect/dtls12-frag.pcap', { protocol: 'dtls', tls_version: 'DTLSv1.2' }],
  ['inspect/quic-v1.pcap', { protocol: 'quic', tls_version: 'QUICv1', sni: 'localhost', alpn: null }],
  ['inspect/quic-hrr.pcap', { protocol: 'quic', tls_version: 'QUICv1', cipher: 'TLS_AES_128_GCM_SHA256' }],
  ['inspect/quic-retry.pcap', { protocol: 'quic', tls_version: 'QUICv1' }],
  ['capture/tls13-ipv4.pcap', { protocol: 'tls', tls_version: 'TLSv1.3' }],
  ['capture/tls12-ipv6.pcapng', { protocol: 'tls', tls_version: 'TLSv1.2', client: ['::1', 47008] }],
  ['capture/dtls12-any-sll2.pcap', { protocol: 'dtls', tls_version: 'DTLSv1.2' }],
];

describe('inspect --json agrees with tshark', () => {
  it.each(CASES)('%s', async (file, expected) => {
    const path = join(FIXTURES, file);
    const { code, stdout, stderr } = await runCli(['inspect', path, '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const records = jsonLines(stdout);
    expect(records).toHaveLength(1);
    const record = records[0]!;
    expect(Object.keys(record)).toEqual([...INSPECT_RECORD_KEYS]);
    expect(record).toMatchObject(expected);

    const oracle = tsharkRecords(path);
    expect(oracle).toHaveLength(1);
    const { ja3_full, ...fromTshark } = oracle[0]!;
    expect(record).toEqual(fromTshark);
    // Every field a record can fill, filled: these handshakes all completed.
    for (const key of ['sni', 'tls_version', 'cipher', 'ja3', 'ja4'] as const)
      expect(record[key]).not.toBeNull();
    expect(ja3_full).not.toBeNull();
  });

  it('the JA3 string before hashing is the one tshark shows (TLS)', () => {
    for (const [file] of CASES.filter(([, e]) => e.protocol === 'tls')) {
      const path = join(FIXTURES, file);
      const flow = readFlows(readFileSync(path)).flows[0] as TcpFlow;
      const hello = parseClientHelloRecords(flow.clientToServer);
      if (hello.status !== 'done') throw new Error(`${file}: no ClientHello`);
      expect(ja3String(hello.value), file).toBe(tsharkRecords(path)[0]!.ja3_full);
    }
  });
});
