/**
 * Behind a load balancer, on the wire: a real client (ngtcp2's `gtlsclient`) against listeners
 * issuing QUIC-LB IDs, every ID it was given decoded back to the server ID (and its reset
 * token checked against the shared key); then two instances sharing secrets behind an
 * in-process balancer (a relay that can switch instance): a Retry token of one accepted by
 * the other, and a Stateless Reset from the other ending the client's connection.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client, Server } from '../../src/connection/index.js';
import {
  QuicListener,
  type QuicListenOptions,
  type QuicSession,
  quic,
} from '../../src/transport/quic/index.js';
import {
  type QuicLbConfig,
  QuicLbDecoder,
  type QuicLbRoutableConfig,
  quicLbCids,
} from '../../src/transport/quic/lb/index.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';
import { DatagramRelay } from './dtls-relay.js';
import { gtlsclientDumping, ngtcp2ServerIds } from './quic-peers.js';

const HOST = '127.0.0.1';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(options: QuicListenOptions): Promise<QuicListener> {
  const listener = await QuicListener.listen({ host: HOST, cert: EC_CERT_PEM, key: EC_KEY_PEM, ...options });
  cleanups.push(() => listener.close());
  return listener;
}

const tokenOf = (key: Buffer, cid: Buffer): string =>
  createHmac('sha256', key).update(cid).digest().subarray(0, 16).toString('hex');

const KEY = Buffer.from('8f95f09245765f80256934e50c66207f', 'hex');
const SID = Buffer.from('ed793a51d49b8f5fab65', 'hex');
/**
 * `omitted`: quiche 0.18 encodes transport parameters into 128 octets; after a Retry (two more
 * of our IDs in them), 20-octet IDs and ngtcp2's 18-octet first DCID leave no room for the
 * first ID's reset token: the listener accepts without it (counted), the spares keep theirs.
 */
const CASES: { name: string; config: QuicLbConfig; retry?: boolean; spares: boolean; omitted?: boolean }[] = [
  { name: 'plaintext', config: { configId: 1, serverId: SID.subarray(0, 4), nonceLength: 6 }, spares: false },
  {
    name: 'single-pass (server ID 8 + nonce 8)',
    config: { configId: 2, serverId: SID.subarray(0, 8), nonceLength: 8, key: KEY },
    spares: true,
  },
  {
    name: 'four-pass, odd (server ID 3 + nonce 4: 8-octet IDs)',
    config: { configId: 0, serverId: SID.subarray(0, 3), nonceLength: 4, key: KEY },
    spares: true,
  },
  {
    name: 'four-pass, server ID longer than the nonce, after a Retry',
    config: { configId: 6, serverId: SID.subarray(0, 6), nonceLength: 5, key: KEY },
    retry: true,
    spares: true,
  },
  {
    name: 'four-pass, 20-octet IDs, after a Retry',
    config: { configId: 5, serverId: SID, nonceLength: 9, key: KEY },
    retry: true,
    spares: true,
    omitted: true,
  },
];

describe('QUIC-LB IDs a real client was given (gtlsclient)', () => {
  for (const c of CASES) {
    it(`${c.name}: every ID decodes to the server ID, every reset token is HMAC(key, ID)`, async () => {
      const resetKey = randomBytes(32);
      const cids = quicLbCids(c.config);
      const listener = await listen({
        cids,
        secrets: { statelessResetKey: resetKey },
        ...(c.retry ? { limits: { retryThreshold: 0 } } : {}),
      });
      const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
      const client = gtlsclientDumping(HOST, listener.address[1]);
      cleanups.push(() => client.stop());
      const [session] = await accepted;
      const issued = session.sourceCids.map((id) => Buffer.from(id).toString('hex'));
      expect(issued.length).toBe(c.spares ? listener.limits.maxCidsPerSession : 1);
      // the client has seen the handshake and every spare ID the server issued
      await client.waitFor(/Negotiated cipher suite/);
      await waitUntil(
        () => ngtcp2ServerIds(client.output()).spares.length === issued.length - 1,
        'the spare IDs at the client',
      );
      const view = ngtcp2ServerIds(client.output());

      const decoder = new QuicLbDecoder(c.config as QuicLbRoutableConfig);
      const serverId = Buffer.from((c.config as QuicLbRoutableConfig).serverId).toString('hex');
      const onTheWire = [...view.longScids, ...view.spares.map((s) => s.cid)];
      expect(onTheWire.length).toBe(issued.length);
      expect(new Set(onTheWire)).toEqual(new Set(issued));
      for (const id of onTheWire) {
        expect(id.length / 2).toBe(cids.length);
        expect(decoder.serverId(Buffer.from(id, 'hex'))?.toString('hex'), id).toBe(serverId);
      }
      if (c.retry) {
        expect(listener.stats.retries).toBe(1);
        expect(view.retryScid).toBe(issued[0]);
      } else expect(view.retryScid).toBeNull();
      // the first ID's token in the transport parameters, the spares' in their frames
      expect(listener.stats.resetTokensOmitted).toBe(c.omitted ? 1 : 0);
      expect(view.paramToken).toBe(c.omitted ? null : tokenOf(resetKey, Buffer.from(issued[0]!, 'hex')));
      for (const spare of view.spares)
        expect(spare.token).toBe(tokenOf(resetKey, Buffer.from(spare.cid, 'hex')));
      expect(view.disableActiveMigration).toBe('0');
    });
  }

  it('unroutable: one ID per connection, 0b111 first bits and its length, disable_active_migration', async () => {
    const resetKey = randomBytes(32);
    const listener = await listen({
      cids: quicLbCids({ unroutable: true }),
      secrets: { statelessResetKey: resetKey },
    });
    const accepted = once(listener, 'session') as Promise<[QuicSession<Client>]>;
    const client = gtlsclientDumping(HOST, listener.address[1]);
    cleanups.push(() => client.stop());
    const [session] = await accepted;
    expect(session.sourceCids.length).toBe(1);
    await client.waitFor(/Negotiated cipher suite/);
    const view = ngtcp2ServerIds(client.output());
    expect(view.spares).toEqual([]);
    expect([...view.longScids]).toEqual([Buffer.from(session.sourceCids[0]!).toString('hex')]);
    const id = Buffer.from([...view.longScids][0]!, 'hex');
    expect(id.length).toBe(16);
    expect(id[0]! >> 5).toBe(0b111);
    expect(id[0]! & 0x1f).toBe(15);
    expect(view.disableActiveMigration).toBe('1');
    expect(view.paramToken).toBe(tokenOf(resetKey, id));
  });
});

