/**
 * The SOCKS5 mode (RFC 1928, RFC 1929 for username/password): a TCP listener whose every
 * connection first speaks SOCKS5 (greeting, method, credentials, request), then:
 *
 * - CONNECT: the stream goes on as a reverse flow to the requested destination: the TLS
 *   listener reads its first bytes, so TLS is intercepted or passed through by the same rules
 *   and hooks as `reverse:tls`, and anything else is relayed as `reverse:tcp` relays it. The
 *   server leg is dialed before the reply (connection strategy `eager`), so the reply says how
 *   the connect went (RFC 1928 section 6 codes); `lazy` replies success at once, as mitmproxy.
 * - UDP ASSOCIATE: an association (socks5-udp.ts) whose destinations each run the UDP layers;
 *   it ends with its control connection, or after the UDP timeout without a datagram.
 * - BIND, and any other command: "command not supported".
 *
 * Hooks: `clientConnected` at the TCP accept, `socks5Auth` with the credentials, then the
 * flow's own as in reverse mode (a CONNECT) or each destination flow's (an association), and
 * `clientDisconnected` when the control connection is gone.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { type Client, Server } from '../../connection/index.js';
import type { TlsSession } from '../../transport/tls/session.js';
import type { Scheme } from '../../transport/types.js';
import type { ProxyContext } from '../context.js';
import { Flow, type Socks5AuthData } from '../hooks.js';
import type { FlowMode, Socks5Mode } from '../modes.js';
import {
  AuthMethod,
  Command,
  credentialsStatus,
  methodSelection,
  type Parsed,
  parseCredentials,
  parseGreeting,
  parseRequest,
  Reply,
  type Request,
  reply,
  type Socks5Address,
  Socks5Error,
} from '../socks5/wire.js';
import { Association, AssociationRegistry, unmapped } from './socks5-udp.js';
import type { ModeServer } from './tcp.js';
import { listenTls, TlsFlow } from './tls.js';

/** Unread bytes held while a SOCKS5 message is incomplete; past this the socket is paused (the longest message is 513 bytes). */
const MAX_BUFFERED = 4096;
/** How long a refused client has to read our last reply before its connection is dropped. */
const CLOSE_GRACE_MS = 1000;

const REPLY_NAMES = Object.fromEntries(Object.entries(Reply).map(([name, code]) => [code, name])) as Record<
  number,
  string
>;

/** The reply code for a CONNECT whose server leg failed with this connect error code. */
export function replyForConnectError(code: string | null, vetoed: boolean): Reply {
  if (vetoed) return Reply.NOT_ALLOWED;
  switch (code) {
    case 'ECONNREFUSED':
      return Reply.CONNECTION_REFUSED;
    case 'ENETUNREACH':
      return Reply.NETWORK_UNREACHABLE;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
    case 'ENODATA':
      return Reply.HOST_UNREACHABLE;
    case 'ETIMEDOUT':
      return Reply.TTL_EXPIRED;
    default:
      return Reply.GENERAL_FAILURE;
  }
}

/** The control connection ended (FIN, reset, our timeout) before a whole message. */
class ControlClosed extends Error {}

/** Reads SOCKS5 messages off a control connection, one parser at a time. */
class ControlReader {
  #buf: Buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | null = null;

