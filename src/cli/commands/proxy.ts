import type { Client, Server } from '../../connection/index.js';
import { formatAddress } from '../../connection/index.js';
import { ModeError, parseMode } from '../../proxy/mode.js';
import { UdpRelay } from '../../proxy/udp-relay.js';
import { parse, securityOptions, UsageError } from '../args.js';
import { EventPrinter } from '../output.js';

export const usage = `wirelayer proxy --mode reverse:SCHEME://HOST:PORT [--listen-host H] [--listen-port P] [options]
  Relay every client to HOST:PORT until stopped (SIGINT/SIGTERM). Per flow, both models are
  printed as they change: the Client (start, up, closed) and its Server upstream (start, up,
  closed, or error). The bound address goes to stderr. Schemes available: udp.
  --listen-host H       address to listen on (default 127.0.0.1)
  --listen-port P       port to listen on (default 0: a free one, shown on stderr)
  --idle-timeout SECONDS  a flow idle this long is closed (default 60, as mitmproxy)
  --max-flows N         flows held at most; at the cap the least recently active is evicted (default 10000)
  --json                one JSON object per line on stdout`;

const options = {
  mode: { type: 'string' },
  'listen-host': { type: 'string' },
  'listen-port': { type: 'string' },
  'max-flows': { type: 'string' },
  'idle-timeout': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integer(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag}: not an integer in ${min}..${max}: ${text}`);
  return n;
}

/** Runs the proxy until SIGINT/SIGTERM (or `signal`, for embedding and tests). */
export async function run(args: string[], signal?: AbortSignal): Promise<number> {
  const { values } = parse(args, options);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.mode === undefined) throw new UsageError('missing --mode reverse:SCHEME://HOST:PORT');
  let mode: ReturnType<typeof parseMode>;
  try {
    mode = parseMode(values.mode);
  } catch (e) {
    if (e instanceof ModeError) throw new UsageError(`--mode: ${e.message}`);
    throw e;
  }
  if (mode.scheme !== 'udp')
    throw new UsageError(`--mode: scheme ${mode.scheme} is not available yet (udp is)`);
  const { idleTimeout } = securityOptions({ 'idle-timeout': values['idle-timeout'] });
  const stop = new AbortController();
  const relay = await UdpRelay.start({
    upstream: { host: mode.host, port: mode.port },
    host: values['listen-host'] ?? '127.0.0.1',
    port: integer(values['listen-port'], '--listen-port', 0, 65535) ?? 0,
    idleTimeout,
    maxFlows: integer(values['max-flows'], '--max-flows', 1, 10_000_000),
    proxyMode: mode.spec,
    signal: stop.signal,
  });
  const printer = new EventPrinter(values.json ?? false);
  const driver = mode.scheme;
  const end = (conn: Client | Server): void => printer.print(conn.error ? 'error' : 'closed', driver, conn);
  relay.on('clientConnected', (client: Client) => {
    printer.print('start', driver, client);
    printer.print('up', driver, client);
  });
  relay.on('serverConnect', (server: Server) => printer.print('start', driver, server));
  relay.on('serverConnected', (server: Server) => printer.print('up', driver, server));
  relay.on('serverConnectError', (server: Server) => printer.print('error', driver, server));
  relay.on('serverDisconnected', end);
  relay.on('clientDisconnected', end);
  process.stderr.write(`wirelayer: listening on udp://${formatAddress(relay.address)} (${mode.spec})\n`);

  const closed = new Promise<void>((resolve) => relay.once('close', () => resolve()));
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (signal?.aborted) stop.abort();
  signal?.addEventListener('abort', onSignal, { once: true });
  await closed;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  signal?.removeEventListener('abort', onSignal);
  return 0;
}
