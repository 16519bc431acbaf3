/**
 * The TLS driver's seams the intercepting proxy uses: a ClientHello hook that answers with this
 * connection's own settings (ALPN, versions) or refuses with an alert, passthrough over an
 * upstream already connected, and `upgradeTls` over a connected TCP session.
 */
import { once } from 'node:events';
import { type ConnectionOptions, createServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { ConnectError, type SessionError } from '../../src/transport/errors.js';
import { connectTcp } from '../../src/transport/tcp/connect.js';
import { receivedAlert } from '../../src/transport/tls/errors.js';
import { type TlsSession, tls, upgradeTls } from '../../src/transport/tls/index.js';
import { EC_CERT_PEM, EC_KEY_PEM, RSA_CERT, RSA_CERT_PEM, RSA_KEY_PEM } from '../helpers/certs.js';

const HOST = '127.0.0.1';

async function nodeTlsServer(): Promise<{ close(): void; port: number }> {
  const server = createServer({ cert: RSA_CERT_PEM, key: RSA_KEY_PEM, ALPNProtocols: ['h2'] }, (s) => {
    s.on('data', (d: Buffer) => s.write(`echo:${d}`));
    s.on('error', () => undefined);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return { close: () => server.close(), port: (server.address() as { port: number }).port };
}

function client(port: number, options: ConnectionOptions = {}): TLSSocket {
  const socket = tlsConnect({ host: HOST, port, rejectUnauthorized: false, ...options });
  socket.on('error', () => undefined);
  return socket;
}

describe('the ClientHello hook answers for this connection', () => {
  it("with its own ALPN list and versions, replacing the listener's; an empty list selects none", async () => {
    const answers = [
      { ALPNProtocols: ['b'], maxVersion: 'TLSv1.2' as const },
      { ALPNProtocols: [] as string[] },
    ];
    await using listener = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      ALPNProtocols: ['a', 'b'],
      clientHello: () => ({ cert: EC_CERT_PEM, key: EC_KEY_PEM, ...answers.shift()! }),
    });
    const first = client(listener.address[1], { ALPNProtocols: ['a', 'b'] });
    await once(first, 'secureConnect');
    expect(first.alpnProtocol).toBe('b');
    expect(first.getProtocol()).toBe('TLSv1.2');
    const second = client(listener.address[1], { ALPNProtocols: ['a', 'b'] });
    await once(second, 'secureConnect');
    expect(second.alpnProtocol).toBe(false);
    expect(second.getProtocol()).toBe('TLSv1.3');
    first.destroy();
    second.destroy();
  });

  it('or refuses: the client gets the fatal alert, the session fails with the given code and message', async () => {
    await using listener = await tls.listen({
      host: HOST,
      cert: RSA_CERT_PEM,
      key: RSA_KEY_PEM,
      clientHello: () => ({ refuse: { code: 'ERR_UPSTREAM_DOWN', message: 'upstream is down', alert: 40 } }),
    });
    const failed = once(listener, 'sessionError') as Promise<[TlsSession<Client>, SessionError]>;
    const socket = client(listener.address[1]);
    const [err] = (await once(socket, 'error').catch((e: unknown) => [e])) as [Error & { code?: string }];
    expect(receivedAlert(err.code)).toBe('HANDSHAKE_FAILURE');
    const [session, error] = await failed;
    expect(error.code).toBe('ERR_UPSTREAM_DOWN');
    expect(session.conn.error).toBe('upstream is down');
    expect(listener.stats.sessionErrors).toEqual({ ERR_UPSTREAM_DOWN: 1 });
  });

  it('or passes through over an upstream already connected, whose model gets the ServerHello fields', async () => {
    const upstream = await nodeTlsServer();
    const tcp = await connectTcp({ host: HOST, port: upstream.port });
    await using listener = await tls.listen({
      host: HOST,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      clientHello: () => ({ passthrough: { host: HOST, port: upstream.port, upstream: tcp } }),
    });
    const seen = once(listener, 'passthrough');
    const socket = client(listener.address[1], { maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] });
    await once(socket, 'secureConnect');
    expect(socket.getPeerX509Certificate()!.fingerprint256).toBe(RSA_CERT.fingerprint256);
    const [, server] = await seen;
    expect(server).toBe(tcp.conn);
    expect(tcp.conn).toMatchObject({ tlsVersion: 'TLSv1.2', alpn: 'h2', tls: true });
    socket.write('via');
    expect(String((await once(socket, 'data'))[0])).toBe('echo:via');
    socket.destroy();
    upstream.close();
  });
});

describe('upgradeTls', () => {
  it('runs the handshake over a connected TCP session, keeping its TCP fields and start', async () => {
    const upstream = await nodeTlsServer();
    const tcp = await connectTcp({ host: HOST, port: upstream.port });
    const { timestampStart, timestampTcpSetup, sockname } = tcp.conn;
    const session = await upgradeTls(tcp, {
      host: HOST,
      port: upstream.port,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
      ca: RSA_CERT_PEM,
    });
    expect(session.conn).toBe(tcp.conn);
    expect(session.conn).toMatchObject({
      timestampStart,
      timestampTcpSetup,
      sockname,
      tls: true,
      sni: 'localhost',
      alpn: 'h2',
      tlsVersion: 'TLSv1.3',
    });
    expect(session.conn.timestampTlsSetup).toBeGreaterThanOrEqual(timestampTcpSetup!);
    session.stream.write('up');
    expect(String((await once(session.stream, 'data'))[0])).toBe('echo:up');
    await session.close();
    upstream.close();
  });

  it('fails as connectTls does (verification), destroying the TCP session', async () => {
    const upstream = await nodeTlsServer();
    const tcp = await connectTcp({ host: HOST, port: upstream.port });
    const err = await upgradeTls(tcp, { host: HOST, port: upstream.port, servername: 'localhost' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).conn.error).toMatch(
      /^Certificate verify failed: self[- ]signed certificate/,
    );
    await tcp.whenClosed();
    expect(tcp.stream.destroyed).toBe(true);
    upstream.close();
  });
});
