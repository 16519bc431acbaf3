/**
 * Sans-IO: reads the server's side of a passed-through TLS connection until its ServerHello
 * (past a HelloRetryRequest), to fill the models without terminating anything.
 */
import type { ParseResult } from '../../handshake/errors.js';
import { CONTENT_HANDSHAKE, HANDSHAKE_SERVER_HELLO, TlsRecordReader } from '../../handshake/tls/records.js';
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
      let body: Uint8Array | null = null;
      if (item.kind === 'handshake') {
        if (item.msgType === HANDSHAKE_SERVER_HELLO) body = item.body;
      } else if (
        // TLS 1.3 after a HelloRetryRequest: the middlebox-compatibility ChangeCipherSpec made
        // the reader call later records opaque, but the second ServerHello is still plaintext
        item.contentType === CONTENT_HANDSHAKE &&
        item.fragment.length >= 4 &&
        item.fragment[0] === HANDSHAKE_SERVER_HELLO
      ) {
        const len = (item.fragment[1]! << 16) | (item.fragment[2]! << 8) | item.fragment[3]!;
        if (4 + len <= item.fragment.length) body = item.fragment.subarray(4, 4 + len);
      }
      if (body === null) continue;
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
