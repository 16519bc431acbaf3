import { type QuicListener, type QuicListenOptions, quic } from '../../src/transport/quic/index.js';
import { runCompliance } from '../compliance/suite.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { freeUdpPort } from '../helpers/ports.js';

runCompliance('quic', {
  driver: quic,
  hosts: ['127.0.0.1', '::1'],
  transportProtocol: 'udp',
  tcpSetup: false,
  handshake: { tls: true, tlsVersion: 'QUICv1', cipher: 'TLS_AES_128_GCM_SHA256', alpn: 'wirelayer' },
  listenOptions: () => ({ cert: EC_CERT_PEM, key: EC_KEY_PEM }),
  // the fixture certificate names 127.0.0.1 and ::1: verification stays on
  connectOptions: () => ({ ca: EC_CERT_PEM }),
  refusedPort: freeUdpPort,
  listeningSocket: (listener) => (listener as QuicListener).endpoint.socket,
  clientHello: (hook) => {
    const options: Partial<QuicListenOptions> = { clientHello: () => hook() };
    return options;
  },
});
