/**
 * A worker that is not replaced (`respawn: false`): its socket leaves the kernel's reuseport
 * group, which moves the group's last socket into its place. With 3 QUIC workers and worker 0
 * gone, worker 2's socket is now index 0 and index 2 no longer exists: the steering program
 * as first attached would send worker 2's connections to the 4-tuple hash (about half to
 * worker 1, which does not know them). The primary attaches a remapped program, so every
 * connection of workers 1 and 2 goes on, and new connections still come up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from '../../src/connection/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import { waitUntil } from '../helpers/wait.js';
import { alive, startWorkersScript, type WorkersScript } from '../helpers/workers.js';

const HOST = '127.0.0.1';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Writes `text` on the session's first stream; resolves with the reply ("worker N: text"). */
async function ask(session: QuicSession<Server>, text: string): Promise<string> {
  const stream = session.stream;
  let got = '';
  const want = `worker N: ${text}`.length;
  const replied = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no reply to "${text}" in 5 s (a connection steered astray)`)),
      5000,
    );
    const onData = (c: Buffer): void => {
      got += c.toString();
      if (got.length >= want) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve();
      }
    };
    stream.on('data', onData);
  });
  stream.write(text);
  await replied;
  return got;
}

const workerIn = (reply: string): number => Number(/^worker (\d+): /.exec(reply)?.[1] ?? -1);

describe('a QUIC worker that is not replaced (respawn: false, 3 workers)', () => {
  it("leaves the other workers' connections steered to them, worker 2's moved socket included", async () => {
    const server: WorkersScript = await startWorkersScript(['quic', '3', 'once']);
    cleanups.push(() => server.stop());
    const connect = () =>
      quic.connect({ host: HOST, port: server.port, servername: 'localhost', rejectUnauthorized: false });
    const sessions = await Promise.all(Array.from({ length: 36 }, connect));
    for (const s of sessions) cleanups.push(() => s.destroy());
    const workerOf = new Map<QuicSession<Server>, number>();
    for (const s of sessions) workerOf.set(s, workerIn(await ask(s, 'first')));
    // 36 connections on 3 workers: each has some (all on two: 3 * (2/3)^36, about 1e-6)
    expect(new Set(workerOf.values())).toEqual(new Set([0, 1, 2]));
    const pid0 = server.workers[0]!.pid;
    process.kill(pid0, 'SIGKILL');
    await waitUntil(() => server.lines().some((l) => 'exit' in l), 'the exit of worker 0');
    const exit = server.lines().find((l) => 'exit' in l)!;
    expect(exit).toMatchObject({ signal: 'SIGKILL', respawn: false });
    expect(alive(pid0)).toBe(false);
    const kept = sessions.filter((s) => workerOf.get(s) !== 0);
    expect(kept.some((s) => workerOf.get(s) === 2)).toBe(true);
    for (const s of kept) expect(workerIn(await ask(s, 'again'))).toBe(workerOf.get(s));
    // new connections: IDs a client picks that would steer to worker 0 go to the hash, then stay
    const fresh = await Promise.all(Array.from({ length: 9 }, connect));
    for (const s of fresh) cleanups.push(() => s.destroy());
    for (const s of fresh) expect([1, 2]).toContain(workerIn(await ask(s, 'new')));
  });
});
