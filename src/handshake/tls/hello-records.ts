/**
 * The first hello of a TLS byte stream, straight from the records: what a listener peeks at.
 */
import { fail } from '../bytes.js';
import { done, type ParseResult } from '../errors.js';
import { type ClientHello, parseClientHello } from './client-hello.js';
import {
  CONTENT_ALERT,
  HANDSHAKE_CLIENT_HELLO,
  HANDSHAKE_SERVER_HELLO,
  TlsRecordReader,
  type TlsRecordReaderOptions,
} from './records.js';
import { parseServerHello, type ServerHello } from './server-hello.js';

/**
 * Parses the ClientHello at the start of a client's TLS stream (one or more records, SSLv3
 * included). need-more until the whole hello is there; `consumed` counts the stream bytes of the
 * records read. Errors inside the hello carry offsets into the hello body.
 */
export function parseClientHelloRecords(
  stream: Uint8Array,
  options?: TlsRecordReaderOptions,
): ParseResult<ClientHello> {
  const body = firstMessage(stream, HANDSHAKE_CLIENT_HELLO, 'ClientHello', options);
  if (body.status !== 'done') return body;
  const hello = parseClientHello(body.value, 'tls');
  return hello.status === 'done' ? done(hello.value, body.consumed) : hello;
}

/** Parses the ServerHello (or HelloRetryRequest) at the start of a server's TLS stream. */
export function parseServerHelloRecords(
  stream: Uint8Array,
  options?: TlsRecordReaderOptions,
): ParseResult<ServerHello> {
  const body = firstMessage(stream, HANDSHAKE_SERVER_HELLO, 'ServerHello', options);
  if (body.status !== 'done') return body;
  const hello = parseServerHello(body.value, 'tls');
  return hello.status === 'done' ? done(hello.value, body.consumed) : hello;
}

function firstMessage(
  stream: Uint8Array,
  msgType: number,
  name: string,
  options: TlsRecordReaderOptions | undefined,
): ParseResult<Uint8Array> {
  const reader = new TlsRecordReader(options);
  reader.push(stream);
  const r = reader.read();
  if (r.status !== 'done') return r;
  const item = r.value;
  if (item.kind === 'record') {
    if (item.contentType === CONTENT_ALERT) {
      const desc = item.fragment.length >= 2 ? item.fragment[1] : -1;
      return fail('alert', `alert ${desc} instead of a ${name}`, stream, 0);
    }
    return fail('not-handshake', `record type ${item.contentType} instead of a ${name}`, stream, 0);
  }
  if (item.msgType !== msgType) {
    return fail('unexpected-message', `handshake message ${item.msgType} instead of a ${name}`, stream, 5);
  }
  return done(item.body, reader.consumed);
}
