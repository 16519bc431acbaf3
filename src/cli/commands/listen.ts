import type { Client } from '../../connection/index.js';
import { formatAddress } from '../../connection/index.js';
import { type ServeBehaviour, serve } from '../../load/serve.js';
import { drivers } from '../../transport/index.js';
import type { AnySession, Driver, ListenerStats, ListenOptions } from '../../transport/types.js';
import type { ProxyProtocolOptions, ProxyProtocolStats } from '../../transport/udp/proxy-protocol.js';
import { currentWorker, listenWorkers, resolveWorkerCount, type WorkerCount } from '../../workers/index.js';
import {
  commonOptions,
  parse,
  parseTarget,
  parseWorkers,
  securityOptions,
  trustedSenders,
  UsageError,
} from '../args.js';
import { EventPrinter } from '../output.js';
import { quicScaleOptions, quicScaleSettings, quicScaleUsage } from '../quic-scale.js';
import { watchListener } from '../watch.js';
import { runPrimary, untilSignal } from '../workers.js';

export const usage = `wirelayer listen SCHEME://HOST:PORT [options]
  Accept sessions until stopped (SIGINT/SIGTERM), serve each one, and print each Client model
  as it changes (start, up, closed, error). Port 0 picks a free port; the bound address goes to
  stderr. What each session gets (every QUIC stream the peer opens, and its DATAGRAM frames):
  --echo      what it sends, back (the default)
  --discard   nothing: what it sends is read and dropped
  --source    a stream of bytes as fast as it takes them; each datagram answered with one datagram
              of the size its header asks for (\`wirelayer load --mode receive\`)
  --workers N|auto  serve from N processes (auto: one per core) sharing the address (SO_REUSEPORT;
              QUIC steered by connection ID); records gain "worker" (default 1: this process)
  --proxy-protocol-from ADDR[/PREFIX][,...]  (udp, dtls, quic) these senders are load balancers
              speaking the PROXY protocol v2: each of their datagrams must start with a v2 header,
              whose source is the Client's peername; replies go back through them without one.
              Datagrams from them without a header, or with a malformed one, are dropped and
              counted; other senders are served as direct clients (their headers never believed).
              Repeatable. On exit the counters go to stderr (with --json, a last
              {"event":"stats","proxy_protocol":{...}} record)
quic:
${quicScaleUsage}`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...commonOptions,
    echo: { type: 'boolean' },
    discard: { type: 'boolean' },
    source: { type: 'boolean' },
    workers: { type: 'string' },
    'proxy-protocol-from': { type: 'string', multiple: true },
    ...quicScaleOptions,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const chosen = (['echo', 'discard', 'source'] as const).filter((b) => values[b]);
  if (chosen.length > 1)
    throw new UsageError(`one of --echo, --discard, --source, not ${chosen.map((b) => `--${b}`).join(' ')}`);
  const behaviour: ServeBehaviour = chosen[0] ?? 'echo';
  const target = parseTarget(positionals[0]);
  const workers = parseWorkers(values.workers);
  const driver = drivers[target.scheme];
  if (!driver) throw new UsageError(`scheme ${target.scheme} is not available yet`);
  const from = values['proxy-protocol-from'];
  let proxyProtocol: ProxyProtocolOptions | undefined;
  if (from !== undefined) {
    if (target.scheme !== 'udp' && target.scheme !== 'dtls' && target.scheme !== 'quic')
      throw new UsageError(`--proxy-protocol-from: for udp, dtls and quic listeners, not ${target.scheme}`);
    proxyProtocol = { trusted: trustedSenders(from, '--proxy-protocol-from') };
  }
  const scale = quicScaleSettings(values);
  if (target.scheme !== 'quic' && (scale.cids !== undefined || scale.secrets !== undefined))
    throw new UsageError('--quic-lb and --quic-secrets are for quic:// listeners');
  const stop = new AbortController();
  // the datagram drivers' own options beside the shared ones
  const options: ListenOptions & { proxyProtocol?: ProxyProtocolOptions } = {
    ...securityOptions(values),
    host: target.host,
    port: target.port,
    signal: stop.signal,
    ...scale,
    ...(proxyProtocol !== undefined ? { proxyProtocol } : {}),
  };
  if (resolveWorkerCount(workers) > 1 || currentWorker() !== null)
    return listenInWorkers(driver, options, workers, values.json ?? false, behaviour, stop);
  const printer = new EventPrinter(values.json ?? false);
  const listener = await driver.listen(options);
  watchListener(printer, listener, false);
  listener.on('session', (session: AnySession<Client>) => serve(session, behaviour));
  process.stderr.write(`wirelayer: listening on ${target.scheme}://${formatAddress(listener.address)}\n`);
  await untilSignal(listener, stop);
  const counted = (listener.stats as ListenerStats & { proxyProtocol?: ProxyProtocolStats | null })
    .proxyProtocol;
  if (counted) {
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({ event: 'stats', driver: target.scheme, proxy_protocol: counted })}\n`,
      );
    else process.stderr.write(`wirelayer: PROXY protocol: ${JSON.stringify(counted)}\n`);
  }
  return 0;
}

/** `--workers`: this process is the primary (it prints the workers' records) or one of the workers (it serves). */
async function listenInWorkers(
  driver: Driver,
  options: ListenOptions,
  workers: WorkerCount,
  json: boolean,
  behaviour: ServeBehaviour,
  stop: AbortController,
): Promise<number> {
  const run = await listenWorkers(driver, { ...options, workers });
  if (run.role === 'primary') return runPrimary(run, json, stop);
  const { listener, index } = run;
  listener.on('session', (session: AnySession<Client>) => serve(session, behaviour));
  listener.on('error', (err: Error) =>
    process.stderr.write(`wirelayer: worker ${index}: ${driver.scheme} listener: ${err.message}\n`),
  );
  await untilSignal(listener, stop);
  return 0;
}
