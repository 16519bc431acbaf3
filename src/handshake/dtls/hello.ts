/**
 * DTLS hellos: HelloVerifyRequest (RFC 6347 4.2.1) and the ClientHello/ServerHello of a
 * sequence of datagrams.
 */
import { fail, u16 } from '../bytes.js';
import { done, needMore, type ParseResult } from '../errors.js';
import { type ClientHello, parseClientHello } from '../tls/client-hello.js';
import { parseServerHello, type ServerHello } from '../tls/server-hello.js';
import { DtlsHandshakeReassembler, type DtlsReassemblerOptions } from './reassembler.js';

export interface HelloVerifyRequest {
  /** server_version: 0xfeff in practice, whatever version the server will choose. */
  readonly serverVersion: number;
  readonly cookie: Uint8Array;
}

/** Parses a HelloVerifyRequest body (after the 12-byte handshake header). */
export function parseHelloVerifyRequest(body: Uint8Array): ParseResult<HelloVerifyRequest> {
  if (body.length < 3) return fail('truncated', 'HelloVerifyRequest shorter than 3 bytes', body, body.length);
  const cookieLen = body[2];
  if (3 + cookieLen > body.length) return fail('truncated', 'cookie runs past the end', body, 2);
  if (3 + cookieLen < body.length)
    return fail('trailing-bytes', 'bytes after the cookie', body, 3 + cookieLen);
  return done({ serverVersion: u16(body, 0), cookie: body.subarray(3, 3 + cookieLen) }, body.length);
}

/**
 * The first ClientHello found in `datagrams` (client to server, in arrival order),
 * reassembled if fragmented; need-more when none is complete yet. To follow a whole exchange
 * (the second hello echoing the cookie), feed a DtlsHandshakeReassembler directly.
 */
export function parseDtlsClientHello(
  datagrams: Iterable<Uint8Array>,
  options?: DtlsReassemblerOptions,
): ParseResult<ClientHello> {
  const body = firstMessage(datagrams, 1, options);
  if (body.status !== 'done') return body;
  return parseClientHello(body.value, 'dtls');
}

/** The first ServerHello found in `datagrams` (server to client), reassembled if fragmented. */
export function parseDtlsServerHello(
  datagrams: Iterable<Uint8Array>,
  options?: DtlsReassemblerOptions,
): ParseResult<ServerHello> {
  const body = firstMessage(datagrams, 2, options);
  if (body.status !== 'done') return body;
  return parseServerHello(body.value, 'dtls');
}

function firstMessage(
  datagrams: Iterable<Uint8Array>,
  msgType: number,
  options: DtlsReassemblerOptions | undefined,
): ParseResult<Uint8Array> {
  const reassembler = new DtlsHandshakeReassembler(options);
  for (const d of datagrams) {
    const r = reassembler.pushDatagram(d);
    if (r.status === 'error') return r;
    if (r.status !== 'done') continue;
    for (const m of r.value) if (m.msgType === msgType) return done(m.body, m.body.length);
  }
  return needMore();
}
