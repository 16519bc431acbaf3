import { Client, type Connection, ConnectionState, formatAddress, Server } from '../connection/index.js';
import { type ModelEvent, modelRecord } from '../transport/record.js';
import type { Scheme } from '../transport/types.js';

export { type ModelEvent, modelRecord };

/** One readable line, led by the model's text form. */
export function modelLine(event: ModelEvent, driver: Scheme, conn: Connection): string {
  const parts = [String(conn), event, driver];
  const local = conn instanceof Client ? conn.sockname : conn.sockname;
  const remote = conn instanceof Client ? conn.peername : conn.peername;
  if (remote) parts.push(`${formatAddress(local)} <-> ${formatAddress(remote)}`);
  if (conn.tlsVersion) parts.push(conn.tlsVersion);
  if (conn.cipher) parts.push(conn.cipher);
  if (conn.alpn !== null && conn.tlsEstablished) parts.push(`alpn=${conn.alpn || '(none)'}`);
  if (conn.alpnOffers.length > 0) parts.push(`alpn_offers=${conn.alpnOffers.join(',')}`);
  if (conn.sni) parts.push(`sni=${conn.sni}`);
  if (conn.certificateList.length > 0)
    parts.push(`peer_cert="${conn.certificateList[0]!.subject.replace(/\n/g, ', ')}"`);
  if (event === 'closed' || event === 'error') {
    const start = conn.timestampStart;
    if (start !== null && conn.timestampEnd !== null)
      parts.push(`${((conn.timestampEnd - start) * 1000).toFixed(1)} ms`);
  }
  if (conn.error) parts.push(`error=${JSON.stringify(conn.error)}`);
  return parts.join('  ');
}

/** Writes model events to stdout, as JSON lines or readable lines. */
export class EventPrinter {
  constructor(
    private readonly json: boolean,
    private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  print(event: ModelEvent, driver: Scheme, conn: Connection): void {
    this.write(this.json ? JSON.stringify(modelRecord(event, driver, conn)) : modelLine(event, driver, conn));
  }
}

const MODEL_EVENTS: readonly string[] = ['start', 'up', 'closed', 'error'];

/**
 * The readable line of a worker's JSON record of a model event (the model rebuilt from its
 * state, then ` worker=N`); null for other records.
 */
export function workerRecordLine(record: Readonly<Record<string, unknown>>): string | null {
  const { event, driver, role, worker, flow: _flow, ...state } = record;
  if (typeof event !== 'string' || !MODEL_EVENTS.includes(event) || typeof driver !== 'string') return null;
  let conn: Connection;
  try {
    // the line does not show mitmcert: not parsed again (an X.509 parse per record)
    conn = role === 'client' ? Client.fromState({ ...state, mitmcert: null }) : Server.fromState(state);
  } catch {
    return null;
  }
  conn.state = event === 'closed' || event === 'error' ? ConnectionState.CLOSED : ConnectionState.OPEN;
  return `${modelLine(event as ModelEvent, driver as Scheme, conn)}  worker=${String(worker)}`;
}
