import type { Socket } from 'node:dgram';
import { ConnectionState, now, Server } from '../../connection/index.js';
import { ConnectError, describeSocketError, errorCode } from '../errors.js';
import type { ConnectOptions } from '../types.js';
import type { ReceiveQueueLimits } from './channel.js';
import { tickPeriod } from './listener.js';
import { UdpSession } from './session.js';
import { createUdpSocket, resolveHost, type SocketBufferOptions } from './socket.js';

/** How long a probe waits for its answer when no `timeout` is given. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

/** Options of `udp.connect`. */
export interface UdpConnectOptions extends ConnectOptions, SocketBufferOptions {
  /** Bounds of the session's receive queue (see `UdpChannel`). */
  receiveQueue?: ReceiveQueueLimits;
}

/**
 * A connected UDP socket as a session (a Server model). Up from the start: UDP has no setup, so
 * `timestampTcpSetup` stays null. An ICMP error that the kernel reports on the connected socket
 * (port unreachable: ECONNREFUSED) ends the session with `error` set. `idleTimeout` (ms, default
 * none) closes it after that long without a datagram in or out.
 */
export class UdpSocketSession extends UdpSession<Server> {
  readonly #socket: Socket;
  #socketOpen = true;
  #timer: NodeJS.Timeout | undefined;
  #tick = 0;
  #lastSeen = 0;

  constructor(
    conn: Server,
    socket: Socket,
    options: { idleTimeout?: number; receiveQueue?: ReceiveQueueLimits },
  ) {
    super(conn, options.receiveQueue);
    this.#socket = socket;
    socket.on('message', (datagram: Buffer) => {
      this.#lastSeen = this.#tick;
      this.datagrams.deliver(datagram);
    });
    socket.on('error', (err: Error) => this.destroy(new Error(describeSocketError(err))));
    socket.on('close', () => {
      this.#socketOpen = false;
      clearInterval(this.#timer);
      this.finish();
    });
    const idleTimeout = options.idleTimeout ?? 0;
    if (idleTimeout > 0) {
      const period = tickPeriod(idleTimeout);
      const idleTicks = Math.ceil(idleTimeout / period);
      this.#timer = setInterval(() => {
        this.#tick++;
        if (this.#tick - this.#lastSeen > idleTicks) void this.close();
      }, period);
      this.#timer.unref();
    }
    this.up();
  }

  /** The socket, for options `dgram` offers (TTL, buffer sizes); do not read from or close it. */
  get socket(): Socket {
    return this.#socket;
  }

  transmit(datagram: Uint8Array): void {
    if (!this.#socketOpen || this.closed) {
      this.datagrams.dropped++;
      return;
    }
    this.#lastSeen = this.#tick;
    this.datagrams.sent++;
    this.#socket.send(datagram);
  }

  close(): Promise<void> {
    this.#closeSocket();
    return this.whenClosed();
  }

  destroy(error?: Error): void {
    if (this.closed) return;
    if (error) this.conn.error ??= error.message;
    this.#closeSocket();
  }

