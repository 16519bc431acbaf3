import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CLIENT_STATE_KEYS, SERVER_STATE_KEYS } from '../../src/connection/index.js';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.js';
import { CLI, jsonLines, runCli } from './run.js';

describe('wirelayer CLI', () => {
  it('demo prints a Client and a Server model of a real TCP connection', async () => {
    const { code, stdout } = await runCli(['demo']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Server\(127\.0\.0\.1:\d+, state=closed\) {2}start {2}tcp$/m);
    expect(stdout).toMatch(/^Client\(127\.0\.0\.1:\d+, state=open\) {2}up {2}tcp/m);
    expect(stdout).toMatch(/^Server\(127\.0\.0\.1:\d+, state=open, src_port=\d+\) {2}up {2}tcp/m);
    expect(stdout).toMatch(/^Client\(127\.0\.0\.1:\d+, state=closed\) {2}closed/m);
    expect(stdout).toMatch(/^Server\(127\.0\.0\.1:\d+, state=closed, src_port=\d+\) {2}closed/m);
  });

  it('demo --json prints contract records: event, driver, role, then the state keys in order', async () => {
    const { code, stdout } = await runCli(['demo', '--json']);
    expect(code).toBe(0);
    const records = jsonLines(stdout).filter((r) => r.driver === 'tcp');
    const events = records.map((r) => `${r.role}:${r.event}`);
    expect(events).toEqual(
      expect.arrayContaining([
        'server:start',
        'server:up',
        'client:start',
        'client:up',
        'client:closed',
        'server:closed',
      ]),
    );
    for (const r of records) {
      const keys = r.role === 'client' ? CLIENT_STATE_KEYS : SERVER_STATE_KEYS;
      expect(Object.keys(r)).toEqual(['event', 'driver', 'role', ...keys]);
    }
    const up = records.find((r) => r.role === 'server' && r.event === 'up')!;
    const client = records.find((r) => r.role === 'client' && r.event === 'up')!;
    expect(up.peername).toEqual(client.sockname);
    expect(up.sockname).toEqual(client.peername);
    expect(up.timestamp_tcp_setup as number).toBeGreaterThanOrEqual(up.timestamp_start as number);
    const closed = records.find((r) => r.role === 'server' && r.event === 'closed')!;
    expect(closed.timestamp_end as number).toBeGreaterThanOrEqual(up.timestamp_tcp_setup as number);
  });

  it('connect to a closed port prints an error record with the OS message and exits 1', async () => {
    const port = await freeTcpPort('127.0.0.1');
    const { code, stdout } = await runCli(['connect', `tcp://127.0.0.1:${port}`, '--json']);
    expect(code).toBe(1);
    const records = jsonLines(stdout);
    expect(records.map((r) => r.event)).toEqual(['start', 'error']);
    expect(records[1]!.error).toBe(`Connection refused (connect ECONNREFUSED 127.0.0.1:${port})`);
    expect(records[1]!.role).toBe('server');
  });

  it.each([
    ['tcp', 'tcp', false],
    ['tls', 'tcp', true],
    ['udp', 'udp', false],
    ['dtls', 'udp', true],
    ['quic', 'udp', true],
  ] as const)(
    'connect %s:// --json: the start record already says transport %s, tls %s',
    async (scheme, transport, tls) => {
      // nothing listens there: only the first record matters (udp, without a probe, connects anyway)
      const port = await (transport === 'tcp' ? freeTcpPort : freeUdpPort)('127.0.0.1');
      const { code, stdout } = await runCli([
        'connect',
        `${scheme}://127.0.0.1:${port}`,
        '--json',
        '--alpn',
        'x,y',
        '--connect-timeout',
        '2000',
      ]);
      const records = jsonLines(stdout);
      const start = records[0]!;
      expect(start.event).toBe('start');
      expect(start.role).toBe('server');
      expect(start.address).toEqual(['127.0.0.1', port]);
      expect(start.transport_protocol).toBe(transport);
      expect(start.tls).toBe(tls);
      // what a handshake will send is known before it runs; no SNI for an IP literal
      expect(start.alpn_offers).toEqual(tls ? ['x', 'y'] : []);
      expect(start.sni).toBeNull();
      const last = records.at(-1)!;
      expect(last.transport_protocol).toBe(transport);
      expect(last.tls).toBe(tls);
      if (scheme !== 'udp') {
        expect(code).toBe(1);
        expect(last.event).toBe('error');
        expect(last.timestamp_end as number).toBeGreaterThanOrEqual(last.timestamp_start as number);
      }
    },
  );

  it.each([
    [['connect']],
    [['connect', 'tcp://127.0.0.1:1', '--timeout', '1000']],
    [['connect', 'tcp://127.0.0.1']],
    [['connect', 'ftp://127.0.0.1:21']],
    [['connect', 'tcp://127.0.0.1:99999']],
    [['connect', 'tcp://127.0.0.1:1', '--bogus']],
    [['listen', 'tcp://127.0.0.1:0', '--cert', 'x.pem']],
    [['nope']],
    [[]],
  ])('exits 2 on bad usage: %j', async (args) => {
    const { code, stdout, stderr } = await runCli(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.length).toBeGreaterThan(0);
  });

  it('--help exits 0', async () => {
    expect((await runCli(['--help'])).code).toBe(0);
    expect((await runCli(['connect', '--help'])).stdout).toMatch(/wirelayer connect/);
  });

  it('listen accepts, echoes and prints; connect to it over IPv6 prints up and closed', async () => {
    const listener = spawn(process.execPath, [CLI, 'listen', 'tcp://[::1]:0', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stderr = '';
      listener.stderr.on('data', (d: Buffer) => {
        stderr += d;
      });
      let stdout = '';
      listener.stdout.on('data', (d: Buffer) => {
        stdout += d;
      });
      while (!/listening on tcp:\/\/\[::1\]:(\d+)/.test(stderr)) await once(listener.stderr, 'data');
      const port = Number(/\[::1\]:(\d+)/.exec(stderr)![1]);
      const { code, stdout: out } = await runCli(['connect', `tcp://[::1]:${port}`, '--json']);
      expect(code).toBe(0);
      const records = jsonLines(out);
      expect(records.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      expect(records[1]!.peername).toEqual(['::1', port]);
      for (let i = 0; i < 100 && !stdout.includes('"closed"'); i++)
        await new Promise((r) => setTimeout(r, 20));
      const served = jsonLines(stdout);
      expect(served.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      expect(served[0]!.role).toBe('client');
      expect(served[1]!.peername).toEqual(records[1]!.sockname);
    } finally {
      listener.kill('SIGTERM');
      const [exitCode] = await once(listener, 'exit');
      expect(exitCode).toBe(0);
    }
  });
});
