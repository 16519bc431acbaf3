import { type EventEmitter, once } from 'node:events';
import { Socket as NetSocket } from 'node:net';
import { connect as nodeTlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import type { SessionError } from '../../src/transport/errors.js';
import { type TlsListenOptions, type TlsSession, tls } from '../../src/transport/tls/index.js';
import { runCompliance } from '../compliance/suite.js';
import { EC_CERT_PEM, EC_KEY_PEM, fixturePath, RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';
import { freeTcpPort } from '../helpers/ports.js';
import { runOpensslClient, startOpensslServer } from './tls-peers.js';

runCompliance('tls', {
  driver: tls,
  hosts: ['127.0.0.1', '::1'],
  transportProtocol: 'tcp',
  tcpSetup: true,
  handshake: { tls: true, tlsVersion: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', alpn: '' },
  listenOptions: () => ({ cert: EC_CERT_PEM, key: EC_KEY_PEM }),
  connectOptions: () => ({ ca: EC_CERT_PEM }),
  refusedPort: freeTcpPort,
  handshakeFailure: () => ({
    listen: { minVersion: 'TLSv1.3' },
    connect: { ca: EC_CERT_PEM, maxVersion: 'TLSv1.2' },
  }),
  // the net.Server is private: reached as the OS reaches it
  listeningSocket: (listener) => Reflect.get(listener, 'server') as EventEmitter,
  clientHello: (hook) => {
    const options: Partial<TlsListenOptions> = { clientHello: () => hook() };
    return options;
  },
  peerServers: [
    {
      name: 'openssl s_server (TLSv1.2, ECDSA, ChaCha20)',
      async start(host) {
        const server = await startOpensslServer(host, [
          '-cert',
          fixturePath('ec-cert.pem'),
          '-key',
          fixturePath('ec-key.pem'),
          '-tls1_2',
          '-cipher',
          'ECDHE-ECDSA-CHACHA20-POLY1305',
        ]);
        return {
          port: server.port,
          stop: () => server.stop(),
          expected: {
            tlsVersion: 'TLSv1.2',
            cipher: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
            alpn: '',
          },
        };
      },
      connectOptions: () => ({ ca: EC_CERT_PEM }),
    },
  ],
  peerClients: [
    {
      name: 'openssl s_client (TLSv1.3)',
      async run(host, port) {
        const r = await runOpensslClient(host, port, ['-tls1_3', '-CAfile', fixturePath('rsa-cert.pem')]);
        return { tlsVersion: r.tlsVersion as 'TLSv1.3', cipher: r.cipher, alpn: '' };
      },
      listenOptions: () => ({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM }),
    },
  ],
});

describe('tls listener: a client that resets while the ClientHello hook runs', () => {
  it('fails that session with the OS code (sessionError), not silently', async () => {
    const raw = new NetSocket();
    let inbound: TlsSession<Client> | null = null;
    await using listener = await tls.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      // the reset comes while the hook still decides; the hook returns once the session is gone
      clientHello: async () => {
        raw.resetAndDestroy();
        await inbound?.whenClosed();
      },
    });
    listener.once('start', (session: TlsSession<Client>) => {
      inbound = session;
    });
    const started = once(listener, 'start') as Promise<[TlsSession<Client>]>;
    const errors: SessionError[] = [];
    listener.on('sessionError', (_session: TlsSession<Client>, error: SessionError) => errors.push(error));
    raw.connect(listener.address[1], '127.0.0.1');
    raw.on('error', () => undefined);
    const client = nodeTlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false });
    client.on('error', () => undefined);
    const [session] = await started;
    await session.whenClosed();
    expect(errors.map((e) => e.code)).toEqual(['ECONNRESET']);
    expect(session.conn.error).toMatch(/^Connection reset by peer/);
    expect(listener.stats.sessionErrors).toEqual({ ECONNRESET: 1 });
  });
});
