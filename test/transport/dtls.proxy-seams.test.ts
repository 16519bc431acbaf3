/**
 * The DTLS driver's seams the intercepting proxy uses: a ClientHello hook that answers with this
 * session's ALPN or refuses with an alert, and `upgradeDtls` over a connected UDP session.
 */
import { describe, expect, it } from 'vitest';
import type { Client } from '../../src/connection/index.js';
import { detectDatagram } from '../../src/handshake/detect.js';
import { dtls, upgradeDtls } from '../../src/transport/dtls/index.js';
import type { DtlsLayerSession } from '../../src/transport/dtls/session.js';
import { ConnectError, type SessionError } from '../../src/transport/errors.js';
import type { DatagramSession } from '../../src/transport/types.js';
import { connectUdp } from '../../src/transport/udp/connect.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';

const HOST = '127.0.0.1';

describe('the DTLS ClientHello hook answers for this session', () => {
  it("with its own ALPN list, replacing the listener's", async () => {
    await using listener = await dtls.listen({
      host: HOST,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['a', 'b'],
      clientHello: () => ({ cert: EC_CERT_PEM, key: EC_KEY_PEM, ALPNProtocols: ['b'] }),
    });
    await using session = await dtls.connect({
      host: HOST,
      port: listener.address[1],
      rejectUnauthorized: false,
      ALPNProtocols: ['a', 'b'],
    });
    expect(session.conn.alpn).toBe('b');
  });

  it('or refuses: the client fails at once on the alert, the session with the given code and message', async () => {
    await using listener = await dtls.listen({
      host: HOST,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      clientHello: () => ({ refuse: { code: 'ERR_NOPE', message: 'not you', alert: 40 } }),
    });
    const failed = new Promise<[DtlsLayerSession<Client>, SessionError]>((r) =>
      listener.once('sessionError', (s, e) => r([s, e])),
    );
    const started = performance.now();
    const err = await dtls
      .connect({ host: HOST, port: listener.address[1], rejectUnauthorized: false, connectTimeout: 5000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).conn.error).toMatch(/handshake failure/);
    expect(performance.now() - started).toBeLessThan(2000);
    const [session, error] = await failed;
    expect(error.code).toBe('ERR_NOPE');
    expect(session.conn.error).toBe('not you');
  });
});

describe("the DTLS listener's passthrough door", () => {
  it('makes the flow of a first (cookieless) ClientHello it accepts a raw session that gets that hello first', async () => {
    const asked: (string | null)[] = [];
    await using listener = await dtls.listen({
      host: HOST,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      passthrough: (hello) => {
        asked.push(hello.sni);
        return hello.sni === 'pass.localhost';
      },
    });
    const events: string[] = [];
    listener.on('passthrough', () => events.push('passthrough'));
    const first = new Promise<Uint8Array>((resolve) =>
      listener.once('session', (s: DatagramSession<Client>) => {
        events.push('session');
        expect(s.conn).toMatchObject({ tls: true, sni: 'pass.localhost', alpnOffers: ['coap'] });
        s.datagrams.once('datagram', resolve);
      }),
    );
    const dial = dtls
      .connect({
        host: HOST,
        port: listener.address[1],
        servername: 'pass.localhost',
        ALPNProtocols: ['coap'],
        rejectUnauthorized: false,
        connectTimeout: 300,
      })
      .catch((e: unknown) => e);
    const hello = await first;
    expect(detectDatagram(hello)).toBe('dtls');
    expect(hello[13]).toBe(1); // a ClientHello
    expect(events).toEqual(['passthrough', 'session']);
    expect(listener.stats.passthroughFlows).toBe(1);
    // nobody answers it here: the client gives up
    expect(await dial).toBeInstanceOf(ConnectError);
    // one that the door refuses goes through the cookie exchange and the handshake as usual
    await using session = await dtls.connect({
      host: HOST,
      port: listener.address[1],
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    expect(session.conn.tlsVersion).toBe('DTLSv1.2');
    expect(asked).toEqual(['pass.localhost', 'localhost']);
  });
});

describe('upgradeDtls', () => {
  it('runs the handshake over a connected UDP session, keeping its addresses and start', async () => {
    await using listener = await dtls.listen({
      host: HOST,
      cert: EC_CERT_PEM,
      key: EC_KEY_PEM,
      ALPNProtocols: ['coap'],
    });
    listener.on('session', (s) => s.datagrams.on('datagram', (r: Uint8Array) => s.datagrams.send(r)));
    const udp = await connectUdp({ host: HOST, port: listener.address[1] });
    const { timestampStart, sockname } = udp.conn;
    const session = await upgradeDtls(udp, {
      host: HOST,
      port: listener.address[1],
      servername: 'localhost',
      ca: EC_CERT_PEM,
      ALPNProtocols: ['coap'],
    });
    expect(session.conn).toBe(udp.conn);
    expect(session.conn).toMatchObject({
      timestampStart,
      sockname,
      tls: true,
      sni: 'localhost',
      alpn: 'coap',
      tlsVersion: 'DTLSv1.2',
    });
    const echoed = new Promise<Uint8Array>((r) => session.datagrams.once('datagram', r));
    session.datagrams.send(Buffer.from('record'));
    expect(Buffer.from(await echoed).toString()).toBe('record');
    await session.close();
    expect(udp.closed).toBe(true);
  });

  it('fails as connectDtls does (verification), closing the UDP session', async () => {
    await using listener = await dtls.listen({ host: HOST, cert: EC_CERT_PEM, key: EC_KEY_PEM });
    const udp = await connectUdp({ host: HOST, port: listener.address[1] });
    const err = await upgradeDtls(udp, {
      host: HOST,
      port: listener.address[1],
      servername: 'localhost',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).conn.error).toMatch(/^Certificate verify failed/);
    await udp.whenClosed();
  });
});
