/**
 * Bad input is data, not a crash: random datagrams, DTLS-shaped garbage, truncated and
 * replayed flights fed to a client, a server (with and without the cookie exchange), the
 * stateless cookie check, and an established pair, which must keep working afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtlsContext, type DtlsSession } from '../../src/transport/dtls/engine.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { Link } from './helpers/link.js';

let pki: TestPki;
let serverCtx: DtlsContext;
let serverNoCookieCtx: DtlsContext;
let clientCtx: DtlsContext;
beforeAll(() => {
  pki = makeTestPki();
  serverCtx = new DtlsContext({ role: 'server', cert: pki.ecCert, key: pki.ecKey, ALPNProtocols: ['a'] });
  serverNoCookieCtx = new DtlsContext({
    role: 'server',
    cert: pki.ecCert,
    key: pki.ecKey,
    cookieExchange: false,
  });
  clientCtx = new DtlsContext({ role: 'client', ca: pki.caCert, ALPNProtocols: ['a'] });
});
afterAll(() => pki.cleanup());

/** Random bytes, and random bytes behind a plausible DTLS record header (any type, epoch 0-2). */
const datagram = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 1500 }),
  fc
    .tuple(
      fc.constantFrom(20, 21, 22, 23),
      fc.constantFrom(0xfeff, 0xfefd, 0xfefc, 0x0100),
      fc.integer({ min: 0, max: 2 }),
      fc.uint8Array({ minLength: 6, maxLength: 6 }),
      fc.uint8Array({ minLength: 0, maxLength: 600 }),
      fc.boolean(),
    )
    .map(([type, version, epoch, seq, body, honestLength]) => {
      const b = Buffer.alloc(13 + body.length);
      b[0] = type;
      b.writeUInt16BE(version, 1);
      b.writeUInt16BE(epoch, 3);
      b.set(seq, 5);
      b.writeUInt16BE(honestLength ? body.length : (body.length * 7 + 3) & 0xffff, 11);
      b.set(body, 13);
      return new Uint8Array(b);
    }),
  // A handshake message header inside the record: ClientHello / ServerHello / Finished shapes.
  fc
    .tuple(
      fc.constantFrom(1, 2, 3, 11, 12, 14, 16, 20),
      fc.uint8Array({ minLength: 0, maxLength: 300 }),
      fc.nat(0xffff),
    )
    .map(([msgType, body, seq]) => {
      const b = Buffer.alloc(25 + body.length);
      b[0] = 22;
      b.writeUInt16BE(0xfefd, 1);
      b.writeUInt16BE(seq, 9);
      b.writeUInt16BE(12 + body.length, 11);
      b[13] = msgType;
      b.writeUIntBE(body.length, 14, 3);
      b.writeUInt16BE(seq & 3, 17);
      b.writeUIntBE(0, 19, 3);
      b.writeUIntBE(body.length, 22, 3);
      b.set(body, 25);
      return new Uint8Array(b);
    }),
);

const drain = (s: DtlsSession): void => {
  s.takeOutgoing();
  s.readAll();
  s.timeout();
};

async function establishedPair(): Promise<{ client: DtlsSession; server: DtlsSession; link: Link }> {
  const client = clientCtx.createSession({ servername: 'localhost' });
  const server = serverCtx.createSession({ peer: 'peer' });
  const link = new Link(client, server);
  await link.handshake();
  return { client, server, link };
}

