/**
 * Sans-IO: reads the server's side of a passed-through TLS connection until its ServerHello
 * (past a HelloRetryRequest), to fill the models without terminating anything.
 */
import type { ParseResult } from '../../handshake/errors.js';
import { HANDSHAKE_SERVER_HELLO, TlsRecordReader } from '../../handshake/tls/records.js';
import { parseServerHello, type ServerHello } from '../../handshake/tls/server-hello.js';

export type ObserveResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'server-hello'; readonly hello: ServerHello }
  | { readonly kind: 'error'; readonly reason: string };

const NEED_MORE: ObserveResult = { kind: 'need-more' };

/** Stop looking after this many bytes without a ServerHello. */
const MAX_OBSERVED = 256 * 1024;

export class ServerHelloObserver {
  readonly #reader = new TlsRecordReader();
  #seen = 0;
  #result: ObserveResult = NEED_MORE;

  get result(): ObserveResult {
    return this.#result;
  }

  push(chunk: Uint8Array): ObserveResult {
    if (this.#result.kind !== 'need-more') return this.#result;
    this.#seen += chunk.length;
    // the reader may keep a view of the chunk: give it a copy, the chunk goes on to the client
    this.#reader.push(Uint8Array.prototype.slice.call(chunk));
    for (;;) {
      const r = this.#reader.read();
      if (r.status === 'need-more') {
        if (this.#seen > MAX_OBSERVED) this.#result = { kind: 'error', reason: 'no ServerHello' };
        return this.#result;
      }
      if (r.status === 'error') {
        this.#result = { kind: 'error', reason: r.error.message };
        return this.#result;
      }
      const item = r.value;
      // the record reader also reads the plaintext ServerHello after TLS 1.3's compatibility CCS
      if (item.kind !== 'handshake' || item.msgType !== HANDSHAKE_SERVER_HELLO) continue;
      const body = item.body;
      const parsed: ParseResult<ServerHello> = parseServerHello(body, 'tls');
      if (parsed.status !== 'done') {
        this.#result = {
          kind: 'error',
          reason: parsed.status === 'error' ? parsed.error.message : 'truncated ServerHello',
        };
        return this.#result;
      }
      if (parsed.value.helloRetryRequest) continue;
      this.#result = { kind: 'server-hello', hello: parsed.value };
      return this.#result;
    }
  }
}
