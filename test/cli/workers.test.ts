/**
 * Workers from the command line and the API: `--workers` usage, `auto`, `wirelayer proxy
 * --workers 2` with an addon that runs in every worker, and the cluster model through
 * `listenWorkers` (a script that runs in the primary and in each worker).
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerProcess } from '../helpers/peer.js';
import { waitUntil } from '../helpers/wait.js';
import {
  alive,
  startWorkersCli,
  startWorkersScript,
  type WorkersCli,
  workersBy,
} from '../helpers/workers.js';
import { runGtlsClient, startGtlsServer } from '../transport/quic-peers.js';
import { runCli } from './run.js';

const HOST = '127.0.0.1';

/** Processes whose command line names `script` (read from /proc; none are touched). */
function runningScripts(script: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(script)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
const FIXTURES = new URL('../fixtures/workers/', import.meta.url);
const running: WorkersCli[] = [];
const sockets: Socket[] = [];
const peers: PeerProcess[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
  for (const s of sockets.splice(0)) s.close();
  for (const cli of running.splice(0)) await cli.stop();
});

async function udpClient(): Promise<{ socket: Socket; port: number; replies: string[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  socket.bind(0, HOST);
  await once(socket, 'listening');
  const replies: string[] = [];
  socket.on('message', (m) => replies.push(m.toString()));
  return { socket, port: socket.address().port, replies };
}

describe('--workers', () => {
  it('refuses a count out of 1..1024 or not a number (exit 2, usage)', async () => {
    for (const bad of ['0', '1025', 'two', '-1', '1.5']) {
      const { code, stderr } = await runCli(['listen', `udp://${HOST}:0`, `--workers=${bad}`]);
      expect(code).toBe(2);
      expect(stderr).toMatch(/--workers: an integer from 1 to 1024, or auto/);
    }
  });

  it('auto starts one worker per core (this 2-core machine: 2)', async () => {
    const cores = availableParallelism();
    expect(cores).toBeGreaterThan(1);
    const cli = await startWorkersCli(['listen', `udp://${HOST}:0`, '--workers', 'auto', '--json']);
    running.push(cli);
    expect(cli.pids).toHaveLength(cores);
    for (const pid of cli.pids) expect(alive(pid)).toBe(true);
  });

  it('proxy: 40 UDP flows over 2 workers, both legs of a flow on one worker, the addon run by the worker that relays', async () => {
    const upstream = createSocket('udp4');
    sockets.push(upstream);
    upstream.bind(0, HOST);
    await once(upstream, 'listening');
    upstream.on('message', (m, rinfo) => upstream.send(m, rinfo.port, rinfo.address));
    const cli = await startWorkersCli([
      'proxy',
      '--mode',
      `reverse:udp://${HOST}:${upstream.address().port}`,
      '--workers',
      '2',
      '-s',
      new URL('tag-addon.mjs', FIXTURES).pathname,
      '--json',
    ]);
    running.push(cli);
    const clients = await Promise.all(Array.from({ length: 40 }, () => udpClient()));
    for (const c of clients) c.socket.send(`from ${c.port}`, cli.port, HOST);
    await waitUntil(() => clients.every((c) => c.replies.length === 1), 'the relayed echoes', {
      timeoutMs: 10_000,
    });
    expect(await cli.stop()).toBe(0);
    const records = cli.records();
    const byFlow = workersBy(records, (r) =>
      typeof r.flow === 'string' && r.event !== 'stream' ? r.flow : null,
    );
    expect(byFlow.size).toBe(40);
    for (const workers of byFlow.values()) expect(workers.size).toBe(1);
    for (const c of clients) {
      const client = records.find(
        (r) => r.role === 'client' && Array.isArray(r.peername) && r.peername[1] === c.port,
      );
      expect(client).toBeDefined();
      // the hook ran in the worker that holds the flow
      expect(c.replies[0]).toBe(`w${String(client!.worker)}:from ${c.port}`);
      const legs = records.filter((r) => r.flow === client!.flow).map((r) => `${r.role} ${r.event}`);
      expect(legs).toEqual(
        expect.arrayContaining(['client start', 'client up', 'server start', 'server up', 'client closed']),
      );
    }
    expect(new Set([...byFlow.values()].map((s) => [...s][0]))).toEqual(new Set([0, 1]));
    const stats = records.filter((r) => r.event === 'stats');
    expect(stats.map((r) => r.worker).sort()).toEqual([0, 1]);
    expect(stats.reduce((n, r) => n + (r.flows as number), 0)).toBe(40);
  });
});

describe('proxy --workers 2, QUIC intercepted', () => {
  it('gtlsclient -> proxy -> gtlsserver: 16 flows, 8 rebinding first, each on one worker, each answered', async () => {
    const server = await startGtlsServer(HOST);
    peers.push(server.peer);
    const cli = await startWorkersCli([
      'proxy',
      '--mode',
      `reverse:quic://${HOST}:${server.port}`,
      '--workers',
      '2',
      '--insecure',
      '--json',
    ]);
    running.push(cli);
    const clients = Array.from({ length: 16 }, (_, i) => {
      const extra =
        i % 2 === 0 ? ['--change-local-addr=200ms', '--nat-rebinding', '--delay-stream=500ms'] : [];
      const client = runGtlsClient(HOST, cli.port, ['--exit-on-first-stream-close', ...extra]);
      peers.push(client);
      return { client, rebinds: extra.length > 0 };
    });
    for (const { client, rebinds } of clients) {
      await client.waitFor(/response headers started/, 20_000);
      if (rebinds) {
        const output = client.output();
        expect(output.indexOf('response headers started')).toBeGreaterThan(
          output.indexOf('Local address is now'),
        );
      }
    }
    expect(await cli.stop()).toBe(0);
    const byFlow = workersBy(cli.records(), (r) =>
      typeof r.flow === 'string' && r.event !== 'stream' ? r.flow : null,
    );
    expect(byFlow.size).toBe(16);
    for (const workers of byFlow.values()) expect(workers.size).toBe(1);
    expect(new Set([...byFlow.values()].map((w) => [...w][0]))).toEqual(new Set([0, 1]));
  });
});

describe('workers that fail, and a primary that dies', () => {
  it('a port already taken fails in the primary, before any worker starts', async () => {
    const taken = createSocket('udp4');
    sockets.push(taken);
    taken.bind(0, HOST);
    await once(taken, 'listening');
    const { code, stderr } = await runCli([
      'listen',
      `udp://${HOST}:${taken.address().port}`,
      '--workers',
      '2',
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/bind EADDRINUSE 127\.0\.0\.1:\d+/);
    expect(stderr).not.toMatch(/listening on/);
  });

  it('a worker that dies before it listens fails the start (ERR_WORKERS_START); the other worker is stopped', async () => {
    const script = new URL('fail-in-worker.mjs', FIXTURES).pathname;
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.resume();
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(3);
    // the primary's line (worker 0, which may have started meanwhile, prints its own)
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => 'code' in l)).toEqual([
      { code: 'ERR_WORKERS_START', message: 'worker 1 exited (code 1) before it was ready' },
    ]);
    expect(runningScripts(script)).toEqual([]);
  });

  it('a primary killed with SIGKILL: its workers see the channel close, close, and exit', async () => {
    const cli = await startWorkersCli(['listen', `udp://${HOST}:0`, '--workers', '2']);
    running.push(cli);
    process.kill(cli.child.pid!, 'SIGKILL');
    await waitUntil(() => cli.pids.every((pid) => !alive(pid)), 'the workers to exit', { timeoutMs: 10_000 });
  });
});

