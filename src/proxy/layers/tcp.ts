/**
 * The TCP layer: relays the bytes of a stream flow between its two legs (raw TCP, TLS
 * plaintext), with backpressure both ways and half-close kept, and runs the `tcp*` hooks. Also
 * the `reverse:tcp` mode: a TCP listener whose every client gets its own connection upstream.
 */
import type { Duplex } from 'node:stream';
import { type Address, type Client, now, type Server } from '../../connection/index.js';
import { describeSocketError, errorCode } from '../../transport/errors.js';
import { QuicStreamError } from '../../transport/quic/stream.js';
import { connectTcp, tcpServerModel } from '../../transport/tcp/connect.js';
import { TcpListener } from '../../transport/tcp/listener.js';
import type { TcpSession } from '../../transport/tcp/session.js';
import type { ProxyContext } from '../context.js';
import { Flow, FlowMessage, type TcpFlow } from '../hooks.js';
import type { FlowMode, ProxyMode } from '../modes.js';

/** The `stream` record of a flow whose streams ended (the CLI prints it with `--json`). */
export interface StreamRecord {
  event: 'stream';
  flow: string;
  /** QUIC: the stream's id on each leg; null for a TCP or TLS flow (one stream). */
  client_stream_id: number | null;
  server_stream_id: number | null;
  bytes_from_client: number;
  bytes_from_server: number;
  /** `fin` (both directions closed cleanly) or `reset CODE`. */
  end: string;
}

/** A listener of one mode, as the Proxy holds it. */
export interface ModeServer {
  readonly mode: ProxyMode | FlowMode;
  /** The bound address. */
  readonly address: Address;
  close(): Promise<void>;
}

/** How long a closing proxy waits for a flow's legs to finish after its FINs. */
const SHUTDOWN_GRACE_MS = 2000;

