/**
 * TCP driver beside bare node:net, in the same run: connect+close rate and bulk throughput.
 * Rounds alternate ours/baseline and the median is reported, as the machine is shared.
 */
import { once } from 'node:events';
import { createServer, type Server as NetServer, connect as netConnect, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { connectTcp, TcpListener } from '../src/transport/tcp/index.js';
import { formatTable, median, progress, type Row } from './report.js';

const HOST = '127.0.0.1';
const CONCURRENCY = 16;

interface Pair {
  port: number;
  dial(): Promise<Socket>;
  /** Bytes received by the accepting side since the last reset. */
  received(): number;
  reset(): void;
  close(): Promise<void>;
}

async function bareNet(): Promise<Pair> {
  let bytes = 0;
  const server: NetServer = createServer((s) => {
    s.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    port,
    async dial() {
      const s = netConnect(port, HOST);
      await once(s, 'connect');
      return s;
    },
    received: () => bytes,
    reset: () => {
      bytes = 0;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function ours(): Promise<Pair> {
  let bytes = 0;
  const listener = await TcpListener.listen({ host: HOST });
  listener.on('session', (session) => {
    session.stream.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    session.stream.on('error', () => undefined);
  });
  const port = listener.address[1];
  return {
    port,
    async dial() {
      return (await connectTcp({ host: HOST, port })).stream;
    },
    received: () => bytes,
    reset: () => {
      bytes = 0;
    },
    close: () => listener.close(),
  };
}

/** Connections opened and closed per second, CONCURRENCY at a time, for `ms`. */
async function connectRate(pair: Pair, ms: number): Promise<number> {
  let count = 0;
  const deadline = performance.now() + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const s = await pair.dial();
      s.end();
      s.resume();
      await once(s, 'close');
      count++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return count / ((performance.now() - t0) / 1000);
}

/** MB/s written through one connection for `ms`, counted where it is received. */
async function bulk(pair: Pair, ms: number): Promise<number> {
  const s = await pair.dial();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  pair.reset();
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  await once(s, 'close');
  const seconds = (performance.now() - t0) / 1000;
  return pair.received() / seconds / 1e6;
}

export async function runTcpBench(rounds = 3): Promise<Row[]> {
  const [a, b] = [await ours(), await bareNet()];
  const results = {
    connOurs: [] as number[],
    connBase: [] as number[],
    bulkOurs: [] as number[],
    bulkBase: [] as number[],
  };
  try {
    for (let i = 0; i < rounds; i++) {
      progress(`tcp round ${i + 1}/${rounds}: connect+close`);
      results.connBase.push(await connectRate(b, 800));
      results.connOurs.push(await connectRate(a, 800));
      progress(`tcp round ${i + 1}/${rounds}: bulk`);
      results.bulkBase.push(await bulk(b, 800));
      results.bulkOurs.push(await bulk(a, 800));
    }
  } finally {
    await a.close();
    await b.close();
  }
  const row = (name: string, unit: string, ours: number[], base: number[]): Row => {
    const [value, baseline] = [median(ours), median(base)];
    return { name, value, unit, baseline, baselineName: 'node:net', ratio: value / baseline };
  };
  return [
    row(`connect+close (${CONCURRENCY} in parallel)`, 'conn/s', results.connOurs, results.connBase),
    row('bulk, one connection, 64 KiB writes', 'MB/s', results.bulkOurs, results.bulkBase),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(formatTable('TCP driver vs node:net', await runTcpBench()));
}
