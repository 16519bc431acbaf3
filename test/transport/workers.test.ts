/**
 * `wirelayer listen --workers 2` (the built CLI: a primary and two forked workers sharing one
 * port with SO_REUSEPORT): many UDP flows, DTLS sessions and TCP connections, each served start
 * to end by one worker (its records carry one `worker`), both workers used; a worker killed
 * takes only its own flows, is replaced on the same socket, and the other's flows go on.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { dtls } from '../../src/transport/dtls/index.js';
import { waitUntil } from '../helpers/wait.js';
import { alive, startWorkersCli, type WorkersCli, workersBy } from '../helpers/workers.js';

const HOST = '127.0.0.1';
const running: WorkersCli[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  for (const cli of running.splice(0)) {
    const pids = cli.pids;
    await cli.stop();
    // the primary waits for its workers: none may outlive it
    for (const pid of pids) expect(alive(pid)).toBe(false);
  }
});

async function start(args: string[]): Promise<WorkersCli> {
  const cli = await startWorkersCli(args);
  running.push(cli);
  return cli;
}

/** A UDP client on its own port that counts the echoes it gets. */
async function udpClient(): Promise<{ socket: Socket; port: number; echoes: string[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  socket.bind(0, HOST);
  await once(socket, 'listening');
  const echoes: string[] = [];
  socket.on('message', (m) => echoes.push(m.toString()));
  return { socket, port: socket.address().port, echoes };
}

const peerPort = (r: Record<string, unknown>): string | null =>
  r.role === 'client' && Array.isArray(r.peername) ? String(r.peername[1]) : null;

describe('wirelayer listen --workers 2', () => {
  it('udp: 200 flows, each served start to end by one worker, both workers used', async () => {
    const cli = await start(['listen', `udp://${HOST}:0`, '--workers', '2', '--json']);
    expect(cli.pids).toHaveLength(2);
    const clients = await Promise.all(Array.from({ length: 200 }, () => udpClient()));
    for (const round of [1, 2, 3]) {
      for (const c of clients) c.socket.send(`flow ${c.port} #${round}`, cli.port, HOST);
      await waitUntil(() => clients.every((c) => c.echoes.length >= round), `echo #${round} of 200 flows`, {
        timeoutMs: 15_000,
      });
    }
    for (const c of clients) expect(c.echoes).toEqual([1, 2, 3].map((r) => `flow ${c.port} #${r}`));
    expect(await cli.stop()).toBe(0);
    const records = cli.records();
    const byFlow = workersBy(records, peerPort);
    expect(byFlow.size).toBe(200);
    for (const c of clients) {
      const events = records.filter((r) => peerPort(r) === String(c.port)).map((r) => r.event);
      expect(events).toEqual(['start', 'up', 'closed']);
      expect(byFlow.get(String(c.port))!.size).toBe(1);
    }
    const used = new Set([...byFlow.values()].map((s) => [...s][0]));
    expect(used).toEqual(new Set([0, 1]));
  });

  it('dtls: 50 sessions (our client), each handshake and its records on one worker, both used', async () => {
    const cli = await start(['listen', `dtls://${HOST}:0`, '--workers', '2', '--json']);
    const ports: number[] = [];
    for (let batch = 0; batch < 5; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const session = await dtls.connect({
            host: HOST,
            port: cli.port,
            servername: 'localhost',
            rejectUnauthorized: false,
          });
          ports.push(session.conn.sockname![1]);
          const echoed = once(session.datagrams, 'datagram') as Promise<[Uint8Array]>;
          session.datagrams.send(Buffer.from(`record ${batch}.${i}`));
          const [echo] = await echoed;
          expect(Buffer.from(echo).toString()).toBe(`record ${batch}.${i}`);
          await session.close();
        }),
      );
    }
    // each session's close_notify ends it on its worker: closed records for all 50
    await cli.waitForRecords((r) => r.event === 'closed', 50);
    const records = cli.records();
    const byFlow = workersBy(records, peerPort);
    expect(byFlow.size).toBe(50);
    for (const port of ports) {
      const mine = records.filter((r) => peerPort(r) === String(port));
      expect(mine.map((r) => r.event)).toEqual(['start', 'up', 'closed']);
      expect(mine[1]).toMatchObject({ tls_version: 'DTLSv1.2', sni: 'localhost', error: null });
      expect(byFlow.get(String(port))!.size).toBe(1);
    }
    expect(new Set([...byFlow.values()].map((s) => [...s][0]))).toEqual(new Set([0, 1]));
  });

  it('tcp: 40 connections, each on one worker, both used (a fd of ours, listened on by net)', async () => {
    const cli = await start(['listen', `tcp://${HOST}:0`, '--workers', '2', '--json']);
    const ports = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          new Promise<number>((resolve, reject) => {
            const socket = tcpConnect(cli.port, HOST, () => socket.write(`conn ${i}`));
            socket.once('data', (d) => {
              expect(d.toString()).toBe(`conn ${i}`);
              const port = socket.localPort!;
              socket.end();
              socket.once('close', () => resolve(port));
            });
            socket.once('error', reject);
          }),
      ),
    );
    await cli.waitForRecords((r) => r.event === 'closed', 40);
    const byFlow = workersBy(cli.records(), peerPort);
    for (const port of ports) expect(byFlow.get(String(port))?.size).toBe(1);
    expect(new Set([...byFlow.values()].map((s) => [...s][0]))).toEqual(new Set([0, 1]));
  });

  it('a killed worker takes only its own flows; it is replaced on its socket and the other worker keeps its flows', async () => {
    const cli = await start(['listen', `udp://${HOST}:0`, '--workers', '2', '--json']);
    const clients = await Promise.all(Array.from({ length: 40 }, () => udpClient()));
    for (const c of clients) c.socket.send(`before ${c.port}`, cli.port, HOST);
    await waitUntil(() => clients.every((c) => c.echoes.length === 1), 'the first echoes');
    await cli.waitForRecords((r) => r.event === 'up', 40);
    const workerOf = new Map(
      cli
        .records()
        .filter((r) => r.event === 'up')
        .map((r) => [peerPort(r), r.worker]),
    );
    const victims = clients.filter((c) => workerOf.get(String(c.port)) === 0);
    const survivors = clients.filter((c) => workerOf.get(String(c.port)) === 1);
    expect(victims.length).toBeGreaterThan(0);
    expect(survivors.length).toBeGreaterThan(0);
    const [pid0, pid1] = cli.pids;
    process.kill(pid0!, 'SIGKILL');
    await cli.waitForStderr(/worker 0 exited \(SIGKILL\), starting another/);
    await cli.waitForStderr(/worker 0 is back \(pid (\d+)\)/);
    expect(alive(pid1!)).toBe(true);
    // the survivors' flows: same worker, same flow (no new start), echoes go on
    const startsBefore = cli.records().filter((r) => r.event === 'start').length;
    for (const c of survivors) c.socket.send(`after ${c.port}`, cli.port, HOST);
    await waitUntil(() => survivors.every((c) => c.echoes.length === 2), "the survivors' echoes");
    for (const c of survivors) expect(c.echoes[1]).toBe(`after ${c.port}`);
    // the victims' 4-tuples still hash to index 0: the replacement serves them as new flows
    for (const c of victims) c.socket.send(`again ${c.port}`, cli.port, HOST);
    await waitUntil(() => victims.every((c) => c.echoes.length === 2), "the replacement's echoes");
    // records come in batches (25 ms): wait for the replacement's
    await cli.waitForRecords((r) => r.event === 'start', startsBefore + victims.length);
    const newStarts = cli
      .records()
      .filter((r) => r.event === 'start')
      .slice(startsBefore);
    expect(newStarts.map(peerPort).sort()).toEqual(victims.map((c) => String(c.port)).sort());
    expect(new Set(newStarts.map((r) => r.worker))).toEqual(new Set([0]));
  });
});
