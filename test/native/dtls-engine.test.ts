/**
 * Engine client <-> engine server through an in-memory link: versions, verification, ALPN,
 * SNI, app data, close_notify, cookies, the ClientHello pause, key logs, loss, reordering
 * and small MTUs. No sockets.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DtlsCertificate,
  DtlsContext,
  type DtlsContextOptions,
  DtlsError,
  type DtlsSession,
  type DtlsSessionOptions,
  DtlsStatus,
} from '../../src/transport/dtls/engine.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { Link, type LinkOptions } from './helpers/link.js';

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.cleanup());

interface PairOptions {
  server?: Partial<DtlsContextOptions>;
  client?: Partial<DtlsContextOptions>;
  clientSession?: DtlsSessionOptions;
  serverSession?: DtlsSessionOptions;
  link?: LinkOptions;
}

function pair(o: PairOptions = {}): { client: DtlsSession; server: DtlsSession; link: Link } {
  const serverCtx = new DtlsContext({ role: 'server', cert: pki.rsaCert, key: pki.rsaKey, ...o.server });
  const clientCtx = new DtlsContext({ role: 'client', ca: pki.caCert, ...o.client });
  const client = clientCtx.createSession({ servername: 'localhost', ...o.clientSession });
  const server = serverCtx.createSession({ peer: '127.0.0.1:50000', ...o.serverSession });
  return { client, server, link: new Link(client, server, o.link) };
}

/** Application records one way, through the link. */
function send(from: DtlsSession, to: DtlsSession, messages: readonly Buffer[]): Buffer[] {
  for (const m of messages) from.write(m);
  for (const d of from.takeOutgoing() ?? []) to.receive(d);
  return to.readAll() ?? [];
}

const der = (pem: string): Buffer => new X509Certificate(pem).raw;