/** A balancer in front of two instances: the client dials the relay; `target` says which instance gets its datagrams. */
async function balancer(first: QuicListener): Promise<DatagramRelay> {
  const relay = await DatagramRelay.start(HOST, first.address[1]);
  cleanups.push(() => relay.stop());
  return relay;
}

describe('two instances sharing secrets behind a balancer', () => {
  const secrets = { statelessResetKey: randomBytes(32), tokenKey: randomBytes(32) };

  it('a Retry token minted by one instance is accepted by the other, which completes the handshake', async () => {
    // both require a valid token: B accepts the client only if A's token verifies with the shared key
    const a = await listen({ secrets, limits: { retryThreshold: 0 } });
    const b = await listen({ secrets, limits: { retryThreshold: 0 } });
    const relay = await balancer(a);
    // the first datagram back (A's Retry) moves the balancer to B, before the client answers it
    relay.policy = (direction, index) => {
      if (direction === 's2c' && index === 0) relay.target.port = b.address[1];
      return 'pass';
    };
    const onB = once(b, 'session') as Promise<[QuicSession<Client>]>;
    const out = (await quic.connect({
      host: HOST,
      port: relay.port,
      ca: EC_CERT_PEM,
      connectTimeout: 5000,
    })) as QuicSession<Server>;
    cleanups.push(() => out.close());
    const [inbound] = await onB;
    expect(a.stats.retries).toBe(1);
    expect(a.stats.initialDecrypts).toBe(0);
    expect(a.sessions.size).toBe(0);
    expect(b.stats.retries).toBe(0);
    expect(b.stats.badTokens).toBe(0);
    expect(b.sessions.size).toBe(1);
    // B answered the client's Initial, whose token A minted, with the Retry's ID as its first
    expect(relay.seen.c2s.length).toBeGreaterThanOrEqual(2);
    inbound.stream.pipe(inbound.stream);
    out.stream.write('through B');
    const [echo] = (await once(out.stream, 'data')) as [Buffer];
    expect(echo.toString()).toBe('through B');
  });

  it('the other instance resets a connection it never held: the client closes at once, not at its idle timeout', async () => {
    const a = await listen({ secrets });
    const b = await listen({ secrets });
    const relay = await balancer(a);
    const onA = once(a, 'session') as Promise<[QuicSession<Client>]>;
    const idleTimeout = 20_000;
    const out = (await quic.connect({
      host: HOST,
      port: relay.port,
      ca: EC_CERT_PEM,
      idleTimeout,
      connectTimeout: 5000,
    })) as QuicSession<Server>;
    cleanups.push(() => out.close());
    const streamError = once(out.stream, 'error') as Promise<[Error]>;
    const [inbound] = await onA;
    inbound.stream.pipe(inbound.stream);
    out.stream.write('via A');
    const [echo] = (await once(out.stream, 'data')) as [Buffer];
    expect(echo.toString()).toBe('via A');

    // A is gone from the balancer's pool: the client's next packets reach B
    relay.target.port = b.address[1];
    const closed = once(out, 'close');
    const switched = performance.now();
    out.stream.write('via B?');
    await closed;
    const took = performance.now() - switched;
    expect(took).toBeLessThan(idleTimeout / 5);
    expect(out.conn.error).toMatch(/Stateless reset/);
    expect(out.failureCode).toBe('ERR_QUIC_STATELESS_RESET');
    expect((await streamError)[0].message).toMatch(/Stateless reset/);
    expect(b.stats.statelessResets).toBeGreaterThanOrEqual(1);
    expect(b.stats.unroutable).toBeGreaterThanOrEqual(1);
    expect(b.sessions.size).toBe(0);
    // A never sent one: it holds the connection
    expect(a.stats.statelessResets).toBe(0);
  });

  it('without the reset key, the other instance sends no reset', async () => {
    const a = await listen({ secrets });
    const b = await listen({ secrets: { tokenKey: secrets.tokenKey } });
    const relay = await balancer(a);
    const onA = once(a, 'session') as Promise<[QuicSession<Client>]>;
    const out = (await quic.connect({
      host: HOST,
      port: relay.port,
      ca: EC_CERT_PEM,
    })) as QuicSession<Server>;
    cleanups.push(() => out.close());
    await onA;
    relay.target.port = b.address[1];
    out.stream.write('lost');
    await waitUntil(() => b.stats.unroutable >= 1, 'the datagram at B');
    expect(b.stats.statelessResets).toBe(0);
    expect(out.closed).toBe(false);
  });
});
