import { appendFileSync } from 'node:fs';
import type { Connection } from '../connection/index.js';
import type { SecurityOptions } from './types.js';

/** Receives each NSS key log line (with its newline) of a connection. */
export type KeylogSink = (line: Buffer, conn: Connection) => void;

const warned = new Set<string>();

/**
 * The `keylog` option as a sink: a callback as is, or a file that lines are appended to
 * (SSLKEYLOGFILE format, as Wireshark reads it), for TLS, DTLS and QUIC alike. Appends are synchronous, so the lines of one
 * handshake are in the file before the handshake's first application data leaves.
 */
export function keylogSink(option: SecurityOptions['keylog']): KeylogSink | null {
  if (option === undefined) return null;
  if (typeof option === 'function') return option;
  const path = option;
  return (line) => {
    try {
      appendFileSync(path, line);
    } catch (err) {
      if (!warned.has(path)) {
        warned.add(path);
        process.emitWarning(`wirelayer: cannot write key log ${path}: ${(err as Error).message}`);
      }
    }
  };
}