describe('DTLS engine <-> engine', () => {
  it('completes a DTLSv1.2 handshake with verification, ALPN and SNI, and reports what was negotiated', async () => {
    const { client, server, link } = pair({
      server: { ALPNProtocols: ['b', 'a'] },
      client: { ALPNProtocols: ['a', 'b'] },
    });
    expect(client.timeout()).toBe(-1);
    client.start();
    expect(client.timeout()).toBeGreaterThan(0); // ClientHello sent: retransmission timer armed
    await link.handshake();

    const c = client.handshake();
    const s = server.handshake();
    expect(c.version).toBe('DTLSv1.2');
    expect(s.version).toBe('DTLSv1.2');
    expect(c.cipher).toMatch(/^TLS_ECDHE_RSA_WITH_/);
    expect(s.cipher).toBe(c.cipher);
    expect(c.alpn).toBe('b'); // server preference
    expect(s.alpn).toBe('b');
    expect(s.sni).toBe('localhost');
    expect(c.sni).toBe('localhost');
    expect(c.verifyError).toBeNull();
    expect(client.peerCertificates()).toEqual([der(pki.rsaCert)]);
    expect(server.localCertificate()).toEqual(der(pki.rsaCert));
    expect(server.peerCertificates()).toEqual([]);
    expect(server.clientHello()).toMatchObject({
      sni: 'localhost',
      alpnOffers: ['a', 'b'],
      legacyVersion: 0xfefd,
    });
    expect(client.timeout()).toBe(-1);
    expect(server.timeout()).toBe(-1);
    // The cookie round trip happened: the server's first answer was a HelloVerifyRequest.
    const first = link.stats.sent.s2c[0]!;
    expect(first[0]).toBe(22);
    expect(first[13]).toBe(3); // hello_verify_request
  });

  it('carries application data both ways, one message per record, and closes with close_notify', async () => {
    const { client, server, link } = pair();
    await link.handshake();
    expect(() => client.write(Buffer.alloc(16385))).toThrow(DtlsError);
    const big = Buffer.alloc(1200, 7);
    const msgs = [Buffer.from('hello'), big, Buffer.from('third')];
    expect(send(client, server, msgs)).toEqual(msgs);
    expect(send(server, client, [Buffer.from('pong')])).toEqual([Buffer.from('pong')]);
    expect(client.maxPayload).toBeGreaterThan(1100);
    expect(client.maxPayload).toBeLessThan(1200);

    // One record per datagram: 3 writes -> 3 datagrams.
    client.write(Buffer.from('a'));
    client.write(Buffer.from('b'));
    expect(client.takeOutgoing()).toHaveLength(2);

    const status = client.close();
    expect(status & DtlsStatus.CLOSED).toBeTruthy();
    expect(status & DtlsStatus.OUTGOING).toBeTruthy();
    for (const d of client.takeOutgoing() ?? []) server.receive(d);
    expect(server.peerClosed).toBe(true);
    expect(server.failed).toBe(false);
    expect(() => client.write(Buffer.from('late'))).toThrow(/closed/);
  });

  it('keeps delivering past the 8 MB receive queue bound once records are read (read() and readAll())', async () => {
    const { client, server, link } = pair();
    await link.handshake();
    const record = Buffer.alloc(1200, 3);
    let delivered = 0;
    for (let round = 0; round < 120; round++) {
      for (let i = 0; i < 64; i++) client.write(record);
      for (const d of client.takeOutgoing()!) server.receive(d);
      if (round % 2) delivered += server.readAll()?.length ?? 0;
      else for (let m = server.read(); m; m = server.read()) delivered++;
    }
    expect(delivered).toBe(120 * 64); // 9.2 MB in all
    expect(server.drops().records).toBe(0);
  });

  it('negotiates DTLSv1 when both ends allow it at SECLEVEL=0', async () => {
    const legacy = { minVersion: 'DTLSv1', maxVersion: 'DTLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;
    const { client, server, link } = pair({ server: legacy, client: legacy });
    await link.handshake();
    expect(client.handshake().version).toBe('DTLSv1');
    expect(server.handshake().version).toBe('DTLSv1');
    expect(client.handshake().cipher).toMatch(/_CBC_SHA$/);
    expect(send(client, server, [Buffer.from('v1')])).toEqual([Buffer.from('v1')]);
  });

  it('refuses DTLSv1 by default (OpenSSL 3 security level)', async () => {
    const { link } = pair({ client: { minVersion: 'DTLSv1', maxVersion: 'DTLSv1' } });
    await expect(link.handshake()).rejects.toThrow(/handshake failed/);
  });

  it('fails verification against the wrong CA with a clear error on both ends', async () => {
    const { client, server, link } = pair({ client: { ca: pki.otherCaCert } });
    await expect(link.handshake()).rejects.toThrow(/certificate verify failed/);
    const err = client.error!;
    expect(err).toBeInstanceOf(DtlsError);
    expect(err.code).toBe('ERR_DTLS_CERT_VERIFY');
    expect(err.message).toMatch(/certificate verify failed: unable to get local issuer certificate/);
    expect(err.verifyError).toBe('unable to get local issuer certificate');
    expect(err.reasons.join('\n')).toMatch(/error:0A000086/);
    expect(client.status & DtlsStatus.FAILED).toBeTruthy();
    // The client's fatal alert reaches the server.
    link.step();
    expect(server.failed).toBe(true);
    expect(server.error!.message).toMatch(/unknown ca/i);
    expect(() => client.write(Buffer.from('x'))).toThrow(DtlsError);
    expect(client.timeout()).toBe(-1);
  });

  it('checks the server name against the certificate', async () => {
    const { client, link } = pair({ clientSession: { servername: 'example.com' } });
    await expect(link.handshake()).rejects.toThrow(/certificate verify failed/);
    expect(client.error!.verifyError).toMatch(/hostname mismatch/);
  });

  it('checks an IP literal without sending it as SNI', async () => {
    const { client, server, link } = pair({ clientSession: { servername: '127.0.0.1' } });
    await link.handshake();
    expect(server.handshake().sni).toBeNull();
    expect(client.handshake().verifyError).toBeNull();
  });

  it('connects without verification when asked, and still reports the chain and why it did not verify', async () => {
    const { client, link } = pair({ client: { ca: pki.otherCaCert, rejectUnauthorized: false } });
    await link.handshake();
    expect(client.handshake().verifyError).toBe('unable to get local issuer certificate');
    expect(client.peerCertificates()).toHaveLength(1);
  });

  it('verifies a client certificate when the server asks for one', async () => {
    const { client, server, link } = pair({
      server: { requestCert: true, ca: pki.caCert },
      client: { cert: pki.ecCert, key: pki.ecKey },
    });
    await link.handshake();
    expect(server.peerCertificates()).toEqual([der(pki.ecCert)]);
    expect(client.localCertificate()).toEqual(der(pki.ecCert));

    const noCert = pair({ server: { requestCert: true, ca: pki.caCert } });
    await expect(noCert.link.handshake()).rejects.toThrow(/certificate/);
  });

  it('answers a cookie-less ClientHello statelessly and accepts the one that brings the cookie back', async () => {
    const serverCtx = new DtlsContext({ role: 'server', cert: pki.ecCert, key: pki.ecKey });
    const clientCtx = new DtlsContext({ role: 'client', ca: pki.caCert });
    const client = clientCtx.createSession({ servername: 'localhost' });
    const peer = '198.51.100.7:4433';

    const [hello] = client.start() & DtlsStatus.OUTGOING ? client.takeOutgoing()! : [];
    const first = serverCtx.statelessCookieCheck(hello!, peer);
    expect(first.ok).toBe(false);
    if (first.ok || !first.reply) throw new Error('expected a HelloVerifyRequest');
    expect(first.reply[13]).toBe(3);

    client.receive(first.reply);
    const [helloWithCookie] = client.takeOutgoing()!;
    expect(serverCtx.statelessCookieCheck(helloWithCookie!, peer)).toEqual({ ok: true });
    // The cookie is bound to the peer address: from elsewhere it is answered with a new one.
    const elsewhere = serverCtx.statelessCookieCheck(helloWithCookie!, '198.51.100.7:4434');
    expect(elsewhere.ok === false && elsewhere.reply !== null).toBe(true);
    // Garbage and non-ClientHellos are dropped: no reply at all.
    expect(serverCtx.statelessCookieCheck(Buffer.from('hello'), peer)).toEqual({ ok: false, reply: null });
    expect(serverCtx.statelessCookieCheck(Buffer.alloc(0), peer)).toEqual({ ok: false, reply: null });

    // Only now is a session made; it goes on from the same datagram.
    const server = serverCtx.createSession({ peer });
    const status = server.receive(helloWithCookie!);
    expect(status & DtlsStatus.LISTENING).toBe(0);
    await new Link(client, server).handshake();
    expect(client.handshake().cipher).toMatch(/^TLS_ECDHE_ECDSA_WITH_/);

    // Rotation: a cookie stays valid for one rotation, not two.
    serverCtx.rotateCookieSecret();
    expect(serverCtx.statelessCookieCheck(helloWithCookie!, peer)).toEqual({ ok: true });
    serverCtx.rotateCookieSecret();
    expect(serverCtx.statelessCookieCheck(helloWithCookie!, peer).ok).toBe(false);
  });

  it('skips the cookie round trip when cookieExchange is off', async () => {
    const { server, link } = pair({ server: { cookieExchange: false } });
    expect(server.status & DtlsStatus.LISTENING).toBe(0);
    await link.handshake();
    const first = link.stats.sent.s2c[0]!;
    expect(first[13]).toBe(2); // server_hello
  });

  it('pauses on the ClientHello until JavaScript picks the certificate and ALPN', async () => {
    const serverCtx = new DtlsContext({ role: 'server', pauseOnClientHello: true, ALPNProtocols: ['x'] });
    const clientCtx = new DtlsContext({ role: 'client', ca: pki.caCert, ALPNProtocols: ['h2', 'coap'] });
    const client = clientCtx.createSession({ servername: 'x' });
    const server = serverCtx.createSession({ peer: 'p' });
    const link = new Link(client, server);
    await expect(link.handshake()).rejects.toThrow(/paused/);
    expect(server.clientHelloPending).toBe(true);
    const hello = server.clientHello()!;
    expect(hello.sni).toBe('x');
    expect(hello.alpnOffers).toEqual(['h2', 'coap']);
    expect(hello.cipherSuites).toContain(0xc02b); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256

    // Datagrams arriving meanwhile are kept for later, not lost.
    server.receive(link.stats.sent.c2s.at(-1)!);
    const cert = DtlsCertificate.fromPem(pki.ecCert, pki.ecKey);
    server.setCertificate(cert);
    server.setALPNProtocols(['coap']);
    const status = server.resume();
    expect(status & DtlsStatus.CLIENT_HELLO).toBe(0);
    expect(status & DtlsStatus.OUTGOING).toBeTruthy();
    await link.handshake();
    expect(client.handshake().alpn).toBe('coap');
    expect(server.handshake().sni).toBe('x');
    expect(client.peerCertificates()).toEqual([der(pki.ecCert)]);
    expect(server.localCertificate()).toEqual(der(pki.ecCert));
    cert.destroy();
    cert.destroy();
  });

  it('takes the certificate as PEM too', async () => {
    const serverCtx = new DtlsContext({ role: 'server', pauseOnClientHello: true });
    const client = new DtlsContext({ role: 'client', ca: pki.caCert }).createSession({
      servername: 'localhost',
    });
    const server = serverCtx.createSession({ peer: 'p' });
    const link = new Link(client, server);
    await expect(link.handshake()).rejects.toThrow(/paused/);
    expect(() => server.setCertificate({ cert: pki.rsaCert, key: pki.ecKey })).toThrow(/does not match/);
    server.setCertificate({ cert: [pki.rsaCert], key: pki.rsaKey });
    server.resume();
    await link.handshake();
    expect(client.peerCertificates()).toEqual([der(pki.rsaCert)]);
  });

  it("gives up after OpenSSL's retransmission limit with a timeout error", async () => {
    const ctx = new DtlsContext({
      role: 'client',
      ca: pki.caCert,
      initialRetransmitMs: 1,
      maxRetransmitMs: 20,
    });
    const client = ctx.createSession({ servername: 'localhost' });
    client.start();
    let sent = 0;
    const deadline = Date.now() + 15_000;
    while (!client.failed && Date.now() < deadline) {
      sent += client.takeOutgoing()?.length ?? 0; // into the void
      const t = client.timeout();
      expect(t).toBeGreaterThanOrEqual(0);
      await new Promise((r) => setTimeout(r, t));
      client.onTimeout();
    }
    expect(client.error?.code).toBe('ERR_DTLS_TIMEOUT');
    expect(client.error?.message).toMatch(/handshake timed out/);
    expect(sent).toBeGreaterThan(5); // the first ClientHello and its retransmissions
    expect(client.timeout()).toBe(-1);
  });

  it('reports an empty ALPN when none was agreed, and null before the handshake', async () => {
    const { client, server, link } = pair({
      server: { ALPNProtocols: ['x'] },
      client: { ALPNProtocols: ['y'] },
    });
    expect(client.handshake().alpn).toBeNull();
    await link.handshake();
    expect(client.handshake().alpn).toBe('');
    expect(server.handshake().alpn).toBe('');
  });

  it('hands out NSS key log lines on both ends', async () => {
    const { client, server, link } = pair({ server: { keylog: true }, client: { keylog: true } });
    await link.handshake();
    const c = client.takeKeylog();
    const s = server.takeKeylog();
    expect(c).toHaveLength(1);
    expect(c![0]).toMatch(/^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}$/);
    expect(s).toEqual(c);
    expect(client.takeKeylog()).toBeNull();
  });

  it('fragments flights to a small MTU', async () => {
    const { client, server, link } = pair({ server: { mtu: 300 }, client: { mtu: 300 } });
    await link.handshake();
    const sizes = [...link.stats.sent.c2s, ...link.stats.sent.s2c].map((d) => d.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(300);
    // The RSA certificate alone is ~900 bytes: its flight takes several datagrams.
    expect(link.stats.sent.s2c.length).toBeGreaterThanOrEqual(5);
    expect(client.maxPayload).toBeLessThan(300);
    expect(send(client, server, [Buffer.alloc(250, 1)])).toEqual([Buffer.alloc(250, 1)]);
    expect(() => client.setMtu(100)).toThrow(/out of range/);
  });

  it('completes through a lossy, reordering link, retransmitting on the timer', async () => {
    const { client, server, link } = pair({
      server: { mtu: 400, initialRetransmitMs: 30 },
      client: { mtu: 400, initialRetransmitMs: 30 },
      // Every 3rd datagram each way is lost the first time round; batches arrive reversed.
      link: { drop: (_dir, i) => i % 3 === 1 && i < 12, reorder: true },
    });
    await link.handshake();
    expect(link.stats.timeouts).toBeGreaterThan(0);
    expect(client.handshake().version).toBe('DTLSv1.2');
    expect(send(server, client, [Buffer.from('after loss')])).toEqual([Buffer.from('after loss')]);
  });

  it('survives losing the final flight: the client retransmits, the established server answers', async () => {
    let serverDatagrams = 0;
    const { client, server, link } = pair({
      server: { initialRetransmitMs: 30 },
      client: { initialRetransmitMs: 30 },
      // Lose the server's CCS+Finished flight the first time (the 4th server datagram onwards, once).
      link: {
        drop: (dir, _i, d) =>
          dir === 's2c' &&
          (d[0] === 20 || (d[0] === 22 && d[3] === 0 && d[4] === 1)) &&
          serverDatagrams++ < 2,
      },
    });
    await link.handshake();
    expect(server.isEstablished && client.isEstablished).toBe(true);
    expect(link.stats.timeouts).toBeGreaterThan(0);
  });

  it('is safe to destroy twice, and refuses calls afterwards', async () => {
    const { client, server, link } = pair();
    await link.handshake();
    server.destroy();
    server.destroy();
    expect(server.destroyed).toBe(true);
    expect(server.status & DtlsStatus.CLOSED).toBeTruthy();
    expect(() => server.receive(Buffer.from('x'))).toThrow(/destroyed/);
    expect(server.timeout()).toBe(-1);
    expect(server.read()).toBeNull();
    expect(server.readAll()).toBeNull();
    expect(server.takeOutgoing()).toBeNull();
    client.destroy();
  });

  it('keeps sessions working after their context is destroyed', async () => {
    const serverCtx = new DtlsContext({ role: 'server', cert: pki.rsaCert, key: pki.rsaKey });
    const clientCtx = new DtlsContext({ role: 'client', ca: pki.caCert });
    const client = clientCtx.createSession({ servername: 'localhost' });
    const server = serverCtx.createSession({ peer: 'p' });
    serverCtx.destroy();
    serverCtx.destroy();
    clientCtx[Symbol.dispose]();
    await new Link(client, server).handshake();
    expect(send(client, server, [Buffer.from('still here')])).toEqual([Buffer.from('still here')]);
    expect(() => serverCtx.createSession()).toThrow(/destroyed/);
  });

  it('rejects bad configuration with typed errors', () => {
    expect(() => new DtlsContext({ role: 'server', cert: 'nope', key: 'nope' })).toThrow(DtlsError);
    expect(() => new DtlsContext({ role: 'server', cert: pki.rsaCert, key: pki.ecKey })).toThrow(
      /does not match/,
    );
    expect(() => new DtlsContext({ role: 'client', ciphers: 'NOT-A-CIPHER' })).toThrow(/cipher/);
    expect(() => new DtlsContext({ role: 'client', ALPNProtocols: [''] })).toThrow(/ALPN/);
    expect(() => new DtlsContext({ role: 'client', mtu: 10 })).toThrow(/mtu/);
    expect(() => DtlsCertificate.fromPem(pki.rsaCert, 'garbage')).toThrow(/key/);
    try {
      new DtlsContext({ role: 'server', cert: 'nope', key: 'nope' });
    } catch (err) {
      expect((err as DtlsError).code).toBe('ERR_DTLS_CONTEXT');
    }
  });

  it('writes before the handshake completes are refused', () => {
    const { client } = pair();
    client.start();
    expect(() => client.write(Buffer.from('early'))).toThrow(/handshake is not complete/);
  });
});
