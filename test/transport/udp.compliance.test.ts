import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { udp } from '../../src/transport/udp/index.js';
import { runCompliance } from '../compliance/suite.js';
import { spawnPeer } from '../helpers/peer.js';
import { freeUdpPort } from '../helpers/ports.js';

const family = (host: string): 'udp4' | 'udp6' => (host.includes(':') ? 'udp6' : 'udp4');
const NO_HANDSHAKE = { tlsVersion: null, cipher: null, alpn: null, sni: null } as const;

runCompliance('udp', {
  driver: udp,
  hosts: ['127.0.0.1', '::1'],
  transportProtocol: 'udp',
  tcpSetup: false,
  // UDP has no close on the wire: each end notices the other is gone by its idle timeout
  listenOptions: () => ({ idleTimeout: 300 }),
  connectOptions: () => ({ idleTimeout: 300 }),
  refusedPort: freeUdpPort,
  // a bare UDP connect cannot be refused; a probe gets the ICMP port-unreachable as ECONNREFUSED
  refusedConnectOptions: () => ({ probe: Buffer.from('probe') }),
  // a probe the listener never answers holds the connect in flight
  holdDial: () => ({ probe: Buffer.from('hold'), connectTimeout: 10_000 }),
  announce: (session) => {
    if ('datagrams' in session) session.datagrams.send(Buffer.from('hello'));
  },
  peerServers: [
    {
      name: 'node:dgram echo server',
      async start(host) {
        const server = createSocket(family(host));
        server.on('message', (m, r) => server.send(m, r.port, r.address));
        server.bind(0, host);
        await once(server, 'listening');
        return {
          port: server.address().port,
          stop: () => new Promise<void>((r) => server.close(() => r())),
          expected: NO_HANDSHAKE,
        };
      },
      // the connect resolves only once the echo answers
      connectOptions: () => ({ probe: Buffer.from('ping') }),
    },
    {
      name: 'socat echo server',
      async start(host) {
        const port = await freeUdpPort(host);
        const bind = host.includes(':')
          ? `UDP6-LISTEN:${port},bind=[${host}],reuseaddr,fork`
          : `UDP4-LISTEN:${port},bind=${host},reuseaddr,fork`;
        const peer = spawnPeer('socat', ['-d', '-d', '-T', '5', bind, 'PIPE']);
        await peer.waitFor(/listening on/);
        return { port, stop: () => peer.stop(), expected: NO_HANDSHAKE };
      },
      connectOptions: () => ({ probe: Buffer.from('ping') }),
    },
  ],
  peerClients: [
    {
      name: 'node:dgram client',
      async run(host, port) {
        const client = createSocket(family(host));
        await new Promise<void>((resolve, reject) =>
          client.send(Buffer.from('hello from node:dgram'), port, host, (e) => (e ? reject(e) : resolve())),
        );
        await new Promise<void>((r) => client.close(() => r()));
        return NO_HANDSHAKE;
      },
    },
    {
      name: 'socat client',
      async run(host, port) {
        const target = host.includes(':') ? `UDP6:[${host}]:${port}` : `UDP4:${host}:${port}`;
        const peer = spawnPeer('socat', ['-d', '-d', '-d', '-', target]);
        try {
          peer.child.stdin?.write('hello from socat\n');
          await peer.waitFor(/transferred \d+ bytes from 0 to/);
        } finally {
          await peer.stop();
        }
        return NO_HANDSHAKE;
      },
    },
  ],
});