/** Resolves on `drain`, or when the stream can no longer drain. */
function drained(stream: Duplex): Promise<void> {
  if (stream.destroyed || !stream.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/**
 * Relays `client` <-> `server` until both have closed; resolves with how the flow ended (`fin`,
 * or `reset CODE` when a leg failed: the other is then destroyed). `tcpStart` runs first; with
 * `tcpMessage` hooks every chunk waits for them (the source paused meanwhile: backpressure),
 * may be rewritten or dropped, and the flow holds only the chunk in hand. Without, the legs are
 * piped. A FIN from one leg is passed on as a FIN (half-close), so the other direction goes on.
 * With `impaired`, the bytes reach each leg through the proxy's impairment (delay, rate, blackhole).
 */
export async function relayStreams(
  ctx: ProxyContext,
  flow: TcpFlow,
  client: Duplex,
  server: Duplex,
  impaired = false,
): Promise<string> {
  await ctx.bus.run('tcpStart', flow);
  // with impairment, the relay writes through the link's shapers (TCP and TLS; QUIC is impaired per datagram)
  const impair = impaired ? ctx.impair : null;
  const toServer = impair === null ? server : impair.stream('up', server);
  const toClient = impair === null ? client : impair.stream('down', client);
  return new Promise((resolve) => {
    let reset: string | null = null;
    let open = 2;
    let grace: NodeJS.Timeout | undefined;
    const fail = (code: string, message: string | null): void => {
      reset ??= `reset ${code}`;
      if (message !== null) flow.error ??= message;
      client.destroy();
      server.destroy();
    };
    const watch = (stream: Duplex, other: Duplex, conn: Client | Server): void => {
      stream.on('error', (err: Error) => {
        if (err instanceof QuicStreamError) {
          // a QUIC stream's RESET_STREAM or STOP_SENDING: the other leg's stream gets the same code
          reset ??= `reset ${err.code}`;
          flow.error ??= err.message;
          other.destroy(new QuicStreamError(err.message, err.code));
          return;
        }
        fail(errorCode(err, 'ERR_STREAM'), describeSocketError(err));
      });
      stream.once('close', () => {
        // gone without its FIN: a reset, or the other leg's failure destroyed it
        if (!stream.readableEnded) fail('ECONNRESET', conn.error);
        if (--open === 0) {
          clearTimeout(grace);
          resolve(reset ?? 'fin');
        }
      });
    };
    watch(client, server, flow.client);
    watch(server, client, flow.server);
    // the proxy is closing: FIN both ways, and a leg that does not finish in time is dropped
    const onShutdown = (): void => {
      client.end();
      server.end();
      grace = setTimeout(() => fail('ESHUTDOWN', null), SHUTDOWN_GRACE_MS);
    };
    if (ctx.shutdown.aborted) onShutdown();
    else ctx.shutdown.addEventListener('abort', onShutdown, { once: true });
    client.once('close', () => ctx.shutdown.removeEventListener('abort', onShutdown));
    const idle = ctx.options.idleTimeout;
    if (idle > 0) {
      const onIdle = (): void => fail('ETIMEDOUT', `Idle for ${idle} ms: the flow was closed`);
      for (const s of [client, server]) {
        const socket = s as Duplex & { setTimeout?: (ms: number, cb: () => void) => void };
        socket.setTimeout?.(idle, onIdle);
      }
    }
    if (!ctx.bus.has('tcpMessage')) {
      client.on('data', (chunk: Buffer) => {
        flow.bytesFromClient += chunk.length;
        flow.messagesFromClient++;
      });
      server.on('data', (chunk: Buffer) => {
        flow.bytesFromServer += chunk.length;
        flow.messagesFromServer++;
      });
      client.pipe(toServer);
      server.pipe(toClient);
      return;
    }
    // one queue per flow: its hooks run one at a time, in arrival order, both directions together
    let tail: Promise<void> = Promise.resolve();
    const enqueue = (step: () => Promise<void> | void): void => {
      tail = tail.then(step).catch((err: unknown) => {
        ctx.failFlow(flow, err);
        fail(errorCode(err, 'ERR_PROXY_FLOW'), null);
      });
    };
    const pump = (src: Duplex, dst: Duplex, fromClient: boolean): void => {
      src.on('data', (chunk: Buffer) => {
        src.pause();
        if (fromClient) flow.bytesFromClient += chunk.length;
        else flow.bytesFromServer += chunk.length;
        enqueue(async () => {
          const message = new FlowMessage(fromClient, chunk, now());
          flow.message = message;
          if (fromClient) flow.messagesFromClient++;
          else flow.messagesFromServer++;
          try {
            await ctx.bus.run('tcpMessage', flow);
          } finally {
            flow.message = null;
          }
          if (!message.dropped && message.content.length > 0 && !dst.destroyed) {
            dst.write(message.content);
            await drained(dst);
          }
          src.resume();
        });
      });
      src.once('end', () => enqueue(() => void dst.end()));
      // a stream its listener paused after peeking at it (plain TCP behind SOCKS5) flows again
      src.resume();
    };
    pump(client, toServer, true);
    pump(server, toClient, false);
  });
}

const streamId = (v: unknown): number | null => (typeof v === 'number' ? v : null);

/** The `stream` record of a stream flow (a TCP or TLS connection, or one QUIC stream: its IDs from `metadata`). */
export function streamRecord(flow: Flow, end: string): StreamRecord {
  return {
    event: 'stream',
    flow: flow.id,
    client_stream_id: streamId(flow.metadata.quicStreamIdClient),
    server_stream_id: streamId(flow.metadata.quicStreamIdServer),
    bytes_from_client: flow.bytesFromClient,
    bytes_from_server: flow.bytesFromServer,
    end,
  };
}

/**
 * The TCP layer of a flow whose legs are up: `tcpStart`, the relay, then `tcpEnd` (or
 * `tcpError` when it failed) and the `stream` record. A hook that throws fails the flow.
 * `impaired`: the proxy's impairment shapes the relayed bytes (TCP and TLS flows).
 */
export async function runTcpLayer(
  ctx: ProxyContext,
  flow: TcpFlow,
  client: Duplex,
  server: Duplex,
  impaired = false,
): Promise<void> {
  let end: string;
  try {
    end = await relayStreams(ctx, flow, client, server, impaired);
  } catch (err) {
    ctx.failFlow(flow, err);
    client.destroy();
    server.destroy();
    end = `reset ${errorCode(err, 'ERR_PROXY_FLOW')}`;
  }
  flow.live = false;
  ctx.events.emit('stream', streamRecord(flow, end));
  await ctx.settle(flow, ctx.bus.run(flow.error === null ? 'tcpEnd' : 'tcpError', flow));
}

/** A leg as `closeLegs` ends it. */
interface Leg {
  close(): Promise<void>;
  destroy(error?: Error): void;
  whenClosed?(): Promise<void>;
}

/** Closes a leg: gracefully after an ordinary end, at once (and awaited) after a failure. */
async function endLeg(leg: Leg, failed: boolean): Promise<void> {
  if (!failed) return leg.close();
  leg.destroy();
  await leg.whenClosed?.();
}

/**
 * The closing of a flow, once its layers are done: the server leg closed (`serverDisconnected`,
 * if it was ever up), then the client leg (`clientDisconnected`), each with its model event. A
 * failed flow's legs are destroyed rather than closed.
 */
export async function closeLegs(
  ctx: ProxyContext,
  flow: Flow,
  mode: FlowMode,
  client: Leg,
  server: Leg | null,
): Promise<void> {
  const failed = flow.error !== null;
  if (server !== null) {
    await endLeg(server, failed);
    ctx.model(flow.server.error === null ? 'closed' : 'error', flow.server, flow, mode);
    await ctx.settle(flow, ctx.bus.run('serverDisconnected', { client: flow.client, server: flow.server }));
  }
  await endLeg(client, failed);
  ctx.model(flow.client.error === null ? 'closed' : 'error', flow.client, flow, mode);
  await ctx.settle(flow, ctx.bus.run('clientDisconnected', flow.client));
}

/** One `reverse:tcp` flow: its client leg accepted, its server leg dialed, bytes relayed. */
async function tcpFlow(ctx: ProxyContext, mode: FlowMode, session: TcpSession<Client>): Promise<void> {
  const client = session.conn;
  const server = tcpServerModel({ host: mode.host, port: mode.port });
  const flow = new Flow('tcp', client, server) as TcpFlow;
  let upstream: TcpSession<Server> | null = null;
  try {
    await ctx.bus.run('clientConnected', client);
    ctx.model('start', client, flow, mode);
    ctx.model('up', client, flow, mode);
    const opened = await ctx.openServer(
      flow,
      mode,
      () =>
        connectTcp({
          host: mode.host,
          port: mode.port,
          conn: server,
          connectTimeout: ctx.options.connectTimeout,
          allowHalfOpen: true,
        }),
      (s) => {
        upstream = s;
      },
    );
    if (opened !== null) {
      ctx.model('up', server, flow, mode);
      await runTcpLayer(ctx, flow, session.stream, opened.stream, true);
    }
  } catch (err) {
    ctx.failFlow(flow, err);
  }
  await closeLegs(ctx, flow, mode, session, upstream);
}

/** Starts a `reverse:tcp` mode: a TCP listener, every client relayed to the mode's upstream. */
export async function startTcpMode(ctx: ProxyContext, mode: FlowMode, fd?: number): Promise<ModeServer> {
  const listener = await TcpListener.listen({
    host: mode.listenHost ?? ctx.options.listenHost,
    port: mode.listenPort ?? ctx.options.listenPort,
    ...(fd !== undefined ? { fd } : {}),
    proxyMode: mode.spec,
    allowHalfOpen: true,
  });
  listener.on('session', (session: TcpSession<Client>) => ctx.track(() => tcpFlow(ctx, mode, session)));
  listener.on('error', (err: Error) => ctx.events.emit('error', err));
  return { mode, address: listener.address, close: () => listener.close() };
}
