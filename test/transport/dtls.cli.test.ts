/**
 * The built `wirelayer` with the dtls scheme: `listen dtls://` and `connect dtls://` print `up`
 * records with the handshake fields (tls_version, IANA cipher, sni, alpn, alpn_offers), and
 * `demo` runs the DTLS case.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CLI, jsonLines, runCli } from '../cli/run.js';

describe('wirelayer listen/connect dtls://', () => {
  it('both print up records with the negotiated handshake', async () => {
    const listen = spawn(process.execPath, [CLI, 'listen', 'dtls://127.0.0.1:0', '--json', '--alpn', 'b'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    listen.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    listen.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    try {
      const deadline = Date.now() + 10_000;
      let port: number | null = null;
      while (port === null && Date.now() < deadline) {
        const m = /listening on dtls:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(port, stderr).not.toBeNull();
      const result = await runCli([
        'connect',
        `dtls://127.0.0.1:${port}`,
        '--json',
        '--insecure',
        '--sni',
        'localhost',
        '--alpn',
        'a,b',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const records = jsonLines(result.stdout);
      expect(records.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      const up = records[1]!;
      expect(up).toMatchObject({
        driver: 'dtls',
        role: 'server',
        tls: true,
        transport_protocol: 'udp',
        tls_version: 'DTLSv1.2',
        sni: 'localhost',
        alpn: 'b',
        alpn_offers: ['a', 'b'],
        timestamp_tcp_setup: null,
      });
      expect(up.cipher).toMatch(/^TLS_ECDHE_(RSA|ECDSA)_WITH_/);
      expect((up.certificate_list as string[])[0]).toMatch(/^-----BEGIN CERTIFICATE-----/);

      // the listener's side: start, up (then closed on the client's close_notify)
      const until = Date.now() + 5000;
      while (!stdout.includes('"closed"') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const server = jsonLines(stdout);
      expect(server.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      expect(server[1]).toMatchObject({
        driver: 'dtls',
        role: 'client',
        tls: true,
        tls_version: 'DTLSv1.2',
        cipher: up.cipher,
        sni: 'localhost',
        alpn: 'b',
        alpn_offers: ['a', 'b'],
      });
      expect(server[1]!.mitmcert).toBe((up.certificate_list as string[])[0]);
    } finally {
      if (listen.exitCode === null && listen.pid !== undefined) {
        const exited = once(listen, 'exit');
        process.kill(listen.pid, 'SIGTERM');
        await exited;
      }
    }
  });

  it('a failed connect prints an error record and exits 1', async () => {
    const result = await runCli(['connect', 'dtls://127.0.0.1:9', '--json', '--connect-timeout', '1000']);
    expect(result.code).toBe(1);
    const records = jsonLines(result.stdout);
    expect(records.at(-1)).toMatchObject({ event: 'error', driver: 'dtls', tls: true });
    expect(records.at(-1)!.error).toMatch(/Connection refused|did not complete/);
  });

  it('demo runs the dtls case: up records with the handshake on both sides', async () => {
    const result = await runCli(['demo', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const dtlsUps = jsonLines(result.stdout).filter((r) => r.driver === 'dtls' && r.event === 'up');
    expect(dtlsUps.map((r) => r.role).sort()).toEqual(['client', 'server']);
    for (const r of dtlsUps) expect(r).toMatchObject({ tls_version: 'DTLSv1.2', alpn: 'wirelayer-demo' });
  });
});