  constructor(private readonly socket: Socket) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#buf.length > MAX_BUFFERED) this.socket.pause();
    this.#wake?.();
  };

  readonly #onEnd = (): void => {
    this.#closed = true;
    this.#wake?.();
  };

  /** The next message `parse` reads (throws its Socks5Error, or ControlClosed). */
  async next<T>(parse: (buf: Uint8Array) => Parsed<T> | null): Promise<T> {
    for (;;) {
      const parsed = parse(this.#buf);
      if (parsed !== null) {
        this.#buf = this.#buf.subarray(parsed.length);
        return parsed.value;
      }
      if (this.#closed) throw new ControlClosed();
      this.socket.resume();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = null;
    }
  }

  /** Stops reading; bytes read beyond the last message go back to the socket (a pipelined ClientHello). */
  detach(): void {
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    this.socket.pause();
    if (this.#buf.length > 0) this.socket.unshift(this.#buf);
    this.#buf = Buffer.alloc(0);
  }
}

/** Constant-time comparison of credentials (hashed first, so lengths do not show either). */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** What the control connections of one mode share. */
interface ModeState {
  readonly ctx: ProxyContext;
  readonly mode: Socks5Mode;
  /** The model events of control connections carry this (scheme `tcp`, the listener's address). */
  readonly control: FlowMode;
  readonly tlsFlows: WeakMap<Client, TlsFlow>;
  /** CONNECT destinations by client: their scheme follows what the first bytes turned out to be. */
  readonly targets: WeakMap<Client, { scheme: Scheme }>;
  readonly registry: AssociationRegistry;
}

/** One SOCKS5 control connection, from the TCP accept to its end. */
class ControlConnection {
  /** The flow of the control phase (hooks that throw there fail it); a CONNECT's flow is the TLS layer's. */
  readonly flow: Flow;
  /** Resolves when the TLS listener may go on with the stream (true: a CONNECT, replied). */
  readonly proceed: Promise<boolean>;
  #proceed!: (go: boolean) => void;
  #timedOut = false;

  constructor(
    readonly state: ModeState,
    readonly session: TlsSession<Client>,
  ) {
    this.flow = new Flow('tcp', session.conn, new Server({ address: null, transportProtocol: 'tcp' }));
    this.proceed = new Promise((resolve) => {
      this.#proceed = resolve;
    });
  }

  get client(): Client {
    return this.session.conn;
  }

  get socket(): Socket {
    return this.session.socket;
  }

  async run(): Promise<void> {
    const { ctx, control } = this.state;
    ctx.socks5.connections++;
    let handedOver = false;
    try {
      await ctx.bus.run('clientConnected', this.client);
      ctx.model('start', this.client, this.flow, control);
      const request = await this.#negotiate();
      if (request !== null) {
        const { command, address } = request;
        if (command === Command.CONNECT) {
          handedOver = true;
          await this.#connect(address);
        } else if (command === Command.UDP_ASSOCIATE) {
          await this.#associate();
        } else {
          await this.#refuse(
            Reply.COMMAND_NOT_SUPPORTED,
            `SOCKS5 command ${command === Command.BIND ? 'BIND' : command} is not supported`,
          );
        }
      }
    } catch (err) {
      ctx.failFlow(this.flow, err);
    } finally {
      this.#proceed(false);
    }
    if (handedOver) return;
    await this.#closeControl();
    ctx.model(this.client.error === null ? 'closed' : 'error', this.client, this.flow, control);
    await ctx.settle(this.flow, ctx.bus.run('clientDisconnected', this.client));
  }

  #write(data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else this.socket.write(data, () => resolve());
    });
  }

  /** A failure before the request was served: counted by `code`, recorded on the Client. */
  #fail(code: string, message: string): void {
    const failures = this.state.ctx.socks5.handshakeFailures;
    failures[code] = (failures[code] ?? 0) + 1;
    this.client.error ??= message;
    this.state.ctx.failFlow(this.flow, Object.assign(new Error(message), { code }));
  }

  /** A request refused with `code` (section 6): the reply, counted by name; the connection then ends. */
  async #refuse(code: Reply, message: string): Promise<void> {
    const refusals = this.state.ctx.socks5.refusals;
    const name = REPLY_NAMES[code] ?? String(code);
    refusals[name] = (refusals[name] ?? 0) + 1;
    this.client.error ??= message;
    this.state.ctx.failFlow(this.flow, Object.assign(new Error(message), { code: `SOCKS5_${name}` }));
    await this.#write(reply(code));
  }

  /** Greeting, method, credentials and request, within the handshake timeout; null when it failed (answered, counted). */
  async #negotiate(): Promise<Request | null> {
    const { ctx } = this.state;
    const reader = new ControlReader(this.socket);
    const timeout = ctx.options.handshakeTimeout;
    const timer = setTimeout(() => {
      this.#timedOut = true;
      this.socket.destroy();
    }, timeout);
    try {
      const greeting = await reader.next(parseGreeting);
      const auth = ctx.options.proxyAuth;
      const method = auth === null ? AuthMethod.NONE : AuthMethod.USERPASS;
      if (!greeting.methods.includes(method)) {
        await this.#write(methodSelection(AuthMethod.NO_ACCEPTABLE));
        this.#fail(
          'NO_ACCEPTABLE_METHODS',
          `The SOCKS5 client offers methods ${greeting.methods.join(', ')}; the proxy takes ${method === AuthMethod.NONE ? '0 (no authentication)' : '2 (username/password)'}`,
        );
        return null;
      }
      await this.#write(methodSelection(method));
      if (auth !== null) {
        const { username, password } = await reader.next(parseCredentials);
        const data: Socks5AuthData = {
          client: this.client,
          username,
          password,
          valid:
            auth === 'any' || (sameSecret(username, auth.username) && sameSecret(password, auth.password)),
        };
        await ctx.bus.run('socks5Auth', data);
        await this.#write(credentialsStatus(data.valid));
        if (!data.valid) {
          this.#fail('AUTH_FAILED', `SOCKS5 authentication failed for user ${JSON.stringify(username)}`);
          return null;
        }
      }
      return await reader.next(parseRequest);
    } catch (err) {
      if (err instanceof Socks5Error) {
        if (err.reply !== null) await this.#refuse(err.reply, err.message);
        else this.#fail(err.code, err.message);
        return null;
      }
      if (err instanceof ControlClosed) {
        if (this.#timedOut)
          this.#fail('ETIMEDOUT', `No SOCKS5 request within ${timeout} ms: the connection was closed`);
        else this.#fail('CLOSED', 'The client closed the connection during the SOCKS5 handshake');
        return null;
      }
      throw err;
    } finally {
      clearTimeout(timer);
      reader.detach();
    }
  }

  /**
   * CONNECT: the rest of the stream is a reverse flow to the destination (TLS or plain TCP),
   * run by the TLS layer; the reply goes out once it is ready for the client's first bytes.
   */
  async #connect(address: Socks5Address): Promise<void> {
    const { ctx, mode, tlsFlows, targets } = this.state;
    const target = { scheme: 'tls' as Scheme, host: address.host, port: address.port, spec: mode.spec };
    targets.set(this.client, target);
    const flow: TlsFlow = new TlsFlow(ctx, target, this.session, {
      ready: async (ok, connectCode) => {
        if (ok) {
          ctx.socks5.connects++;
          // BND: where our server leg connects from (none yet when it connects lazily)
          const local = flow.tcp?.stream;
          await this.#write(reply(Reply.SUCCEEDED, local?.localAddress ?? '0.0.0.0', local?.localPort ?? 0));
        } else {
          // a `serverConnect` hook that set `server.error` vetoed the connect: nothing was dialed
          const code = replyForConnectError(connectCode, connectCode === null && flow.server.error !== null);
          const refusals = ctx.socks5.refusals;
          const name = REPLY_NAMES[code]!;
          refusals[name] = (refusals[name] ?? 0) + 1;
          await this.#write(reply(code));
        }
        this.#proceed(ok);
      },
    });
    tlsFlows.set(this.client, flow);
    await flow.run();
  }

  /** UDP ASSOCIATE: an association until the control connection closes (or idles out). */
  async #associate(): Promise<void> {
    const { ctx, mode, control, registry } = this.state;
    // the TLS listener leaves this connection to us
    this.#proceed(false);
    const settings = ctx.options.socks5;
    const clientIp = unmapped(this.client.peername[0]);
    if (ctx.socks5.liveAssociations >= settings.maxAssociations) {
      await this.#refuse(Reply.GENERAL_FAILURE, `Too many UDP associations (${settings.maxAssociations})`);
      return;
    }
    if ((registry.perClient.get(clientIp) ?? 0) >= settings.maxAssociationsPerClient) {
      await this.#refuse(
        Reply.GENERAL_FAILURE,
        `Too many UDP associations from ${clientIp} (${settings.maxAssociationsPerClient})`,
      );
      return;
    }
    let association: Association;
    try {
      association = await Association.open(
        ctx,
        mode.spec,
        registry,
        this.socket.localAddress ?? this.client.sockname[0],
        clientIp,
      );
    } catch (err) {
      await this.#refuse(Reply.GENERAL_FAILURE, `No UDP relay socket: ${(err as Error).message}`);
      ctx.failFlow(this.flow, err);
      return;
    }
    const bindHost = settings.advertise ?? unmapped(association.local.address);
    await this.#write(reply(Reply.SUCCEEDED, bindHost, association.local.port));
    ctx.model('up', this.client, this.flow, control);
    await new Promise<void>((resolve) => {
      const socket = this.socket;
      // the control connection carries nothing more (RFC 1928): what comes is read and dropped
      socket.on('data', () => undefined);
      socket.resume();
      const end = (): void => {
        socket.destroy();
        resolve();
      };
      if (socket.destroyed || socket.readableEnded) end();
      // the client's FIN ends it (the listener keeps half-open connections: no close comes by itself)
      socket.once('end', end);
      socket.once('close', end);
      association.once('idle', end);
      if (ctx.shutdown.aborted) end();
      else ctx.shutdown.addEventListener('abort', end, { once: true });
      socket.once('close', () => ctx.shutdown.removeEventListener('abort', end));
    });
    await association.close();
  }

  /** Ends the control connection: our FIN after the last reply, a reset if the client does not close in time. */
  async #closeControl(): Promise<void> {
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end();
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    await new Promise<void>((resolve) => {
      if (socket.destroyed) resolve();
      else socket.once('close', () => resolve());
    });
    clearTimeout(timer);
  }
}

