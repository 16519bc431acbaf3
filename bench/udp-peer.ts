/**
 * The far ends of the UDP bench, each run in its own process (forked by `bench/udp.ts`) so the
 * relay under test keeps a core to itself:
 *
 *   node udp-peer.js echo   a UDP echo server; sends {port} to the parent
 *   node udp-peer.js load   a load generator driven by the parent over IPC
 *
 * The load generator keeps a window of datagrams in flight: each reply sends the next datagram,
 * on the next flow (socket) round robin. A window that stalls (datagrams lost: socat's fork mode
 * loses some while it forks) is refilled after 20 ms without a reply, and counted.
 */
import { createSocket, type Socket } from 'node:dgram';

/** A command from the parent. */
export type LoadCommand =
  | { cmd: 'flows'; count: number }
  | { cmd: 'prime'; port: number; flows: number; timeoutMs: number }
  | {
      cmd: 'run';
      port: number;
      flows: number;
      size: number;
      window: number;
      warmupMs: number;
      durationMs: number;
    }
  | { cmd: 'exit' };

/** A reply to the parent. */
export type LoadReply =
  | { ok: true; roundTrips?: number; elapsedMs?: number; stalls?: number; total?: number; primed?: number }
  | { ok: false; error: string };

const literalLookup = (
  address: string,
  _family: unknown,
  callback: (err: null, address: string, family: number) => void,
): void => callback(null, address, 4);

function send(message: unknown): void {
  process.send?.(message);
}

function echo(): void {
  const socket = createSocket({ type: 'udp4', lookup: literalLookup, recvBufferSize: 4 << 20 });
  socket.on('message', (m, r) => socket.send(m, r.port, r.address));
  socket.on('listening', () => send({ port: socket.address().port }));
  socket.bind(0, '127.0.0.1');
  process.on('disconnect', () => socket.close());
}

/** The client sockets, one per flow, kept across runs so every relay sees the same flows. */
const sockets: Socket[] = [];
let onReply: (() => void) | null = null;

async function ensureFlows(count: number): Promise<void> {
  while (sockets.length < count) {
    const socket = createSocket({ type: 'udp4', lookup: literalLookup });
    socket.on('message', () => onReply?.());
    socket.on('error', () => undefined); // ICMP errors while a relay restarts: ignore
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    sockets.push(socket);
  }
}

async function target(port: number, flows: number): Promise<void> {
  await Promise.all(
    sockets.slice(0, flows).map(async (socket) => {
      try {
        if (socket.remoteAddress().port === port) return;
        socket.disconnect();
      } catch {
        // not connected yet
      }
      await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
    }),
  );
}

/** Makes sure every flow exists in the relay: one answered datagram per flow (a few at a time). */
async function prime(port: number, flows: number, timeoutMs: number): Promise<number> {
  await target(port, flows);
  const deadline = Date.now() + timeoutMs;
  let primed = 0;
  const payload = Buffer.alloc(16);
  const one = async (socket: Socket): Promise<boolean> => {
    while (Date.now() < deadline) {
      const answered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          socket.off('message', done);
          resolve(false);
        }, 100);
        const done = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        socket.once('message', done);
        socket.send(payload);
      });
      if (answered) return true;
    }
    return false;
  };
  const queue = sockets.slice(0, flows);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let socket = queue.shift(); socket !== undefined; socket = queue.shift()) {
        if (await one(socket)) primed++;
      }
    }),
  );
  return primed;
}

async function run(c: Extract<LoadCommand, { cmd: 'run' }>): Promise<LoadReply> {
  await target(c.port, c.flows);
  const payload = Buffer.alloc(c.size, 0x61);
  const used = sockets.slice(0, c.flows);
  let next = 0;
  let replies = 0;
  let stalls = 0;
  let counted = 0;
  let measuring = false;
  let running = true;
  const fire = (): void => {
    used[next]!.send(payload);
    next = next + 1 === used.length ? 0 : next + 1;
  };
  onReply = () => {
    replies++;
    if (measuring) counted++;
    if (running) fire();
  };
  let lastReplies = 0;
  const watchdog = setInterval(() => {
    if (replies === lastReplies && running) {
      stalls++;
      for (let i = 0; i < c.window; i++) fire();
    }
    lastReplies = replies;
  }, 20);
  for (let i = 0; i < c.window; i++) fire();
  await new Promise((r) => setTimeout(r, c.warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, c.durationMs));
  measuring = false;
  const elapsedMs = performance.now() - t0;
  running = false;
  clearInterval(watchdog);
  // let the datagrams still in flight drain before the next run
  await new Promise((r) => setTimeout(r, 50));
  onReply = null;
  return { ok: true, roundTrips: counted, elapsedMs, stalls, total: replies };
}

function load(): void {
  process.on('message', (c: LoadCommand) => {
    const answer = async (): Promise<LoadReply> => {
      switch (c.cmd) {
        case 'flows':
          await ensureFlows(c.count);
          return { ok: true };
        case 'prime':
          return { ok: true, primed: await prime(c.port, c.flows, c.timeoutMs) };
        case 'run':
          return run(c);
        case 'exit':
          for (const s of sockets) s.close();
          process.disconnect();
          return { ok: true };
      }
    };
    answer().then(
      (reply) => {
        if (c.cmd !== 'exit') send(reply);
      },
      (e: unknown) => send({ ok: false, error: String(e) }),
    );
  });
  send({ ready: true });
}

if (process.argv[2] === 'echo') echo();
else if (process.argv[2] === 'load') load();
