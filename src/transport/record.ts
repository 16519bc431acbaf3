/**
 * The JSON records of the command-line contract (`{"event", "driver", "role", ...state}`), and
 * which model events a listener's sessions go through: shared by `wirelayer listen` and by
 * workers, which forward the same records to their primary.
 */
import { Client, type Connection } from '../connection/index.js';
import type { AnySession, Listener, Scheme } from './types.js';

/** The events of the command-line contract. */
export type ModelEvent = 'start' | 'up' | 'closed' | 'error';

/**
 * The JSON record of one event: event, driver, role, any `extra` keys (a worker's `worker`, a
 * proxy flow's `flow`), then the model's state keys.
 */
export function modelRecord(
  event: ModelEvent,
  driver: Scheme,
  conn: Connection,
  extra?: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  return { event, driver, role: conn instanceof Client ? 'client' : 'server', ...extra, ...conn.toState() };
}

/** Reports `closed` (or `error`, when the session ended with one) once the session is gone. */
export function onSessionEnd(session: AnySession, report: (event: 'closed' | 'error') => void): void {
  const end = (): void => report(session.conn.error ? 'error' : 'closed');
  if (session.closed) end();
  else session.once('close', end);
}

/**
 * Reports each model event of a listener's sessions: `start` when a Client model is made, `up`
 * when established, then `closed` or `error` once it ends (a session that failed before it was
 * up ends with its `sessionError`).
 */
export function watchModels(
  listener: Listener<AnySession<Client>>,
  report: (event: ModelEvent, session: AnySession<Client>) => void,
): void {
  listener.on('start', (session: AnySession<Client>) => report('start', session));
  listener.on('session', (session: AnySession<Client>) => {
    report('up', session);
    onSessionEnd(session, (event) => report(event, session));
  });
  listener.on('sessionError', (session: AnySession<Client>) => {
    if (!session.established) onSessionEnd(session, (event) => report(event, session));
  });
}
