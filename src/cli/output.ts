import { Client, type Connection, formatAddress } from '../connection/index.js';
import type { Scheme } from '../transport/types.js';

/** The events of the command-line contract (docs/ARCHITECTURE.md). */
export type ModelEvent = 'start' | 'up' | 'closed' | 'error';

/** The JSON record of one event: event, driver, role, then the model's state keys. */
export function modelRecord(event: ModelEvent, driver: Scheme, conn: Connection): Record<string, unknown> {
  return { event, driver, role: conn instanceof Client ? 'client' : 'server', ...conn.toState() };
}

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