/**
 * Starts a `socks5` mode: one TCP listener (the TLS listener, detecting, whose preamble is the
 * SOCKS5 handshake), flows per CONNECT and per association destination.
 */
export async function startSocks5Mode(ctx: ProxyContext, mode: Socks5Mode, fd?: number): Promise<ModeServer> {
  const connections = new WeakMap<Client, ControlConnection>();
  const tlsFlows = new WeakMap<Client, TlsFlow>();
  const targets = new WeakMap<Client, { scheme: Scheme }>();
  const listener = await listenTls(ctx, mode, tlsFlows, {
    detect: true,
    preamble: (session) => connections.get(session.conn)?.proceed ?? Promise.resolve(false),
    ...(fd !== undefined ? { fd } : {}),
  });
  const registry = new AssociationRegistry();
  registry.ports.add(listener.address[1]);
  const state: ModeState = {
    ctx,
    mode,
    control: { scheme: 'tcp', host: listener.address[0], port: listener.address[1], spec: mode.spec },
    tlsFlows,
    targets,
    registry,
  };
  listener.on('start', (session: TlsSession<Client>) => {
    const connection = new ControlConnection(state, session);
    connections.set(session.conn, connection);
    ctx.track(() => connection.run());
  });
  // registered after the TLS layer's own: runs before the flow reads the outcome
  listener.on('session', (session: TlsSession<Client>) => {
    const target = targets.get(session.conn);
    if (target !== undefined && session.layer === 'plain') target.scheme = 'tcp';
  });
  return { mode, address: listener.address, close: () => listener.close() };
}
