/**
 * TLS over TCP: the ClientHello at the start of the client's stream, the ServerHello at the
 * start of the server's (after a HelloRetryRequest, if any).
 */
import type { Endpoint, TcpDirectionSummary, TcpFlow } from '../capture/index.js';
import {
  type ClientHello,
  CONTENT_ALERT,
  CONTENT_CHANGE_CIPHER_SPEC,
  detectStream,
  HANDSHAKE_SERVER_HELLO,
  parseClientHelloRecords,
  parseServerHello,
  type ServerHello,
  TlsRecordReader,
  tlsVersionFromWire,
} from '../handshake/index.js';
import { incomplete, unparsable } from './notes.js';
import { helloFields, type InspectedConnection } from './record.js';

interface Sides {
  readonly client: Endpoint;
  readonly server: Endpoint;
  readonly clientBytes: Uint8Array;
  readonly serverBytes: Uint8Array;
  readonly clientStream: TcpDirectionSummary;
  readonly serverStream: TcpDirectionSummary;
}

/**
 * The record of a TCP flow whose client stream starts with a TLS ClientHello record, else null.
 * When the capture missed the handshake's SYNs, the flow's first sender may be the server: a
 * ClientHello at the start of the other stream then says who the client is.
 */
export function inspectTlsFlow(flow: TcpFlow): InspectedConnection | null {
  const sides = tlsSides(flow);
  if (sides === null) return null;
  const notes: string[] = [];

  let clientHello: ClientHello | null = null;
  const ch = parseClientHelloRecords(sides.clientBytes);
  if (ch.status === 'done') clientHello = ch.value;
  else if (ch.status === 'error') notes.push(unparsable('ClientHello', ch.error));
  else notes.push(incomplete('ClientHello', streamEnd('client', sides.clientBytes, sides.clientStream)));

  const sh = readServerHello(sides.serverBytes);
  if (sh.problem !== null) notes.push(sh.problem);
  else if (sh.hello === null && sides.serverBytes.length > 0) {
    notes.push(incomplete('ServerHello', streamEnd('server', sides.serverBytes, sides.serverStream)));
  }
  const serverHello = sh.hello;
  const version = serverHello ? tlsVersionFromWire(serverHello.version) : null;
  if (serverHello && version === null)
    notes.push(`ServerHello chose unknown version ${hex4(serverHello.version)}`);

  return {
    record: {
      protocol: 'tls',
      client: sides.client,
      server: sides.server,
      ...helloFields(clientHello, serverHello, version, 'tcp'),
    },
    notes,
  };
}

function tlsSides(flow: TcpFlow): Sides | null {
  if (detectStream(flow.clientToServer) === 'tls') {
    return {
      client: flow.client,
      server: flow.server,
      clientBytes: flow.clientToServer,
      serverBytes: flow.serverToClient,
      clientStream: flow.clientStream,
      serverStream: flow.serverStream,
    };
  }
  const sawSyn = flow.clientStream.sawSyn || flow.serverStream.sawSyn;
  if (!sawSyn && detectStream(flow.serverToClient) === 'tls') {
    return {
      client: flow.server,
      server: flow.client,
      clientBytes: flow.serverToClient,
      serverBytes: flow.clientToServer,
      clientStream: flow.serverStream,
      serverStream: flow.clientStream,
    };
  }
  return null;
}

/** Where a direction's reassembled stream stops: its length, and the hole that stopped it. */
function streamEnd(side: 'client' | 'server', bytes: Uint8Array, summary: TcpDirectionSummary): string {
  const base = `the ${side}'s stream has ${bytes.length} bytes`;
  if (summary.gapAt !== null) {
    return `${base}, then bytes are missing from the capture (a lost segment, or the snapshot length)`;
  }
  if (summary.capped) return `${base}, then the per-flow byte cap`;
  return `${base} (the capture ends there)`;
}

interface ServerHelloRead {
  /** The ServerHello the handshake goes on with (never a HelloRetryRequest). */
  readonly hello: ServerHello | null;
  /** Why none could be read although the stream went on, or null. */
  readonly problem: string | null;
}

/**
 * Reads the server's stream up to its ServerHello: past a HelloRetryRequest and the
 * ChangeCipherSpec that a TLS 1.3 server in middlebox compatibility mode sends right after it
 * (RFC 8446 D.4). null hello without problem: the stream ends first.
 */
function readServerHello(stream: Uint8Array): ServerHelloRead {
  const reader = new TlsRecordReader();
  reader.push(stream);
  let retried = false;
  for (;;) {
    const r = reader.read();
    if (r.status === 'need-more') return { hello: null, problem: null };
    if (r.status === 'error') return { hello: null, problem: unparsable('ServerHello record', r.error) };
    const item = r.value;
    if (item.kind === 'handshake') {
      if (item.msgType !== HANDSHAKE_SERVER_HELLO) {
        return { hello: null, problem: `handshake message ${item.msgType} instead of a ServerHello` };
      }
      const parsed = parseServerHello(item.body, 'tls');
      if (parsed.status !== 'done') {
        // A known-length body never gives need-more; only an error is left.
        return parsed.status === 'error'
          ? { hello: null, problem: unparsable('ServerHello', parsed.error) }
          : { hello: null, problem: null };
      }
      if (!parsed.value.helloRetryRequest) return { hello: parsed.value, problem: null };
      if (retried) return { hello: null, problem: 'a second HelloRetryRequest' };
      retried = true;
      continue;
    }
    // the ChangeCipherSpec after a HelloRetryRequest: the reader still reads the hello after it
    if (item.contentType === CONTENT_CHANGE_CIPHER_SPEC && retried) continue;
    if (item.contentType === CONTENT_ALERT) {
      const description = item.fragment.length >= 2 ? item.fragment[1] : -1;
      return { hello: null, problem: `the server sent alert ${description} instead of a ServerHello` };
    }
    return { hello: null, problem: `record type ${item.contentType} before the ServerHello` };
  }
}

function hex4(code: number): string {
  return `0x${code.toString(16).padStart(4, '0')}`;
}
