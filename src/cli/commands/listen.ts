import type { Client } from '../../connection/index.js';
import { formatAddress } from '../../connection/index.js';
import { type ServeBehaviour, serve } from '../../load/serve.js';
import { drivers } from '../../transport/index.js';
import type { AnySession, Driver, ListenOptions } from '../../transport/types.js';
import { currentWorker, listenWorkers, resolveWorkerCount, type WorkerCount } from '../../workers/index.js';
import { commonOptions, parse, parseTarget, parseWorkers, securityOptions, UsageError } from '../args.js';
import { EventPrinter } from '../output.js';
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
              QUIC steered by connection ID); records gain "worker" (default 1: this process)`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...commonOptions,
    echo: { type: 'boolean' },
    discard: { type: 'boolean' },
    source: { type: 'boolean' },
    workers: { type: 'string' },
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
  const stop = new AbortController();
  const options: ListenOptions = {
    ...securityOptions(values),
    host: target.host,
    port: target.port,
    signal: stop.signal,
  };
  if (resolveWorkerCount(workers) > 1 || currentWorker() !== null)
    return listenInWorkers(driver, options, workers, values.json ?? false, behaviour, stop);
  const printer = new EventPrinter(values.json ?? false);
  const listener = await driver.listen(options);
  watchListener(printer, listener, false);
  listener.on('session', (session: AnySession<Client>) => serve(session, behaviour));
  process.stderr.write(`wirelayer: listening on ${target.scheme}://${formatAddress(listener.address)}\n`);
  await untilSignal(listener, stop);
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
