/**
 * The compliance suite for the DTLS driver on 127.0.0.1 and ::1: our client and our listener,
 * then our client against openssl s_server and gnutls-serv, and openssl s_client and gnutls-cli
 * against our listener; the model must equal what the real peer reports.
 */
import { type DtlsListenOptions, dtls } from '../../src/transport/dtls/index.js';
import { runCompliance } from '../compliance/suite.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { spawnPeer } from '../helpers/peer.js';
import { freeUdpPort } from '../helpers/ports.js';
import { EC_CERT, gnutlsDescription, gnutlsServ, sClient, sServer } from './dtls-peers.js';

runCompliance('dtls', {
  driver: dtls,
  hosts: ['127.0.0.1', '::1'],
  transportProtocol: 'udp',
  tcpSetup: false,
  handshake: {
    tls: true,
    tlsVersion: 'DTLSv1.2',
    alpn: 'b',
    cipher: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  },
  listenOptions: () => ({
    cert: EC_CERT_PEM,
    key: EC_KEY_PEM,
    ALPNProtocols: ['b', 'a'],
    initialRetransmitMs: 200,
  }),
  connectOptions: () => ({ ca: EC_CERT_PEM, ALPNProtocols: ['a', 'b'], initialRetransmitMs: 200 }),
  refusedPort: freeUdpPort,
  clientHello: (hook) => {
    const options: Partial<DtlsListenOptions> = { clientHello: () => hook() };
    return options;
  },
  peerServers: [
    {
      name: 'openssl s_server -dtls1_2',
      async start(host) {
        // the cipher forced, so the expectation is known before the handshake (the interop
        // tests compare with what s_server prints)
        const s = await sServer(host, ['-dtls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
        return {
          port: s.port,
          stop: s.stop,
          expected: { tlsVersion: 'DTLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', alpn: '' },
        };
      },
    },
    {
      name: 'gnutls-serv --udp (DTLS 1.2)',
      async start(host) {
        const s = await gnutlsServ(host, 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305');
        return {
          port: s.port,
          stop: s.stop,
          expected: {
            tlsVersion: 'DTLSv1.2',
            cipher: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
            alpn: '',
          },
        };
      },
    },
  ],
  peerClients: [
    {
      name: 'openssl s_client -dtls1_2 -servername -alpn',
      async run(host, port) {
        const { report, peer } = await sClient(host, port, [
          '-dtls1_2',
          '-servername',
          'localhost',
          '-alpn',
          'a,b',
        ]);
        await peer.stop();
        return { ...report, sni: 'localhost' };
      },
    },
    {
      name: 'gnutls-cli --udp (DTLS 1.2)',
      async run(host, port) {
        const peer = spawnPeer('gnutls-cli', [
          '--udp',
          '-p',
          String(port),
          host,
          '--sni-hostname',
          'localhost',
          '--verify-hostname',
          'localhost',
          '--alpn',
          'a',
          '--x509cafile',
          EC_CERT,
          '--priority',
          'NORMAL:-VERS-ALL:+VERS-DTLS1.2',
        ]);
        try {
          await peer.waitFor(/Status: The certificate is trusted/);
          const [, alpn] = await peer.waitFor(/Application protocol: (\S+)/);
          const d = gnutlsDescription(peer.output());
          return { tlsVersion: d?.tlsVersion, alpn, sni: 'localhost' };
        } finally {
          await peer.stop();
        }
      },
    },
  ],
});
