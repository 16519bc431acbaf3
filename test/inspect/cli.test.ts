/**
 * `wirelayer inspect` through the built binary: the table, JSON lines, and the exit codes and
 * stderr of damaged, foreign, missing and absent files (never a stack trace).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { INSPECT_RECORD_KEYS } from '../../src/inspect/index.js';
import { jsonLines, runCli } from '../cli/run.js';
import { recordBoundaries } from './boundaries.js';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const TLS12 = join(FIXTURES, 'inspect/tls12-alpn.pcap');
const tmp = mkdtempSync(join(tmpdir(), 'wirelayer-inspect-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function save(name: string, bytes: Uint8Array | string): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

const STACK_FRAME = /^\s+at /m;

describe('wirelayer inspect', () => {
  it('prints a table: header and one aligned row per connection', async () => {
    const { code, stdout, stderr } = await runCli(['inspect', TLS12]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^PROTO {2}CLIENT +SERVER +SNI +VERSION +CIPHER +ALPN +ALPN OFFERS +CIPHERS +JA4$/,
    );
    const cells = lines[1]!.split(/ {2,}/);
    expect(cells).toEqual([
      'tls',
      '127.0.0.1:50032',
      '127.0.0.1:46375',
      'wirelayer.test',
      'TLSv1.2',
      'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
      'h2',
      'h2,http/1.1',
      '28',
      't12d2808h2_d943125447b4_e7e480e5a997',
    ]);
    expect(lines[0]!.indexOf('CIPHER ')).toBe(lines[1]!.indexOf('TLS_ECDHE'));
  });

  it('--json prints one contract object per line', async () => {
    const { code, stdout, stderr } = await runCli(['inspect', '--json', TLS12]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const records = jsonLines(stdout);
    expect(records).toHaveLength(1);
    expect(Object.keys(records[0]!)).toEqual([...INSPECT_RECORD_KEYS]);
    expect(records[0]).toMatchObject({
      protocol: 'tls',
      client: ['127.0.0.1', 50032],
      server: ['127.0.0.1', 46375],
      sni: 'wirelayer.test',
      alpn_offers: ['h2', 'http/1.1'],
      tls_version: 'TLSv1.2',
      cipher: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
      alpn: 'h2',
      ja3: '22558766122974704364c9c75c5cce0a',
      ja4: 't12d2808h2_d943125447b4_e7e480e5a997',
    });
  });

  it('a capture with no TLS, DTLS or QUIC: says so, exit 0 (--json: nothing)', async () => {
    const udp = join(FIXTURES, 'capture/udp-any-sll.pcap');
    const human = await runCli(['inspect', udp]);
    expect(human).toEqual({ code: 0, stdout: 'no TLS, DTLS or QUIC connection in 6 packets\n', stderr: '' });
    expect(await runCli(['inspect', udp, '--json'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('truncated: the records read, then the offset on stderr, exit 1', async () => {
    const bytes = readFileSync(join(FIXTURES, 'inspect/quic-hrr.pcap'));
    const boundaries = recordBoundaries(bytes);
    // Cut inside the 6th packet record: the ClientHello, the HelloRetryRequest, the second
    // ClientHello and the ServerHello are all in the packets before it.
    const at = boundaries[5]! + 20;
    const path = save('cut.pcap', bytes.subarray(0, at));
    const { code, stdout, stderr } = await runCli(['inspect', path, '--json']);
    expect(code).toBe(1);
    expect(jsonLines(stdout)).toHaveLength(1);
    expect(jsonLines(stdout)[0]).toMatchObject({ protocol: 'quic', cipher: 'TLS_AES_128_GCM_SHA256' });
    expect(stderr).toBe(
      `wirelayer inspect: ${path}: capture truncated at offset ${boundaries[5]}: pcap record data cut short\n`,
    );

    // Cut before the ServerHello: the record without what the server chose, and the same kind of error.
    const early = save('early.pcap', bytes.subarray(0, boundaries[1]! + 3));
    const first = await runCli(['inspect', early]);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(
      /^quic +127\.0\.0\.1:\d+ +127\.0\.0\.1:\d+ +localhost +- +- +- +h3 +4 +q13d/m,
    );
    expect(first.stderr).toMatch(
      /^wirelayer inspect: .*: capture truncated at offset \d+: pcap record header cut short\n$/,
    );
  });

  it('truncated pcapng, a ClientHello cut by it: a note and the error, exit 1', async () => {
    const bytes = readFileSync(join(FIXTURES, 'capture/tls12-ipv6.pcapng'));
    const boundaries = recordBoundaries(bytes);
    const path = save('cut.pcapng', bytes.subarray(0, boundaries.at(-3)! + 30));
    const { code, stdout, stderr } = await runCli(['inspect', path]);
    expect(code).toBe(1);
    expect(stdout.split('\n')[1]).toMatch(/^tls +\[::1\]:47008 +\[::1\]:44302 +wirelayer\.test +TLSv1\.2 /);
    expect(stderr).toMatch(/capture truncated at offset \d+: pcapng block cut short\n$/);
    expect(stderr).not.toMatch(STACK_FRAME);
  });

  it('corrupt record length: the records before it, "capture corrupt", exit 1', async () => {
    const bytes = Uint8Array.from(readFileSync(join(FIXTURES, 'inspect/tls13.pcap')));
    const boundaries = recordBoundaries(bytes);
    // The 6th record (after the ServerHello) claims 4 GB.
    new DataView(bytes.buffer).setUint32(boundaries[6]! + 8, 0xfffffff0, true);
    const path = save('corrupt.pcap', bytes);
    const { code, stdout, stderr } = await runCli(['inspect', path, '--json']);
    expect(code).toBe(1);
    expect(jsonLines(stdout)[0]).toMatchObject({ tls_version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
    expect(stderr).toBe(
      `wirelayer inspect: ${path}: capture corrupt at offset ${boundaries[6]}: pcap record length 4294967280 is implausible (bad-length)\n`,
    );
  });

  it('a ClientHello cut short inside the capture: a note on stderr, exit 0', async () => {
    const bytes = Uint8Array.from(readFileSync(join(FIXTURES, 'inspect/tls13.pcap')));
    const boundaries = recordBoundaries(bytes);
    // Drop the ServerHello and everything after: the 4th record holds the ClientHello; cut its
    // TCP payload short by lowering the record's captured length (a snapshot length).
    const clientHelloRecord = boundaries[3]!;
    const view = new DataView(bytes.buffer);
    const captured = view.getUint32(clientHelloRecord + 8, true);
    view.setUint32(clientHelloRecord + 8, captured - 100, true);
    const shortened = bytes.subarray(0, clientHelloRecord + 16 + captured - 100);
    const path = save('snapped.pcap', shortened);
    const { code, stdout, stderr } = await runCli(['inspect', path, '--json']);
    expect(code).toBe(0);
    expect(jsonLines(stdout)[0]).toMatchObject({ protocol: 'tls', sni: null, ja3: null });
    expect(stderr).toMatch(
      /^wirelayer inspect: note: tls 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+: ClientHello incomplete: the client's stream has \d+ bytes/,
    );
  });

  it.each([
    [
      'not a capture',
      'text.txt',
      'hello, this is text\n',
      /: not a pcap or pcapng file: neither a pcap nor a pcapng file\n$/,
    ],
    [
      'empty',
      'empty.pcap',
      '',
      /: capture truncated at offset 0: capture file shorter than a magic number\n$/,
    ],
  ])('%s: exit 1 and a one-line error', async (_, name, content, message) => {
    const path = save(name, content);
    const { code, stdout, stderr } = await runCli(['inspect', path]);
    expect(code).toBe(1);
    expect(stdout).toBe('no TLS, DTLS or QUIC connection in 0 packets\n');
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')).toHaveLength(2);
  });

  it('a missing file: exit 1, the OS reason', async () => {
    const { code, stdout, stderr } = await runCli(['inspect', join(tmp, 'nope.pcap')]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^wirelayer inspect: cannot read .*nope\.pcap: ENOENT/);
    expect(stderr).not.toMatch(STACK_FRAME);
  });

  it.each([[[]], [['a.pcap', 'b.pcap']], [['--bogus', 'a.pcap']]])(
    'bad usage %j: exit 2 with the usage',
    async (args) => {
      const { code, stderr } = await runCli(['inspect', ...args]);
      expect(code).toBe(2);
      expect(stderr).toMatch(/^wirelayer inspect: .*\n\nwirelayer inspect CAPTURE \[--json\]/);
    },
  );

  it('is listed in the help', async () => {
    const { stdout } = await runCli(['--help']);
    expect(stdout).toMatch(/^ {2}wirelayer inspect CAPTURE \[--json\]$/m);
  });
});
