/**
 * `wirelayer proxy` and `wirelayer bench udp` end to end: the built CLI in a child process
 * (the build runs first, once).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_STATE_KEYS, SERVER_STATE_KEYS } from '../../src/connection/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = `${root}dist/src/cli/main.js`;

function runCli(args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string } {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return { child, stdout: () => out, stderr: () => err };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

const closeSocket = (s: Socket): Promise<void> => new Promise((r) => s.close(() => r()));

beforeAll(() => {
  execFileSync(
    process.execPath,
    [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.build.json`],
    {
      stdio: 'inherit',
      timeout: 60_000,
    },
  );
}, 90_000);

describe('wirelayer proxy (built CLI, child process)', () => {
  it('relays each client flow and prints JSON records for its Client and its Server', async () => {
    const echo = await bound();
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    const upstream = echo.address().port;
    const cli = runCli([
      'proxy',
      '--mode',
      `reverse:udp://127.0.0.1:${upstream}`,
      '--json',
      '--idle-timeout',
      '0.2',
    ]);
    const clients = [await bound(), await bound()];
    try {
      await until(() => /listening on udp:\/\//.test(cli.stderr()), 'the listening line');
      const port = Number(
        /listening on udp:\/\/127\.0\.0\.1:(\d+) \(reverse:udp:\/\/127\.0\.0\.1:\d+\)/.exec(cli.stderr())![1],
      );
      for (const [i, c] of clients.entries()) {
        const reply = once(c, 'message');
        c.send(`hello ${i}`, port, '127.0.0.1');
        expect(((await reply)[0] as Buffer).toString()).toBe(`hello ${i}`);
      }
      // idle timeout: each flow's Client and Server close
      await until(() => (cli.stdout().match(/"event":"closed"/g) ?? []).length === 4, 'four closed records');
      const exited = once(cli.child, 'exit');
      cli.child.kill('SIGTERM');
      const [code] = (await exited) as [number];
      expect(code).toBe(0);

      const records = cli
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const c of clients) {
        const clientPort = c.address().port;
        const mine = records.filter(
          (r) => r.role === 'client' && (r.peername as [string, number])[1] === clientPort,
        );
        expect(mine.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
        for (const r of mine) {
          expect(Object.keys(r)).toEqual(['event', 'driver', 'role', 'flow', ...CLIENT_STATE_KEYS]);
          expect(r.flow).toBe(r.id);
          expect(r).toMatchObject({
            driver: 'udp',
            transport_protocol: 'udp',
            proxy_mode: `reverse:udp://127.0.0.1:${upstream}`,
            sockname: ['127.0.0.1', port],
            error: null,
          });
        }
        // its Server: the upstream socket whose records carry the same id from start to closed
        const ids = new Set(records.filter((r) => r.role === 'server').map((r) => r.id));
        expect(ids.size).toBe(2);
      }
      const servers = records.filter((r) => r.role === 'server');
      for (const id of new Set(servers.map((r) => r.id))) {
        const mine = servers.filter((r) => r.id === id);
        expect(mine.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
        for (const r of mine) {
          expect(Object.keys(r)).toEqual(['event', 'driver', 'role', 'flow', ...SERVER_STATE_KEYS]);
          // the flow is its Client's id
          expect(records.some((c) => c.role === 'client' && c.id === r.flow)).toBe(true);
          expect(r).toMatchObject({
            address: ['127.0.0.1', upstream],
            timestamp_tcp_setup: null,
            error: null,
          });
        }
        expect(mine[1]!.peername).toEqual(['127.0.0.1', upstream]);
        expect(mine[2]!.timestamp_end).toBeTypeOf('number');
      }
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      await Promise.all([...clients, echo].map(closeSocket));
    }
  });

  it('exits 2 on bad usage', async () => {
    for (const args of [
      ['proxy'],
      ['proxy', '--mode', 'udp://127.0.0.1:53'],
      ['proxy', '--mode', 'reverse:quic://127.0.0.1:443'],
      ['proxy', '--mode', 'reverse:tls://127.0.0.1:443', '--connection-strategy', 'sometimes'],
      ['proxy', '--mode', 'reverse:tls://127.0.0.1:443', '--ignore-hosts', '('],
      ['proxy', '--mode', 'reverse:tls://127.0.0.1:443', '-s', '/nonexistent/addon.js'],
      ['proxy', '--mode', 'reverse:udp://127.0.0.1:53', '--listen-port', '70000'],
      ['bench', 'nope'],
    ]) {
      const cli = runCli(args);
      const [code] = (await once(cli.child, 'exit')) as [number];
      expect(code, args.join(' ')).toBe(2);
      expect(cli.stderr()).toMatch(/^wirelayer (proxy|bench): /);
    }
  });
});

describe('wirelayer bench udp (built CLI, child process)', () => {
  it('measures every relay beside the node baseline and prints the result', async () => {
    const cli = runCli([
      'bench',
      'udp',
      '--rounds',
      '1',
      '--duration',
      '100',
      '--sizes',
      '64',
      '--flows',
      '1,20',
      '--json',
    ]);
    const [code] = (await once(cli.child, 'exit')) as [number];
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stderr()).toMatch(/round 1\/1 {2}64 B x 20 flows: /);
    const result = JSON.parse(cli.stdout()) as {
      cases: {
        size: number;
        flows: number;
        rate: Record<string, number | null>;
        ratio: Record<string, number | null>;
      }[];
      relays: string[];
    };
    expect(result.relays).toEqual(['wirelayer', 'node', 'socat']);
    expect(result.cases.map((c) => [c.size, c.flows])).toEqual([
      [64, 1],
      [64, 20],
    ]);
    for (const c of result.cases) {
      for (const relay of result.relays) expect(c.rate[relay]).toBeGreaterThan(0);
      expect(c.ratio.wirelayer).toBeGreaterThan(0);
    }
    // nothing left behind: every bench process of this checkout is gone (others may run benches)
    const ours = execFileSync('ps', ['-e', '-o', 'args'])
      .toString()
      .split('\n')
      .filter((line) => line.includes(`${root}dist/bench/`));
    expect(ours.filter((line) => /udp-peer|udp-relays\.js/.test(line))).toEqual([]);
  }, 60_000);
});
