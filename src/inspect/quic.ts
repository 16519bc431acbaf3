/**
 * QUIC: both directions' Initial packets decrypted with the keys of the client's original
 * DCID (InitialTracker follows a Retry to its new DCID), the CRYPTO streams reassembled, and
 * the first ClientHello and the ServerHello that follows any HelloRetryRequest parsed.
 */
import type { UdpFlow } from '../capture/index.js';
import {
  type ClientHello,
  detectDatagram,
  parseClientHello,
  parseServerHello,
  type ServerHello,
} from '../handshake/index.js';
import { InitialTracker, quicVersionFromWire } from '../handshake/quic/index.js';
import { incomplete, unparsable } from './notes.js';
import { helloFields, type InspectedConnection } from './record.js';

// A handshake message from the tracker: type (1), length (3), body.
const HANDSHAKE_HEADER = 4;

/** The record of a UDP flow whose first client datagram is a QUIC long header packet, else null. */
export function inspectQuicFlow(flow: UdpFlow): InspectedConnection | null {
  const first = flow.clientToServer[0];
  if (first === undefined || detectDatagram(first) !== 'quic') return null;
  const notes: string[] = [];
  const tracker = new InitialTracker();
  // The first packet of each side that could not be used: it may be why a hello is missing.
  const problems: { client: string | null; server: string | null } = { client: null, server: null };
  for (const message of flow.messages) {
    const sender = message.direction === 'client-to-server' ? 'client' : 'server';
    const r = tracker.receive(message.data, sender);
    // The tracker leaves its state as it was before a packet it cannot use: go on with the rest.
    if (r.status === 'error') {
      problems[sender] ??= message.truncated
        ? `an Initial from the ${sender} was cut by the capture's snapshot length`
        : unparsable(`an Initial from the ${sender}`, r.error);
    }
  }
  const handshake = tracker.handshake;

  let clientHello: ClientHello | null = null;
  if (handshake.clientHello) {
    const parsed = parseClientHello(handshake.clientHello.subarray(HANDSHAKE_HEADER), 'tls');
    if (parsed.status === 'done') clientHello = parsed.value;
    else if (parsed.status === 'error') notes.push(unparsable('ClientHello', parsed.error));
  } else {
    notes.push(
      problems.client ?? incomplete('ClientHello', 'not all of its CRYPTO frames are in the capture'),
    );
  }

  let serverHello: ServerHello | null = null;
  if (handshake.serverHello) {
    const parsed = parseServerHello(handshake.serverHello.subarray(HANDSHAKE_HEADER), 'tls');
    if (parsed.status === 'done') serverHello = parsed.value;
    else if (parsed.status === 'error') notes.push(unparsable('ServerHello', parsed.error));
  } else if (problems.server !== null) {
    notes.push(problems.server);
  }
  // The tracker's version is that of the server's Initials once it saw one: the negotiated one,
  // which may differ from the client's first (compatible version negotiation, RFC 9368).
  const version = handshake.version === undefined ? null : quicVersionFromWire(handshake.version);

  return {
    record: {
      protocol: 'quic',
      client: flow.client,
      server: flow.server,
      ...helloFields(clientHello, serverHello, version, 'quic'),
    },
    notes,
  };
}
