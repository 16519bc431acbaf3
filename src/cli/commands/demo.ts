import { once } from 'node:events';
import { drivers } from '../../transport/index.js';
import type { AnySession } from '../../transport/types.js';
import { parse } from '../args.js';
import { DEMOS, type DemoCase } from '../demo.js';
import { EventPrinter } from '../output.js';
import { printEnd, watchListener } from '../watch.js';

export const usage = `wirelayer demo [--json]
  On loopback, a listener and a client of every driver, one message echoed, both models
  (the Client and the Server) printed as they change. What \`npm start\` runs.`;

const DEMO_TIMEOUT_MS = 10_000;

export async function run(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const printer = new EventPrinter(values.json ?? false);
  for (const demo of DEMOS) await runCase(printer, demo);
  return 0;
}

async function runCase(printer: EventPrinter, demo: DemoCase): Promise<void> {
  const driver = drivers[demo.scheme];
  if (!driver) return;
  const signal = AbortSignal.timeout(DEMO_TIMEOUT_MS);
  await using listener = await driver.listen({ ...demo.listen, signal });
  watchListener(printer, listener, true);
  const [host, port] = listener.address;
  const conn = driver.serverModel({ ...demo.connect, host, port });
  printer.print('start', demo.scheme, conn);
  const session = await driver.connect({ ...demo.connect, host, port, conn, signal });
  printer.print('up', demo.scheme, conn);
  printEnd(printer, demo.scheme, session);
  await exchange(session, demo.payload);
  const inbound = [...listener.sessions];
  await session.close();
  await Promise.all(inbound.map((s) => (s.closed ? undefined : once(s, 'close'))));
}

/** Sends the payload and waits for the echo. */
async function exchange(session: AnySession, payload: Uint8Array): Promise<void> {
  if ('stream' in session) {
    session.stream.write(payload);
    let received = 0;
    while (received < payload.length) {
      const [chunk] = (await once(session.stream, 'data')) as [Buffer];
      received += chunk.length;
    }
  } else {
    const reply = once(session.datagrams, 'datagram');
    session.datagrams.send(payload);
    await reply;
  }
}
