/**
 * The far ends of the UDP bench, each run in its own process (forked by `bench/udp.ts`) so the
 * relay under test keeps a core to itself:
 *
 *   node udp-peer.js echo   a UDP echo server; sends {port} to the parent
 *   node udp-peer.js load   a load generator driven by the parent over IPC
 *   node udp-peer.js flood PORT N   the flood of `bench/udp-flood.ts` (see `flood` below)
 *
 * The load generator keeps a window of datagrams in flight: each reply sends the next datagram,
 * on the next flow (socket) round robin. A window that stalls (datagrams lost: socat's fork mode
 * loses some while it forks) is refilled after 20 ms without a reply, and counted.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';

/** A command from the parent. */
export type LoadCommand =
  | { cmd: 'flows'; count: number }
  | {
      cmd: 'prime';
      port: number;
      flows: number;
      timeoutMs: number;
      /** Each datagram behind a PROXY v2 header naming its flow (the C peers only). */
      proxyV2?: boolean;
    }
  | {
      cmd: 'run';
      port: number;
      flows: number;
      size: number;
      window: number;
      warmupMs: number;
      durationMs: number;
      /** Each datagram behind a PROXY v2 header naming its flow (the C peers only). */
      proxyV2?: boolean;
    }
  /** SOCKS5 UDP associations, one per flow (the C peers only: `bench/socks5.ts`); PORT 0 then targets them. */
  | { cmd: 'socks'; port: number; echoPort: number; flows: number }
  | { cmd: 'exit' };

/** A reply to the parent. */
export type LoadReply =
  | {
      ok: true;
      roundTrips?: number;
      elapsedMs?: number;
      stalls?: number;
      total?: number;
      primed?: number;
      associated?: number;
    }
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
  // flood datagrams (first byte 0xff) get no answer, as in the C echo
  socket.on('message', (m, r) => m[0] !== 0xff && socket.send(m, r.port, r.address));
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
          if (c.proxyV2) return { ok: false, error: 'PROXY v2 headers need the C peers (a C compiler)' };
          return { ok: true, primed: await prime(c.port, c.flows, c.timeoutMs) };
        case 'run':
          if (c.proxyV2) return { ok: false, error: 'PROXY v2 headers need the C peers (a C compiler)' };
          return run(c);
        case 'socks':
          return { ok: false, error: 'SOCKS5 associations need the C peers (a C compiler)' };
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

/** The first byte of every flood datagram: the echo servers do not answer it. */
export const FLOOD_MARK = 0xff;

/**
 * The flood: N sockets bound to 127.A.B.123 (A = 1 + i / 256, B = i % 256; Linux routes all of
 * 127/8 to the loopback interface) on one shared source port, each connected to 127.0.0.1:PORT.
 * Prints "ok SOURCE_PORT", then answers one line per command line on stdin:
 *
 *   prime RATE   -> ok          one datagram from every socket, RATE a second
 *   on RATE      -> ok          datagrams round robin over the sockets, RATE a second
 *   off          -> ok SENT     stops; SENT since "on"
 *
 * Datagrams: 16 bytes, the first FLOOD_MARK.
 */
async function flood(port: number, count: number): Promise<void> {
  const sockets: Socket[] = [];
  let sourcePort = 0;
  const open = async (i: number): Promise<Socket> => {
    const socket = createSocket({ type: 'udp4', lookup: literalLookup });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(sourcePort, `127.${1 + (i >> 8)}.${i & 255}.123`, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
    return socket;
  };
  // the first bind picks the port, the others share it
  sockets.push(await open(0));
  sourcePort = sockets[0]!.address().port;
  for (let i = 1; i < count; i += 500) {
    const batch = Array.from({ length: Math.min(500, count - i) }, (_, k) => open(i + k));
    sockets.push(...(await Promise.all(batch)));
  }
  const datagram = Buffer.alloc(16, 0x66);
  datagram[0] = FLOOD_MARK;
  let next = 0;
  const burst = (n: number): void => {
    for (let k = 0; k < n; k++) {
      sockets[next]!.send(datagram);
      next = next + 1 === sockets.length ? 0 : next + 1;
    }
  };
  /** Sends `total` datagrams (Infinity: until stopped) at `rate` a second, in 1 ms steps. */
  let stop: (() => number) | null = null;
  const paced = (rate: number, total: number, done?: () => void): (() => number) => {
    const t0 = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1) - sent;
      if (due > 0) {
        burst(due);
        sent += due;
      }
      if (sent >= total) {
        clearInterval(timer);
        done?.();
      }
    }, 1);
    return () => {
      clearInterval(timer);
      return sent;
    };
  };
  process.stdout.write(`ok ${sourcePort}\n`);
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const [command, argument] = line.split(' ');
    const rate = Number(argument);
    if (command === 'prime' && rate > 0) {
      next = 0;
      paced(rate, sockets.length, () => process.stdout.write('ok\n'));
    } else if (command === 'on' && rate > 0) {
      stop?.();
      stop = paced(rate, Number.POSITIVE_INFINITY);
      process.stdout.write('ok\n');
    } else if (command === 'off') {
      process.stdout.write(`ok ${stop?.() ?? 0}\n`);
      stop = null;
    } else {
      process.stdout.write('error unknown command\n');
    }
  });
  input.on('close', () => {
    stop?.();
    for (const socket of sockets) socket.close();
  });
}

if (process.argv[2] === 'echo') echo();
else if (process.argv[2] === 'load') load();
else if (process.argv[2] === 'flood') {
  flood(Number(process.argv[3]), Number(process.argv[4])).catch((e: unknown) => {
    process.stdout.write(`error ${String(e)}\n`);
    process.exit(1);
  });
}
