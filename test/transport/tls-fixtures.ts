import { readFileSync } from 'node:fs';

/** Bytes of a hex fixture in test/fixtures/tls-interop/ (see its README for provenance). */
export function handshakeFixture(name: string): Buffer {
  const text = readFileSync(new URL(`../fixtures/tls-interop/${name}`, import.meta.url), 'utf8');
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}
