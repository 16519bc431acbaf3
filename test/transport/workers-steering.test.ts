/**
 * Connection-ID steering in the kernel: sockets bound in order with SO_REUSEPORT on one port
 * (as a primary binds its workers' sockets), the steering program attached, datagrams sent from
 * many source ports, and each one must land on the socket the program names. The generator
 * wrapper's IDs must all steer to their worker.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeDatagramSocket } from '../../src/transport/datagram/native-socket.js';
import {
  attachReusePortProgram,
  bindReusePortFd,
  fdAddress,
} from '../../src/transport/datagram/reuseport.js';
import { type CidGenerator, RANDOM_CIDS } from '../../src/transport/quic/cid.js';
import { SteeringError, steeredCids, steeringProgram } from '../../src/workers/steering.js';
import { waitUntil } from '../helpers/wait.js';

const HOST = '127.0.0.1';
const opened: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** `count` sockets on one port, bound in order (socket i at index i), adopted here; each counts what it receives by payload tag. */
function group(count: number): {
  port: number;
  fds: number[];
  sockets: NativeDatagramSocket[];
  got: string[][];
} {
  const fds = [bindReusePortFd('udp', 4, HOST, 0)];
  const port = fdAddress(fds[0]!)[1];
  for (let i = 1; i < count; i++) fds.push(bindReusePortFd('udp', 4, HOST, port));
  const got: string[][] = fds.map(() => []);
  const sockets = fds.map((fd, i) => {
    const socket = NativeDatagramSocket.adopt(fd);
    socket.onMessage((d) =>
      got[i]!.push(
        d
          .subarray(d.length - 8)
          .toString('latin1')
          .replace(/\.+$/, ''),
      ),
    );
    opened.push(socket);
    return socket;
  });
  return { port, fds, sockets, got };
}

async function senders(n: number): Promise<Socket[]> {
  const list: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    s.bind(0, HOST);
    await once(s, 'listening');
    list.push(s);
    opened.push({ close: () => new Promise<void>((r) => s.close(() => r())) });
  }
  return list;
}

/** A datagram tagged with 8 bytes at its end (`tag` padded), to tell which one arrived where. */
function tagged(head: Buffer, tag: string, size = 64): Buffer {
  const out = Buffer.alloc(Math.max(size, head.length + 8));
  head.copy(out);
  out.write(tag.padEnd(8, '.'), out.length - 8, 'latin1');
  return out;
}

function shortHeader(cid: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40]), cid]);
}

/** A long header (an Initial's first byte) with this DCID and an 8-byte SCID. */
function longHeader(dcid: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([0xc0, 0, 0, 0, 1, dcid.length]),
    dcid,
    Buffer.from([8]),
    Buffer.alloc(8, 0xee),
  ]);
}

/** An ID of `length` bytes whose u32 at `offset` is `value` (other bytes random-looking). */
function idWith(length: number, offset: number, value: number, seed: number): Buffer {
  const id = Buffer.alloc(length, seed & 0xff);
  id.writeUInt32BE(value >>> 0, offset);
  return id;
}

