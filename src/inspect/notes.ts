/**
 * The wording of per-connection notes: why a hello could not be read.
 */
import type { HandshakeParseError } from '../handshake/index.js';

/** "ClientHello does not parse: bad-extension: malformed extension 16 at offset 120". */
export function unparsable(what: string, error: HandshakeParseError): string {
  // The message ends in a hex excerpt of the bytes around the offset: too long for a note.
  const message = error.message.replace(/ \([0-9a-f]*\)$/, '');
  return `${what} does not parse: ${error.code}: ${message}`;
}

/**
 * "ClientHello incomplete: the client's stream has 517 bytes" and, when the capture lost a
 * segment, where; for datagrams, how many there were.
 */
export function incomplete(what: string, detail: string): string {
  return `${what} incomplete: ${detail}`;
}
