/**
 * Text forms of inspection results: a JSON line per record, a table for people, and the
 * wording of capture errors.
 */
import type { CaptureError, Endpoint } from '../capture/index.js';
import { INSPECT_RECORD_KEYS, type InspectRecord } from './record.js';

/** The record as one line of JSON, keys in `INSPECT_RECORD_KEYS` order. */
export function recordJson(record: InspectRecord): string {
  const ordered: Record<string, unknown> = {};
  for (const key of INSPECT_RECORD_KEYS) ordered[key] = record[key];
  return JSON.stringify(ordered);
}

/** `host:port`, IPv6 hosts in brackets. */
export function formatEndpoint([host, port]: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const COLUMNS: readonly { readonly title: string; readonly value: (r: InspectRecord) => string }[] = [
  { title: 'PROTO', value: (r) => r.protocol },
  { title: 'CLIENT', value: (r) => formatEndpoint(r.client) },
  { title: 'SERVER', value: (r) => formatEndpoint(r.server) },
  { title: 'SNI', value: (r) => r.sni ?? '-' },
  { title: 'VERSION', value: (r) => r.tls_version ?? '-' },
  { title: 'CIPHER', value: (r) => r.cipher ?? '-' },
  { title: 'ALPN', value: (r) => r.alpn ?? '-' },
  { title: 'ALPN OFFERS', value: (r) => (r.alpn_offers.length > 0 ? r.alpn_offers.join(',') : '-') },
  { title: 'CIPHERS', value: (r) => String(r.offered_ciphers.length) },
  { title: 'JA4', value: (r) => r.ja4 ?? '-' },
];

/** Most characters of a cell, so one long SNI or ALPN list cannot stretch every row. */
const MAX_CELL = 48;

/**
 * The records as a table: a header line and one line per record, columns padded to their
 * widest cell and two spaces apart (CIPHERS counts the offered cipher suites; `-` is none).
 */
export function formatTable(records: readonly InspectRecord[]): string[] {
  const rows = [COLUMNS.map((c) => c.title), ...records.map((r) => COLUMNS.map((c) => cell(c.value(r))))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) =>
    row
      .map((text, i) => (i === row.length - 1 ? text : text.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

function cell(text: string): string {
  // Names come off the wire: keep control characters out of the terminal.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > MAX_CELL ? `${clean.slice(0, MAX_CELL - 3)}...` : clean;
}

/**
 * "capture truncated at offset 1234: pcap record data cut short", or "corrupt" for a record or
 * block whose lengths cannot be right, or "not a pcap or pcapng file".
 */
export function describeCaptureError(error: CaptureError): string {
  // CaptureError's message ends with " at offset N"; the offset goes up front here.
  const detail = error.message.replace(/ at offset \d+$/, '');
  switch (error.code) {
    case 'truncated':
      return `capture truncated at offset ${error.offset}: ${detail}`;
    case 'unknown-format':
      return `not a pcap or pcapng file: ${detail}`;
    case 'io':
      return detail;
    default:
      return `capture corrupt at offset ${error.offset}: ${detail} (${error.code})`;
  }
}
