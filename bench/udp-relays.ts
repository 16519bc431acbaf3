/**
 * The relays the UDP bench compares, each run in its own process (forked by `bench/udp.ts`):
 *
 *   node udp-relays.js wirelayer ECHO_PORT   our UdpRelay (src/proxy)
 *   node udp-relays.js node ECHO_PORT        the baseline: a minimal node:dgram relay
 *
 * Each sends {port} (where clients send) to the parent once listening, and exits on disconnect.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { UdpRelay } from '../src/proxy/udp-relay.js';

/**
 * The baseline: a UDP relay written plainly, as a user of `node:dgram` would: one Map of upstream
 * sockets keyed by `${address}:${port}`.
 */
export function startNodeRelay(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<Socket> {
  const server = createSocket('udp4');
  const upstreams = new Map<string, Socket>();
  server.on('message', (message: Buffer, rinfo: RemoteInfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let upstream = upstreams.get(key);
    if (!upstream) {
      upstream = createSocket('udp4');
      upstream.on('message', (reply) => server.send(reply, rinfo.port, rinfo.address));
      upstreams.set(key, upstream);
    }
    upstream.send(message, upstreamPort, upstreamHost);
  });
  return new Promise((resolve) => server.bind(0, '127.0.0.1', () => resolve(server)));
}

async function main(kind: string, echoPort: number): Promise<void> {
  let port: number;
  let stop: () => void;
  if (kind === 'wirelayer') {
    const relay = await UdpRelay.start({
      upstream: { host: '127.0.0.1', port: echoPort },
      idleTimeout: 300_000,
      maxFlows: 100_000,
    });
    port = relay.address[1];
    stop = () => void relay.close();
  } else if (kind === 'node') {
    const server = await startNodeRelay(echoPort);
    port = server.address().port;
    stop = () => process.exit(0);
  } else {
    throw new Error(`unknown relay ${kind}`);
  }
  process.on('disconnect', stop);
  process.send?.({ port });
}

if (process.argv[2] !== undefined) {
  main(process.argv[2], Number(process.argv[3])).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
