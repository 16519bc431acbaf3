import type { Client } from '../../connection/index.js';
import { formatAddress } from '../../connection/index.js';
import { type ServeBehaviour, serve } from '../../load/serve.js';
import { drivers } from '../../transport/index.js';
import type { AnySession } from '../../transport/types.js';
import { commonOptions, parse, parseTarget, securityOptions, UsageError } from '../args.js';
import { EventPrinter } from '../output.js';
import { quicScaleOptions, quicScaleSettings, quicScaleUsage } from '../quic-scale.js';
import { watchListener } from '../watch.js';

export const usage = `wirelayer listen SCHEME://HOST:PORT [options]
  Accept sessions until stopped (SIGINT/SIGTERM), serve each one, and print each Client model
  as it changes (start, up, closed, error). Port 0 picks a free port; the bound address goes to
  stderr. What each session gets (every QUIC stream the peer opens, and its DATAGRAM frames):
  --echo      what it sends, back (the default)
  --discard   nothing: what it sends is read and dropped
  --source    a stream of bytes as fast as it takes them; each datagram answered with one datagram
              of the size its header asks for (\`wirelayer load --mode receive\`)
quic:
${quicScaleUsage}`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...commonOptions,
    echo: { type: 'boolean' },
    discard: { type: 'boolean' },
    source: { type: 'boolean' },
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
  const driver = drivers[target.scheme];
  if (!driver) throw new UsageError(`scheme ${target.scheme} is not available yet`);
  const scale = quicScaleSettings(values);
  if (target.scheme !== 'quic' && (scale.cids !== undefined || scale.secrets !== undefined))
    throw new UsageError('--quic-lb and --quic-secrets are for quic:// listeners');
  const printer = new EventPrinter(values.json ?? false);
  const stop = new AbortController();
  const listener = await driver.listen({
    ...securityOptions(values),
    host: target.host,
    port: target.port,
    ...scale,
    signal: stop.signal,
  });
  watchListener(printer, listener, false);
  listener.on('session', (session: AnySession<Client>) => serve(session, behaviour));
  process.stderr.write(`wirelayer: listening on ${target.scheme}://${formatAddress(listener.address)}\n`);
  const closed = new Promise<void>((resolve) => listener.once('close', () => resolve()));
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await closed;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return 0;
}
