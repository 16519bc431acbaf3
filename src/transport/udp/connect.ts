import { ConnectionState, type Server } from '../../connection/index.js';
import { type DatagramBackend, type DatagramSocket, openDatagramSocket } from '../datagram/index.js';
import { type Dial, dial, serverModel } from '../dial.js';
import { describeSocketError, errorCode } from '../errors.js';
import type { ConnectOptions } from '../types.js';
import type { ReceiveQueueLimits } from './channel.js';
import { tickPeriod } from './listener.js';
import { UdpSession } from './session.js';
import { resolveHost, type SocketBufferOptions } from './socket.js';

/** How long a probe waits for its answer when no `connectTimeout` is given. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

/** Options of `udp.connect`. */
export interface UdpConnectOptions extends ConnectOptions, SocketBufferOptions {
  /** Bounds of the session's receive queue (see `UdpChannel`). */
  receiveQueue?: ReceiveQueueLimits;
  /**
   * The socket underneath: `native` (the addon) or `dgram`. Default: `WIRELAYER_DATAGRAM`, else
   * native where it loads (Linux).
   */
  datagramBackend?: DatagramBackend;
}

/**
 * A connected UDP socket as a session (a Server model). Up from the start: UDP has no setup, so
 * `timestampTcpSetup` stays null. An ICMP error that the kernel reports on the connected socket
 * (port unreachable: ECONNREFUSED) ends the session with `error` set. `idleTimeout` (ms, default
 * none) closes it after that long without a datagram in or out.
 */
export class UdpSocketSession extends UdpSession<Server> {
  readonly #socket: DatagramSocket;
  #socketOpen = true;
  #timer: NodeJS.Timeout | undefined;
  #tick = 0;
  #lastSeen = 0;

  constructor(
    conn: Server,
    socket: DatagramSocket,
    options: { idleTimeout?: number; receiveQueue?: ReceiveQueueLimits },
  ) {
    super(conn, options.receiveQueue);
    this.#socket = socket;
    socket.onMessage((datagram: Buffer) => {
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

  /** The socket (native or node:dgram), for its buffer sizes and counters; do not read from or close it. */
  get socket(): DatagramSocket {
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
    void this.#socket.close();
  }
}

/** The Server model of a UDP connect (see `Driver.serverModel`); `tls` is left as the caller set it. */
export function udpServerModel(options: Pick<ConnectOptions, 'host' | 'port' | 'conn'>): Server {
  return serverModel(options, { transportProtocol: 'udp' });
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
 * (ECONNREFUSED) or after `connectTimeout` (default 5 s) with ETIMEDOUT: an application-level
 * handshake for protocols that answer (DNS, STUN, an echo service).
 */
export function connectUdp(options: UdpConnectOptions): Promise<UdpSocketSession> {
  const { host, port, probe } = options;
  const conn = udpServerModel(options);
  const phase = { resolved: false };
  return dial(
    conn,
    {
      signal: options.signal,
      connectTimeout: options.connectTimeout ?? (probe ? DEFAULT_PROBE_TIMEOUT_MS : undefined),
      timeoutMessage: (ms) =>
        !phase.resolved
          ? `Connection timed out (resolving ${host} took over ${ms} ms)`
          : `Connection timed out (${probe ? 'no answer to the probe from' : 'connect'} ${host}:${port} after ${ms} ms)`,
    },
    (d) => openUdp(d, options, probe, phase),
  );
}

/**
 * The UDP step of a dial (UDP's, or the one beneath DTLS): a connected socket as a session, the
 * model's addresses set and OPEN; with `probe`, once the target has answered it.
 */
export async function openUdp(
  d: Dial,
  options: UdpConnectOptions,
  probe: Uint8Array | undefined,
  phase: { resolved: boolean } = { resolved: false },
): Promise<UdpSocketSession> {
  const { host, port } = options;
  const conn = d.conn;
  let target: Awaited<ReturnType<typeof resolveHost>>;
  try {
    // a resolver that hangs is bounded by the dial's deadline and signal
    target = await d.step(resolveHost(host));
  } catch (err) {
    throw d.fail(errorCode(err, 'ENOTFOUND'), describeSocketError(err as Error), err);
  }
  phase.resolved = true;
  let socket: DatagramSocket;
  try {
    // bound (to localAddress/localPort, else the wildcard) and connected: local syscalls, no wait
    socket = await openDatagramSocket({
      family: target.family,
      address: options.localAddress,
      port: options.localPort,
      connect: { address: target.address, port },
      recvBufferSize: options.recvBufferSize,
      sendBufferSize: options.sendBufferSize,
      backend: options.datagramBackend,
    });
  } catch (err) {
    throw d.fail(errorCode(err, 'ECONNECT'), describeSocketError(err as Error), err);
  }
  let session: UdpSocketSession | null = null;
  d.onFail(() => {
    if (session !== null) {
      session.destroy();
      return session.whenClosed();
    }
    return socket.close();
  });
  const remote = socket.remoteAddress();
  const local = socket.address();
  conn.peername = [remote.address, remote.port];
  conn.sockname = [local.address, local.port];
  conn.state = ConnectionState.OPEN;
  if (probe === undefined) {
    session = new UdpSocketSession(conn, socket, options);
    return session;
  }
  return new Promise<UdpSocketSession>((resolve, reject) => {
    // the first failure is the one recorded: an ICMP error (ECONNREFUSED) before any answer
    const onError = (err: Error): void =>
      reject(d.fail(errorCode(err, 'ECONNECT'), describeSocketError(err), err));
    socket.on('error', onError);
    socket.onMessage((answer: Buffer) => {
      socket.off('error', onError);
      session = new UdpSocketSession(conn, socket, options);
      session.datagrams.deliver(answer);
      resolve(session);
    });
    socket.send(probe);
  });
}