describe('listenWorkers (the cluster model)', () => {
  it('runs the script in the primary and 2 workers: handlers serve in each worker, the primary gets their records and exits', async () => {
    const server = await startWorkersScript(['udp', '2', 'respawn']);
    try {
      const { port, workers } = server;
      expect(workers.map((w) => [w.index, w.state])).toEqual([
        [0, 'ready'],
        [1, 'ready'],
      ]);
      const lines = server.lines;
      // every worker was ready before the handle came: `online` reports replacements from then on
      expect(lines().filter((l) => 'online' in l)).toHaveLength(0);
      const clients = await Promise.all(Array.from({ length: 30 }, () => udpClient()));
      for (const c of clients) c.socket.send(`hello ${c.port}`, port, HOST);
      await waitUntil(() => clients.every((c) => c.replies.length === 1), 'the replies');
      await waitUntil(() => lines().filter((l) => 'record' in l).length >= 60, 'start and up records');
      const records = lines()
        .filter((l) => 'record' in l)
        .map((l) => l.record as Record<string, unknown>);
      for (const c of clients) {
        const up = records.find((r) => r.event === 'up' && (r.peername as [string, number])[1] === c.port);
        expect(up).toBeDefined();
        expect(c.replies[0]).toBe(`worker ${String(up!.worker)}: hello ${c.port}`);
      }
      expect(new Set(records.map((r) => r.worker))).toEqual(new Set([0, 1]));
      expect(await server.stop()).toBe(0);
      // closing: each worker closed its flows (closed records), then exited 0, then the group closed
      expect(
        lines().filter((l) => 'record' in l && (l.record as { event: string }).event === 'closed'),
      ).toHaveLength(30);
      const exits = lines().filter((l) => 'exit' in l);
      expect(exits.map((l) => [l.code, l.respawn])).toEqual([
        [0, false],
        [0, false],
      ]);
      expect(lines().at(-1)).toEqual({ closed: true });
      for (const w of workers) expect(alive(w.pid)).toBe(false);
    } finally {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
  });
});
