import type { Client } from '../connection/index.js';
import { onSessionEnd, watchModels } from '../transport/record.js';
import type { AnySession, Listener, Scheme } from '../transport/types.js';
import type { EventPrinter } from './output.js';

/** Prints `closed` (or `error`, when the session ended with one) once the session is gone. */
export function printEnd(printer: EventPrinter, driver: Scheme, session: AnySession): void {
  onSessionEnd(session, (event) => printer.print(event, driver, session.conn));
}

/** Echoes whatever a session receives: bytes back down the stream, each datagram back as is. */
export function echo(session: AnySession): void {
  if ('stream' in session) session.stream.pipe(session.stream);
  else session.datagrams.on('datagram', (d: Uint8Array) => session.datagrams.send(d));
}

/** Prints a listener's sessions as they start, come up and end; each one up is echoed. */
export function watchListener(
  printer: EventPrinter,
  listener: Listener<AnySession<Client>>,
  withEcho: boolean,
): void {
  const driver = listener.scheme;
  watchModels(listener, (event, session) => printer.print(event, driver, session.conn));
  if (withEcho) listener.on('session', (session: AnySession<Client>) => echo(session));
  // the listening socket failed (as net.Server's 'error'): say so and go on serving
  listener.on('error', (err: Error) =>
    process.stderr.write(`wirelayer: ${driver} listener: ${err.message}\n`),
  );
}
