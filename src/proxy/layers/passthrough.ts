/**
 * The relay of a passed-through datagram flow (DTLS or QUIC that `--ignore-hosts`,
 * `--allow-hosts` or a `tlsClienthello` hook ignored): ciphertext both ways, untouched, one
 * datagram for one, no `udp*` hooks (mitmproxy's ignored flows).
 */
import type { Client } from '../../connection/index.js';
import type { DatagramSession } from '../../transport/types.js';
import type { UdpSocketSession } from '../../transport/udp/connect.js';
import type { ProxyContext } from '../context.js';
import { untilLegEnds } from './legs.js';

/**
 * Relays until either leg ends: `held` (the client's datagrams that came before) goes first;
 * `observe` sees the server's datagrams, for the models, until it returns true (it has learnt
 * what it can), and costs nothing after.
 */
export async function relayUntouched(
  ctx: ProxyContext,
  client: DatagramSession<Client>,
  server: UdpSocketSession,
  held: Iterable<Uint8Array>,
  observe: (datagram: Uint8Array) => boolean,
): Promise<void> {
  const toClient = (d: Uint8Array): void => client.datagrams.send(d);
  const observing = (d: Uint8Array): void => {
    if (observe(d)) {
      server.datagrams.off('datagram', observing);
      server.datagrams.on('datagram', toClient);
    }
    toClient(d);
  };
  server.datagrams.on('datagram', observing);
  const toServer = (d: Uint8Array): void => server.transmit(d);
  for (const d of held) toServer(d);
  client.datagrams.on('datagram', toServer);
  await untilLegEnds(ctx, client, server);
}
