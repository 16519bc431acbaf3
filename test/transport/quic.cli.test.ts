/**
 * `wirelayer listen quic://` and `connect quic://` (the built CLI): the contract's records
 * with every handshake field, the key log flag, and exit codes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, jsonLines, runCli } from '../cli/run.js';
import { fixturePath } from '../helpers/certs.js';

const dir = mkdtempSync(join(tmpdir(), 'wirelayer-quic-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('wirelayer CLI over quic://', () => {
  it('listen and connect print up records with the handshake fields; --keylog writes secrets', async () => {
    const listener = spawn(
      process.execPath,
      [
        CLI,
        'listen',
        'quic://127.0.0.1:0',
        '--json',
        '--cert',
        fixturePath('ec-cert.pem'),
        '--key',
        fixturePath('ec-key.pem'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let stderr = '';
      let stdout = '';
      listener.stderr.on('data', (d: Buffer) => {
        stderr += d;
      });
      listener.stdout.on('data', (d: Buffer) => {
        stdout += d;
      });
      while (!/listening on quic:\/\/127\.0\.0\.1:(\d+)/.test(stderr)) await once(listener.stderr, 'data');
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
      const keylog = join(dir, 'keys.log');
      const { code, stdout: out } = await runCli([
        'connect',
        `quic://127.0.0.1:${port}`,
        '--json',
        '--ca',
        fixturePath('ec-cert.pem'),
        '--sni',
        'localhost',
        '--alpn',
        'x-test,h3',
        '--keylog',
        keylog,
      ]);
      expect(code).toBe(0);
      const records = jsonLines(out);
      expect(records.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      const up = records[1]!;
      expect(up).toMatchObject({
        driver: 'quic',
        role: 'server',
        transport_protocol: 'udp',
        tls: true,
        tls_version: 'QUICv1',
        cipher: 'TLS_AES_128_GCM_SHA256',
        alpn: 'x-test',
        alpn_offers: ['x-test', 'h3'],
        sni: 'localhost',
        error: null,
        timestamp_tcp_setup: null,
      });
      expect(up.certificate_list).toHaveLength(1);
      expect(readFileSync(keylog, 'utf8')).toMatch(/^CLIENT_TRAFFIC_SECRET_0 /m);
      for (let i = 0; i < 100 && !stdout.includes('"closed"'); i++)
        await new Promise((r) => setTimeout(r, 20));
      const served = jsonLines(stdout);
      expect(served.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      expect(served[1]).toMatchObject({ role: 'client', sni: 'localhost', alpn_offers: ['x-test', 'h3'] });
      expect(served[1]!.peername).toEqual(up.sockname);
    } finally {
      listener.kill('SIGTERM');
      const [exitCode] = await once(listener, 'exit');
      expect(exitCode).toBe(0);
    }
  });

  it('connect to a port where nothing listens prints an error record and exits 1', async () => {
    const { code, stdout } = await runCli(['connect', 'quic://127.0.0.1:9', '--json', '--insecure']);
    expect(code).toBe(1);
    const records = jsonLines(stdout);
    expect(records.map((r) => r.event)).toEqual(['start', 'error']);
    expect(records[1]!.error).toMatch(/ECONNREFUSED/);
  });
});
