/**
 * DTLS over UDP: the first ClientHello among the client's datagrams and the first ServerHello
 * (not a HelloRetryRequest) among the server's, each reassembled from its fragments.
 * HelloVerifyRequests and the client's repeated hello with the cookie are passed over.
 */
import type { UdpFlow, UdpMessage } from '../capture/index.js';
import {
  type ClientHello,
  DtlsHandshakeReassembler,
  detectDatagram,
  type ParseResult,
  parseClientHello,
  parseServerHello,
  type ServerHello,
  tlsVersionFromWire,
} from '../handshake/index.js';
import { incomplete, unparsable } from './notes.js';
import { helloFields, type InspectedConnection } from './record.js';

const CLIENT_HELLO = 1;
const SERVER_HELLO = 2;

/** The record of a UDP flow whose first client datagram is a DTLS ClientHello, else null. */
export function inspectDtlsFlow(flow: UdpFlow): InspectedConnection | null {
  const fromClient = flow.messages.filter((m) => m.direction === 'client-to-server');
  const fromServer = flow.messages.filter((m) => m.direction === 'server-to-client');
  const first = fromClient[0];
  if (first === undefined || !isDtlsClientHello(first)) return null;
  const notes: string[] = [];

  const ch = firstHello(fromClient, CLIENT_HELLO, (body) => parseClientHello(body, 'dtls'));
  const clientHello = ch.hello;
  if (ch.problem !== null) notes.push(ch.problem);

  const sh = firstHello(fromServer, SERVER_HELLO, (body) => parseServerHello(body, 'dtls'));
  const serverHello = sh.hello;
  if (sh.problem !== null) notes.push(sh.problem);
  const version = serverHello ? tlsVersionFromWire(serverHello.version) : null;

  return {
    record: {
      protocol: 'dtls',
      client: flow.client,
      server: flow.server,
      ...helloFields(clientHello, serverHello, version, 'dtls'),
    },
    notes,
  };
}

/**
 * detectDatagram's answer; or, for a datagram cut by the capture's snapshot length (whose record
 * length then runs past what was kept, which detectDatagram, made for whole datagrams, refuses),
 * the same test on the headers alone: handshake record, DTLS version, epoch 0, ClientHello.
 */
function isDtlsClientHello(message: UdpMessage): boolean {
  const d = message.data;
  if (detectDatagram(d) === 'dtls') return true;
  if (!message.truncated || d.length < 14 || d[0] !== 0x16) return false;
  const version = (d[1]! << 8) | d[2]!;
  const knownVersion = version === 0xfeff || version === 0xfefd || version === 0x0100;
  return knownVersion && d[3] === 0 && d[4] === 0 && d[13] === CLIENT_HELLO;
}

interface HelloRead<T> {
  readonly hello: T | null;
  readonly problem: string | null;
}

/**
 * The first message of `msgType` in `datagrams` that parses (HelloRetryRequests skipped).
 * Records of later epochs (encrypted) are passed over by the reassembler; a datagram it
 * refuses only makes the note when no hello is found at all.
 */
function firstHello<T extends ClientHello | ServerHello>(
  datagrams: readonly UdpMessage[],
  msgType: number,
  parse: (body: Uint8Array) => ParseResult<T>,
): HelloRead<T> {
  const what = msgType === CLIENT_HELLO ? 'ClientHello' : 'ServerHello';
  if (datagrams.length === 0) return { hello: null, problem: null };
  const reassembler = new DtlsHandshakeReassembler();
  let problem: string | null = null;
  for (const datagram of datagrams) {
    const r = reassembler.pushDatagram(datagram.data);
    if (r.status === 'error') {
      problem ??= datagram.truncated
        ? incomplete(what, "a datagram was cut by the capture's snapshot length")
        : unparsable(`a ${what} datagram`, r.error);
      continue;
    }
    if (r.status !== 'done') continue;
    for (const message of r.value) {
      if (message.msgType !== msgType) continue;
      const parsed = parse(message.body);
      if (parsed.status === 'error') {
        problem ??= unparsable(what, parsed.error);
        continue;
      }
      if (parsed.status !== 'done') continue;
      if ('helloRetryRequest' in parsed.value && parsed.value.helloRetryRequest) continue;
      return { hello: parsed.value, problem: null };
    }
  }
  if (problem === null && reassembler.bufferedBytes > 0) {
    problem = incomplete(what, `some of its fragments are not in the capture`);
  }
  return { hello: null, problem };
}
