/**
 * Interop on loopback with ngtcp2 0.12 + GnuTLS (`gtlsclient`, `gtlsserver`): each TLS 1.3
 * cipher suite forced, and a HelloRetryRequest forced by the group; the model must equal what
 * ngtcp2 prints.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { type Client, ConnectionState } from '../../src/connection/index.js';
import { quic } from '../../src/transport/quic/index.js';
import type { QuicSession } from '../../src/transport/quic/session.js';
import type { QuicStream } from '../../src/transport/quic/stream.js';
import { EC_CERT, EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import type { PeerProcess } from '../helpers/peer.js';
import {
  cipherPriority,
  FORCED_CIPHERS,
  HRR_GROUPS,
  ngtcp2Report,
  runGtlsClient,
  startGtlsServer,
} from './quic-peers.js';

const CASES = [
  ...FORCED_CIPHERS.map((c) => ({
    name: c.gnutls,
    args: [`--ciphers=${cipherPriority(c.gnutls)}`],
    iana: c.iana,
  })),
  { name: 'HelloRetryRequest (P-256 only)', args: [`--groups=${HRR_GROUPS}`], iana: null },
];

const peers: PeerProcess[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
});

describe('our QUIC client against gtlsserver', () => {
  for (const host of ['127.0.0.1', '::1']) {
    for (const c of CASES) {
      it(`${host}, ${c.name}`, async () => {
        const server = await startGtlsServer(host, c.args);
        peers.push(server.peer);
        const out = await quic.connect({
          host,
          port: server.port,
          servername: 'localhost',
          ALPNProtocols: ['h3'],
          ca: EC_CERT_PEM,
          connectTimeout: 5000,
        });
        const reported = await ngtcp2Report(server.peer);
        const conn = out.conn;
        expect(conn.tlsVersion).toBe('QUICv1');
        expect(reported.version).toBe(1);
        expect(conn.cipher).toBe(reported.cipher);
        if (c.iana) expect(conn.cipher).toBe(c.iana);
        expect(conn.alpn).toBe(reported.alpn);
        expect(conn.alpn).toBe('h3');
        expect(conn.sni).toBe('localhost');
        expect(conn.alpnOffers).toEqual(['h3']);
        expect(conn.certificateList.map((x) => x.fingerprint256)).toEqual([EC_CERT.fingerprint256]);
        expect(conn.timestampTlsSetup).toBeGreaterThanOrEqual(conn.timestampStart!);
        expect(conn.timestampTcpSetup).toBeNull();
        await out.close();
        expect(conn.state).toBe(ConnectionState.CLOSED);
        expect(conn.error).toBeNull();
      });
    }
  }
});

describe('gtlsclient against our QUIC listener', () => {
  for (const host of ['127.0.0.1', '::1']) {
    for (const c of CASES) {
      it(`${host}, ${c.name}`, async () => {
        await using listener = await quic.listen({ host, cert: EC_CERT_PEM, key: EC_KEY_PEM });
        const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
        const client = runGtlsClient(host, listener.address[1], c.args);
        peers.push(client);
        const reported = await ngtcp2Report(client);
        const [inbound] = await accepted;
        const conn = inbound.conn;
        expect(conn.tlsVersion).toBe('QUICv1');
        expect(conn.cipher).toBe(reported.cipher);
        if (c.iana) expect(conn.cipher).toBe(c.iana);
        expect(conn.alpn).toBe(reported.alpn);
        expect(conn.sni).toBe('localhost');
        expect(conn.alpnOffers).toContain('h3');
        expect(conn.certificateList).toEqual([]);
        expect(conn.mitmcert?.fingerprint256).toBe(EC_CERT.fingerprint256);
        expect(conn.timestampTlsSetup).toBeGreaterThanOrEqual(conn.timestampStart);
        // gtlsclient, done, closes with H3_NO_ERROR: an ordinary end on an h3 connection
        if (!inbound.closed) await once(inbound, 'close');
        expect(conn.error).toBeNull();
        await client.stop();
      });
    }
  }
});

describe('gtlsclient NAT rebinding against our QUIC listener', () => {
  it('follows the client to its new port (ngtcp2 --nat-rebinding): the session goes on', async () => {
    await using listener = await quic.listen({ host: '127.0.0.1', cert: EC_CERT_PEM, key: EC_KEY_PEM });
    const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
    // the request stream opens after the rebinding, so the client speaks from its new port
    const client = runGtlsClient('127.0.0.1', listener.address[1], [
      '--change-local-addr=200ms',
      '--nat-rebinding',
      '--delay-stream=500ms',
    ]);
    peers.push(client);
    const [inbound] = await accepted;
    const before = inbound.conn.peername[1];
    const migrated = once(inbound, 'migrated') as Promise<[readonly [string, number]]>;
    const requested = once(inbound, 'stream') as Promise<[QuicStream]>;
    const [, newPort] = await client.waitFor(/Local address is now \[127\.0\.0\.1\]:(\d+)/);
    const [peername] = await migrated;
    expect(peername).toEqual(['127.0.0.1', Number(newPort)]);
    expect(inbound.conn.peername[1]).not.toBe(before);
    // the request arrived on the new path
    const [request] = await requested;
    expect(request.id).toBe(0);
    expect(inbound.closed).toBe(false);
    expect(inbound.conn.error).toBeNull();
  });
});

describe('gtlsclient through Retry', () => {
  it('answers our Retry (address validation) and completes the handshake', async () => {
    await using listener = await quic.listen({
      host: '127.0.0.1',
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      limits: { retryThreshold: 0 },
    });
    const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
    const client = runGtlsClient('127.0.0.1', listener.address[1]);
    peers.push(client);
    const reported = await ngtcp2Report(client);
    const [inbound] = await accepted;
    expect(listener.stats.retries).toBe(1);
    expect(inbound.conn.cipher).toBe(reported.cipher);
    expect(inbound.conn.alpn).toBe(reported.alpn);
  });
});
