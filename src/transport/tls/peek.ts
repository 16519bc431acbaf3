/**
 * Sans-IO: what a listener reads before it hands a connection to the TLS engine. Bytes go in
 * as they arrive (however the ClientHello is split across TCP segments); out comes "need
 * more", "plain" (not TLS, with detection on), the parsed ClientHello, or an error.
 */
import { detectStream } from '../../handshake/detect.js';
import type { ClientHello } from '../../handshake/tls/client-hello.js';
import { parseClientHelloRecords } from '../../handshake/tls/hello-records.js';

export type PeekResult =
  | { readonly kind: 'need-more' }
  /** Not TLS (detection on): hand `bytes` to a plain TCP session. */
  | { readonly kind: 'plain'; readonly bytes: Buffer }
  /** The whole ClientHello; `bytes` is everything read so far (to give to the engine). */
  | { readonly kind: 'hello'; readonly hello: ClientHello; readonly bytes: Buffer }
  | { readonly kind: 'error'; readonly reason: string; readonly bytes: Buffer };

/** The largest ClientHello read: 64 KiB of message plus record headers. */
export const MAX_CLIENT_HELLO_BYTES = 65536 + 16 * 5 + 5;

const NEED_MORE: PeekResult = { kind: 'need-more' };

export class ClientHelloPeek {
  #chunks: Buffer[] = [];
  #length = 0;
  #done = false;

  constructor(private readonly detect: boolean) {}

  /** Bytes read so far. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): PeekResult {
    if (this.#done) throw new Error('ClientHelloPeek: already decided');
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const bytes = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#length);
    if (this.#chunks.length > 1) this.#chunks = [bytes];
    const looks = detectStream(bytes);
    if (looks === 'need-more') return NEED_MORE;
    if (looks === 'other') {
      this.#done = true;
      return this.detect
        ? { kind: 'plain', bytes }
        : { kind: 'error', reason: 'not a TLS handshake record', bytes };
    }
    const parsed = parseClientHelloRecords(bytes);
    if (parsed.status === 'need-more') {
      if (this.#length <= MAX_CLIENT_HELLO_BYTES) return NEED_MORE;
      this.#done = true;
      return { kind: 'error', reason: 'ClientHello too long', bytes };
    }
    this.#done = true;
    if (parsed.status === 'error') return { kind: 'error', reason: parsed.error.message, bytes };
    return { kind: 'hello', hello: parsed.value, bytes };
  }

  /** The bytes read so far, for an error message or to hand on. */
  bytes(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length);
  }
}