describe('DTLS engine under garbage', () => {
  it('a fresh server (cookie exchange on and off) and the stateless check never crash', () => {
    fc.assert(
      fc.property(fc.array(datagram, { minLength: 1, maxLength: 8 }), (datagrams) => {
        const a = serverCtx.createSession({ peer: 'p' });
        const b = serverNoCookieCtx.createSession({ peer: 'p' });
        for (const d of datagrams) {
          expect(typeof a.receive(d)).toBe('number');
          expect(typeof b.receive(d)).toBe('number');
          const check = serverCtx.statelessCookieCheck(d, 'p');
          expect(check.ok === true || check.reply === null || Buffer.isBuffer(check.reply)).toBe(true);
          drain(a);
          drain(b);
        }
        a.destroy();
        b.destroy();
      }),
      { numRuns: 400 },
    );
  });

  it('a client waiting for the ServerHello never crashes', () => {
    fc.assert(
      fc.property(fc.array(datagram, { minLength: 1, maxLength: 8 }), (datagrams) => {
        const c = clientCtx.createSession({ servername: 'localhost' });
        c.start();
        for (const d of datagrams) {
          c.receive(d);
          drain(c);
          c.onTimeout();
        }
        c.destroy();
      }),
      { numRuns: 400 },
    );
  });

  it('an established session ignores garbage and keeps carrying data both ways', async () => {
    const { client, server } = await establishedPair();
    fc.assert(
      fc.property(fc.array(datagram, { minLength: 1, maxLength: 10 }), (datagrams) => {
        for (const d of datagrams) {
          client.receive(d);
          server.receive(d);
        }
        // Whatever the garbage made them answer goes nowhere; data still flows.
        client.takeOutgoing();
        server.takeOutgoing();
        expect(client.readAll()).toBeNull();
        expect(server.readAll()).toBeNull();
        expect(client.failed || server.failed).toBe(false);
      }),
      { numRuns: 300 },
    );
    client.write(Buffer.from('still'));
    for (const d of client.takeOutgoing()!) server.receive(d);
    expect(server.read()).toEqual(Buffer.from('still'));
    server.write(Buffer.from('alive'));
    for (const d of server.takeOutgoing()!) client.receive(d);
    expect(client.read()).toEqual(Buffer.from('alive'));
  });

  it('replayed, truncated and bit-flipped handshake and data datagrams do not break an established pair', async () => {
    const { client, server, link } = await establishedPair();
    client.write(Buffer.from('record'));
    const [dataDatagram] = client.takeOutgoing()!;
    server.receive(dataDatagram!);
    expect(server.read()).toEqual(Buffer.from('record'));
    const captured = [...link.stats.sent.c2s, ...link.stats.sent.s2c, dataDatagram!];

    fc.assert(
      fc.property(
        fc.constantFrom(...captured),
        fc.nat(2000),
        fc.nat(7),
        fc.constantFrom('replay', 'truncate', 'flip'),
        (d, pos, bit, how) => {
          let bytes = Buffer.from(d);
          if (how === 'truncate') bytes = bytes.subarray(0, pos % (bytes.length + 1));
          if (how === 'flip') bytes[pos % bytes.length]! ^= 1 << bit;
          client.receive(bytes);
          server.receive(bytes);
          client.takeOutgoing(); // e.g. a retransmitted last flight, answering a replayed Finished
          server.takeOutgoing();
          // A replayed data record is rejected by the replay window: it is never delivered twice.
          expect(server.readAll()).toBeNull();
          client.readAll();
          expect(client.failed || server.failed).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
    expect(client.isEstablished && server.isEstablished).toBe(true);
    client.write(Buffer.from('after'));
    for (const d of client.takeOutgoing()!) server.receive(d);
    expect(server.read()).toEqual(Buffer.from('after'));
  });

  it('a handshake fed a malformed message fails with an error instead of crashing', () => {
    const s = serverNoCookieCtx.createSession({ peer: 'p' });
    // A ClientHello header claiming 40 bytes of body that are not a ClientHello.
    const b = Buffer.alloc(25 + 40, 0xab);
    b[0] = 22;
    b.writeUInt16BE(0xfefd, 1);
    b.fill(0, 3, 11);
    b.writeUInt16BE(52, 11);
    b[13] = 1;
    b.writeUIntBE(40, 14, 3);
    b.writeUInt16BE(0, 17);
    b.writeUIntBE(0, 19, 3);
    b.writeUIntBE(40, 22, 3);
    s.receive(b);
    expect(s.failed).toBe(true);
    expect(s.error?.message).toBeTruthy();
    expect(s.error?.reasons.length).toBeGreaterThan(0);
    // Further input after the failure is ignored.
    expect(typeof s.receive(b)).toBe('number');
  });
});

describe('records OpenSSL 3 would answer with a fatal alert (openssl/openssl#24972, #25389)', () => {
  const suites = [
    ['ECDHE-ECDSA-AES128-GCM-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
    ['ECDHE-ECDSA-CHACHA20-POLY1305', 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'],
    // OpenSSL 3.5 (Node 24) puts CCM_8 (64-bit tags) below security level 1.
    ['ECDHE-ECDSA-AES128-CCM8@SECLEVEL=0', 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8'],
    ['ECDHE-ECDSA-AES128-CCM', 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM'],
    ['ECDHE-ECDSA-AES128-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256'],
  ] as const;

  it.each(suites)(
    '%s: short or forged protected records are discarded; tiny messages and close_notify still pass',
    async (ciphers, iana) => {
      const sc = new DtlsContext({ role: 'server', cert: pki.ecCert, key: pki.ecKey, ciphers });
      const cc = new DtlsContext({ role: 'client', ca: pki.caCert, ciphers });
      const client = cc.createSession({ servername: 'localhost' });
      const server = sc.createSession({ peer: 'p' });
      await new Link(client, server).handshake();
      expect(client.handshake().cipher).toBe(iana);
      for (const type of [20, 21, 22, 23]) {
        for (let len = 0; len <= 48; len++) {
          const d = Buffer.alloc(13 + len, 0x41);
          d[0] = type;
          d.writeUInt16BE(0xfefd, 1);
          d.writeUInt16BE(1, 3); // the current epoch: protected
          d.writeUIntBE(1000 + len, 5, 6);
          d.writeUInt16BE(len, 11);
          server.receive(d);
          client.receive(d);
        }
      }
      expect(server.failed || client.failed).toBe(false);
      // AEAD suites: refused before OpenSSL. CBC (MAC-then-encrypt): OpenSSL discards them itself.
      const refused = server.drops().invalid + client.drops().invalid;
      if (iana.includes('CBC')) expect(refused).toBe(0);
      else expect(refused).toBeGreaterThan(0);
      server.takeOutgoing();
      client.takeOutgoing();
      // The smallest genuine records (1-byte message, 2-byte alert) are not mistaken for forgeries.
      client.write(Buffer.from('!'));
      for (const d of client.takeOutgoing()!) server.receive(d);
      expect(server.read()).toEqual(Buffer.from('!'));
      server.close();
      for (const d of server.takeOutgoing()!) client.receive(d);
      expect(client.peerClosed).toBe(true);
      expect(client.failed).toBe(false);
    },
  );
});