describe('SO_REUSEPORT steering program (classic BPF in the kernel)', () => {
  it('sends short headers, our long headers and client-chosen DCIDs to the worker their bytes name, from any source port', async () => {
    const g = group(2);
    const program = steeringProgram({ cidLength: 16, steeringOffset: 4, workers: 2 });
    attachReusePortProgram(g.fds[0]!, program);
    const from = await senders(8);
    const expected: string[][] = [[], []];
    let n = 0;
    for (const s of from) {
      for (let v = 0; v < 6; v++) {
        const value = (0x9e3779b9 * (n + 1)) >>> 0;
        const worker = value % 2;
        const cases = [
          shortHeader(idWith(16, 4, value, n)),
          longHeader(idWith(16, 4, value, n)),
          // a client's DCID of another length: its first 4 bytes
          longHeader(idWith(8, 0, value, n)),
          // a client's DCID of our length: the same bytes as ours
          longHeader(idWith(16, 4, value, n + 1)),
        ];
        cases.forEach((head, c) => {
          const tag = `${n}:${c}`;
          expected[worker]!.push(tag);
          s.send(tagged(head, tag), g.port, HOST);
        });
        n++;
      }
    }
    const total = expected[0]!.length + expected[1]!.length;
    await waitUntil(() => g.got[0]!.length + g.got[1]!.length === total, `${total} datagrams`);
    expect(g.got[0]!.sort()).toEqual(expected[0]!.sort());
    expect(g.got[1]!.sort()).toEqual(expected[1]!.sort());
    expect(expected[0]!.length).toBeGreaterThan(0);
    expect(expected[1]!.length).toBeGreaterThan(0);
  });

  it('leaves datagrams too short to carry an ID to the 4-tuple hash (never all to socket 0)', async () => {
    const g = group(2);
    attachReusePortProgram(g.fds[0]!, steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 2 }));
    const from = await senders(32);
    // a short header cut before its ID ends, and a long header cut inside its DCID: the same source keeps its socket
    from.forEach((s, i) => {
      s.send(Buffer.from(`\x40abc#${String(i).padStart(3, '0')}x`, 'latin1').subarray(0, 9), g.port, HOST);
    });
    await waitUntil(() => g.got[0]!.length + g.got[1]!.length === 32, '32 datagrams');
    // 32 sources hashed onto 2 sockets: both get some (all on one: 2 * 2^-32)
    expect(g.got[0]!.length).toBeGreaterThan(0);
    expect(g.got[1]!.length).toBeGreaterThan(0);
  });

  it('after a socket leaves the group, a remapped program still reaches the workers that remain', async () => {
    const g = group(3);
    attachReusePortProgram(g.fds[0]!, steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 3 }));
    // worker 0's socket leaves: the kernel moves the last socket (worker 2's) into index 0
    const leaving = g.sockets[0]!;
    await leaving.close();
    attachReusePortProgram(
      g.fds[1]!,
      steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 3, slots: [null, 1, 0] }),
    );
    const [s] = await senders(1);
    const expected: string[][] = [[], [], []];
    for (let i = 0; i < 60; i++) {
      const value = (0x85ebca6b * (i + 7)) >>> 0;
      const worker = value % 3;
      if (worker === 0) continue;
      expected[worker]!.push(`r${i}`);
      s!.send(tagged(shortHeader(idWith(16, 0, value, i)), `r${i}`), g.port, HOST);
    }
    const total = expected[1]!.length + expected[2]!.length;
    await waitUntil(() => g.got[1]!.length + g.got[2]!.length === total, `${total} datagrams`);
    expect(g.got[1]!.sort()).toEqual(expected[1]!.sort());
    expect(g.got[2]!.sort()).toEqual(expected[2]!.sort());
    expect(g.got[0]).toEqual([]);
  });

  it('refuses specs it cannot steer: steering bytes past the ID, a slot table of the wrong size', () => {
    expect(() => steeringProgram({ cidLength: 16, steeringOffset: 14, workers: 3 })).toThrow(SteeringError);
    expect(() => steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 3, slots: [0] })).toThrow(
      RangeError,
    );
    expect(() => steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 0 })).toThrow(RangeError);
    // a remap costs two instructions per worker beyond the plain program
    const identity = steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 3 });
    const remapped = steeringProgram({ cidLength: 16, steeringOffset: 0, workers: 3, slots: [null, 1, 0] });
    expect(remapped.length / 2).toBe(identity.length / 2 + 2 * 3);
  });
});

describe('steeredCids', () => {
  it('issues only IDs whose steering bytes name its worker, of the base length, about `count` draws each', () => {
    let draws = 0;
    const counting: CidGenerator = {
      length: RANDOM_CIDS.length,
      steeringOffset: 6,
      next: () => {
        draws++;
        return RANDOM_CIDS.next();
      },
    };
    for (const [index, count] of [
      [0, 2],
      [1, 2],
      [2, 3],
      [5, 8],
    ] as const) {
      draws = 0;
      const g = steeredCids(counting, index, count);
      expect(g.length).toBe(16);
      expect(g.steeringOffset).toBe(6);
      const seen = new Set<string>();
      for (let i = 0; i < 400; i++) {
        const id = g.next();
        expect(id.length).toBe(16);
        expect(id.readUInt32BE(6) % count).toBe(index);
        seen.add(id.toString('hex'));
      }
      expect(seen.size).toBe(400);
      // expected draws: count per ID; far more would mean the wrapper throws IDs away for nothing
      expect(draws / 400).toBeLessThan(count * 1.6);
      expect(draws / 400).toBeGreaterThan(count * 0.6);
    }
  });

  it('refuses a generator whose steering bytes never vary, and one too short for them', () => {
    const fixed: CidGenerator = { length: 8, steeringOffset: 0, next: () => Buffer.alloc(8, 0) };
    expect(() => steeredCids(fixed, 1, 2).next()).toThrow(SteeringError);
    expect(steeredCids(fixed, 0, 2).next()).toEqual(Buffer.alloc(8, 0));
    expect(() => steeredCids({ length: 4, steeringOffset: 1, next: fixed.next }, 0, 2)).toThrow(
      SteeringError,
    );
    expect(() => steeredCids(fixed, 2, 2)).toThrow(RangeError);
  });
});