  #closeSocket(): void {
    if (!this.#socketOpen) return;
    this.#socketOpen = false;
    clearInterval(this.#timer);
    this.#socket.close();
  }
}

const TIMED_OUT = Symbol('timed out');

/** The promise, or a rejection with TIMED_OUT after `timeout` ms, or with the abort reason. */
function bounded<T>(
  promise: Promise<T>,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (timeout === undefined && signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = timeout === undefined ? undefined : setTimeout(() => reject(TIMED_OUT), timeout);
    const onAbort = (): void => reject(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}

/**
 * Dials UDP: binds a socket and connects it to the target, so only the target's datagrams reach
 * it and the kernel reports ICMP errors on it.
 *
 * Without `probe`, this resolves as soon as the socket is connected (the model OPEN, `peername`
 * and `sockname` set): UDP has no handshake, so a connect fails only for what the OS refuses at
 * once (a name that does not resolve, no route, a local address in use) or an abort, and a port
 * where nothing listens shows up later, as the session closing with `error` "Connection refused".
 *
 * With `probe`, the probe datagram is sent and the connect resolves on the first answer (which
 * the session then holds as its first received datagram), or rejects on an ICMP error
 * (ECONNREFUSED) or after `timeout` (default 5 s) with ETIMEDOUT: an application-level handshake
 * for protocols that answer (DNS, STUN, an echo service).
 */
export async function connectUdp(options: UdpConnectOptions): Promise<UdpSocketSession> {
  const { host, port, signal } = options;
  const conn = options.conn ?? new Server({ address: [host, port] });
  conn.transportProtocol = 'udp';
  conn.timestampStart = now();
  const fail = (code: string, message: string, cause?: unknown): ConnectError => {
    conn.error = message;
    conn.state = ConnectionState.CLOSED;
    conn.timestampEnd ??= now();
    return new ConnectError(code, message, conn, { cause });
  };
  if (signal?.aborted) throw fail('ABORT_ERR', 'Connect aborted', signal.reason);
  const probe = options.probe;
  const timeout = options.timeout ?? (probe ? DEFAULT_PROBE_TIMEOUT_MS : undefined);
  let target: Awaited<ReturnType<typeof resolveHost>>;
  try {
    // a resolver that hangs is bounded by the same timeout and signal
    target = await bounded(resolveHost(host), timeout, signal);
  } catch (err) {
    if (err === TIMED_OUT) {
      throw fail('ETIMEDOUT', `Connection timed out (resolving ${host} took over ${timeout} ms)`);
    }
    if (signal?.aborted) throw fail('ABORT_ERR', 'Connect aborted', signal.reason);
    throw fail(errorCode(err, 'ENOTFOUND'), describeSocketError(err as Error), err);
  }
  if (signal?.aborted) throw fail('ABORT_ERR', 'Connect aborted', signal.reason);
  const socket = createUdpSocket(target.family, options);
  return new Promise<UdpSocketSession>((resolve, reject) => {
    let answer: Buffer | null = null;
    let settled = false;
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      socket.off('message', onAnswer);
      signal?.removeEventListener('abort', onAbort);
    };
    const abandon = (error: ConnectError): void => {
      settled = true;
      cleanup();
      socket.close();
      reject(error);
    };
    // the first failure is the one recorded (a failed bind also makes the connect after it throw)
    const onError = (err: Error): void => {
      if (!settled) abandon(fail(errorCode(err, 'ECONNECT'), describeSocketError(err), err));
    };
    const onAbort = (): void => abandon(fail('ABORT_ERR', 'Connect aborted', signal?.reason));
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(
            () =>
              abandon(
                fail(
                  'ETIMEDOUT',
                  `Connection timed out (${probe ? 'no answer to the probe from' : 'connect'} ${host}:${port} after ${timeout} ms)`,
                ),
              ),
            timeout,
          );
    const established = (): void => {
      settled = true;
      cleanup();
      const session = new UdpSocketSession(conn, socket, options);
      if (answer !== null) session.datagrams.deliver(answer);
      if (signal) {
        const onLateAbort = (): void => session.destroy(new Error('Aborted'));
        signal.addEventListener('abort', onLateAbort, { once: true });
        session.once('close', () => signal.removeEventListener('abort', onLateAbort));
      }
      resolve(session);
    };
    const onAnswer = (datagram: Buffer): void => {
      answer = datagram;
      established();
    };
    const onConnect = (): void => {
      const remote = socket.remoteAddress();
      const local = socket.address();
      conn.peername = [remote.address, remote.port];
      conn.sockname = [local.address, local.port];
      conn.state = ConnectionState.OPEN;
      if (probe === undefined) {
        established();
        return;
      }
      socket.on('message', onAnswer);
      socket.send(probe);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (options.localAddress !== undefined || options.localPort !== undefined) {
        socket.bind({ address: options.localAddress, port: options.localPort ?? 0 });
      }
      socket.connect(port, target.address);
    } catch (err) {
      onError(err as Error);
    }
  });
}
