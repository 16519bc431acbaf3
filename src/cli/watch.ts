import type { Client } from '../connection/index.js';
import type { AnySession, Listener, Scheme } from '../transport/types.js';
import type { EventPrinter } from './output.js';

/** Prints `closed` (or `error`, when the session ended with one) once the session is gone. */
export function printEnd(printer: EventPrinter, driver: Scheme, session: AnySession): void {
  const end = (): void => printer.print(session.conn.error ? 'error' : 'closed', driver, session.conn);
  if (session.closed) end();
  else session.once('close', end);
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
  listener.on('start', (session: AnySession<Client>) => printer.print('start', driver, session.conn));
  listener.on('session', (session: AnySession<Client>) => {
    printer.print('up', driver, session.conn);
    if (withEcho) echo(session);
    printEnd(printer, driver, session);
  });
  listener.on('sessionError', (session: AnySession<Client>) => {
    if (!session.established) printEnd(printer, driver, session);
  });
  // the listening socket failed (as net.Server's 'error'): say so and go on serving
  listener.on('error', (err: Error) =>
    process.stderr.write(`wirelayer: ${driver} listener: ${err.message}\n`),
  );
}
