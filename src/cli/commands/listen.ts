import { formatAddress } from '../../connection/index.js';
import { drivers } from '../../transport/index.js';
import { commonOptions, parse, parseTarget, securityOptions, UsageError } from '../args.js';
import { EventPrinter } from '../output.js';
import { watchListener } from '../watch.js';

export const usage = `wirelayer listen SCHEME://HOST:PORT [options]
  Accept sessions until stopped (SIGINT/SIGTERM), echo what each one sends, and print each
  Client model as it changes (start, up, closed, error). Port 0 picks a free port; the bound
  address goes to stderr.`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, commonOptions);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const target = parseTarget(positionals[0]);
  const driver = drivers[target.scheme];
  if (!driver) throw new UsageError(`scheme ${target.scheme} is not available yet`);
  const printer = new EventPrinter(values.json ?? false);
  const stop = new AbortController();
  const listener = await driver.listen({
    ...securityOptions(values),
    host: target.host,
    port: target.port,
    signal: stop.signal,
  });
  watchListener(printer, listener, true);
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
