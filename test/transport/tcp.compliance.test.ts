import { type EventEmitter, once } from 'node:events';
import { createServer } from 'node:net';
import { tcp } from '../../src/transport/tcp/index.js';
import { runCompliance } from '../compliance/suite.js';
import { spawnPeer } from '../helpers/peer.js';
import { freeTcpPort, waitForTcpPort } from '../helpers/ports.js';

runCompliance('tcp', {
  driver: tcp,
  hosts: ['127.0.0.1', '::1'],
  transportProtocol: 'tcp',
  tcpSetup: true,
  refusedPort: freeTcpPort,
  // the net.Server is private: reached as the OS reaches it
  listeningSocket: (listener) => Reflect.get(listener, 'server') as EventEmitter,
  peerServers: [
    {
      name: 'node:net echo server',
      async start(host) {
        const server = createServer((s) => s.pipe(s));
        server.listen(0, host);
        await once(server, 'listening');
        return {
          port: (server.address() as { port: number }).port,
          stop: () => new Promise<void>((r) => server.close(() => r())),
          expected: { tlsVersion: null, cipher: null, alpn: null },
        };
      },
    },
    {
      name: 'socat',
      async start(host) {
        const port = await freeTcpPort(host);
        const bind = host.includes(':')
          ? `TCP6-LISTEN:${port},bind=[${host}],reuseaddr,fork`
          : `TCP4-LISTEN:${port},bind=${host},reuseaddr,fork`;
        const peer = spawnPeer('socat', [bind, 'EXEC:cat']);
        await waitForTcpPort(host, port);
        return { port, stop: () => peer.stop(), expected: { tlsVersion: null } };
      },
    },
  ],
});
