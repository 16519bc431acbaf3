/**
 * Real DTLS peers on loopback (openssl s_server/s_client, gnutls-serv/gnutls-cli) and a
 * tiny dgram pump that drives an engine session over a real UDP socket: the test-only
 * stand-in for the driver.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import {
  type DtlsContext,
  type DtlsSession,
  type DtlsSessionOptions,
  DtlsStatus,
} from '../../../src/transport/dtls/engine.js';

export const HOST = '127.0.0.1';

/** A UDP port that was free a moment ago (for peers that cannot bind port 0 and report it). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, HOST);
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * A peer process with stdin kept open (s_server / s_client quit on stdin EOF), its output
 * collected, and a way to wait for a line.
 */
export class PeerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  output = '';

  constructor(command: string, args: readonly string[]) {
    this.child = spawn(command, args, { stdio: 'pipe' });
    this.child.stdout.on('data', (d: Buffer) => {
      this.output += d.toString('latin1');
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.output += d.toString('latin1');
    });
    this.child.on('error', () => undefined);
  }

  /** Resolves when the output matches `pattern` (checked on every chunk), rejects after `ms`. */
  async waitFor(pattern: RegExp, ms = 5000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.output.match(pattern);
      if (m) return m;
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(
          `peer output did not match ${pattern} (exit ${this.child.exitCode}):\n${this.output}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  write(text: string): void {
    this.child.stdin.write(text);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Drives one engine session over a UDP socket: every datagram in goes to `receive`, every
 * datagram out goes to the peer, and one timer follows `timeout()`.
 */
export class DgramPump {
  readonly received: Buffer[] = [];
  /** Largest datagram seen each way. */
  maxInbound = 0;
  maxOutbound = 0;
  #timer: NodeJS.Timeout | undefined;
  #waiters: Array<() => void> = [];

  constructor(
    readonly session: DtlsSession,
    readonly socket: Socket,
    readonly remote: { address: string; port: number },
  ) {
    socket.on('message', (msg) => {
      this.maxInbound = Math.max(this.maxInbound, msg.length);
      this.session.receive(msg);
      this.flush();
    });
  }

  flush(): void {
    const s = this.session;
    if (s.destroyed) return;
    const out = s.takeOutgoing();
    if (out) {
      for (const d of out) {
        this.maxOutbound = Math.max(this.maxOutbound, d.length);
        this.socket.send(d, this.remote.port, this.remote.address);
      }
    }
    const data = s.readAll();
    if (data) this.received.push(...data);
    clearTimeout(this.#timer);
    const t = s.timeout();
    if (t >= 0) {
      this.#timer = setTimeout(() => {
        s.onTimeout();
        this.flush();
      }, t);
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `predicate` holds, checked after every event; rejects after `ms` or on failure. */
  async until(predicate: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (this.session.status & DtlsStatus.FAILED) throw this.session.error ?? new Error('session failed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async established(ms = 5000): Promise<void> {
    await this.until(() => this.session.isEstablished, ms, 'the handshake');
  }

  send(data: Buffer): void {
    this.session.write(data);
    this.flush();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.socket.close();
  }
}

/** Our engine as a client of `port`, over a fresh UDP socket. */
export async function engineClient(
  ctx: DtlsContext,
  port: number,
  options: DtlsSessionOptions = {},
): Promise<DgramPump> {
  const socket = createSocket('udp4');
  socket.bind(0, HOST);
  await once(socket, 'listening');
  const session = ctx.createSession(options);
  const pump = new DgramPump(session, socket, { address: HOST, port });
  session.start();
  pump.flush();
  return pump;
}

/**
 * Our engine as a server on a fresh UDP socket: the stateless cookie check answers new
 * peers until one returns a valid cookie; then one session is made for that peer.
 */
export class EngineServer {
  pump: DgramPump | undefined;
  readonly ready: Promise<DgramPump>;
  #resolve!: (p: DgramPump) => void;

  private constructor(
    readonly ctx: DtlsContext,
    readonly socket: Socket,
    readonly sessionOptions: DtlsSessionOptions,
  ) {
    this.ready = new Promise((r) => {
      this.#resolve = r;
    });
    socket.on('message', this.#onFirst);
  }

  static async listen(ctx: DtlsContext, sessionOptions: DtlsSessionOptions = {}): Promise<EngineServer> {
    const socket = createSocket('udp4');
    socket.bind(0, HOST);
    await once(socket, 'listening');
    return new EngineServer(ctx, socket, sessionOptions);
  }

  get port(): number {
    return this.socket.address().port;
  }

  #onFirst = (msg: Buffer, rinfo: { address: string; port: number }): void => {
    const peer = `${rinfo.address}:${rinfo.port}`;
    const check = this.ctx.statelessCookieCheck(msg, peer);
    if (!check.ok) {
      if (check.reply) this.socket.send(check.reply, rinfo.port, rinfo.address);
      return;
    }
    this.socket.off('message', this.#onFirst);
    const session = this.ctx.createSession({ ...this.sessionOptions, peer });
    const pump = new DgramPump(session, this.socket, { address: rinfo.address, port: rinfo.port });
    this.pump = pump;
    pump.maxInbound = msg.length;
    session.receive(msg);
    pump.flush();
    this.#resolve(pump);
  };

  close(): void {
    if (this.pump) this.pump.close();
    else this.socket.close();
  }
}
