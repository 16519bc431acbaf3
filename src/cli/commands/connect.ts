import { ConnectError } from '../../transport/errors.js';
import { drivers } from '../../transport/index.js';
import { commonOptions, parse, parseTarget, securityOptions, UsageError } from '../args.js';
import { EventPrinter } from '../output.js';

export const usage = `wirelayer connect SCHEME://HOST:PORT [options]
  Dial once, print the Server model (start, up), close cleanly (closed).
  Exit 0 on success, 1 when the connect fails (the error record is still printed).
  --connect-timeout MS   give up connecting (and handshaking) after MS milliseconds (default 10000)`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...commonOptions, 'connect-timeout': { type: 'string' } });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const target = parseTarget(positionals[0]);
  const driver = drivers[target.scheme];
  if (!driver) throw new UsageError(`scheme ${target.scheme} is not available yet`);
  const connectTimeout = Number(values['connect-timeout'] ?? 10_000);
  if (!Number.isFinite(connectTimeout) || connectTimeout <= 0)
    throw new UsageError(`--connect-timeout: not a number of ms: ${values['connect-timeout']}`);
  const printer = new EventPrinter(values.json ?? false);
  const options = { ...securityOptions(values), host: target.host, port: target.port, connectTimeout };
  // the model as the driver means it (transport, tls, sni, alpn offers) from the first record
  const conn = driver.serverModel(options);
  printer.print('start', target.scheme, conn);
  try {
    const session = await driver.connect({ ...options, conn });
    printer.print('up', target.scheme, conn);
    await session.close();
    printer.print(conn.error ? 'error' : 'closed', target.scheme, conn);
    return 0;
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    printer.print('error', target.scheme, conn);
    return 1;
  }
}
