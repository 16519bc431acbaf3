/**
 * Our QUIC listener under an Initial flood, with real peers: a generator process sends
 * undecryptable client Initials (random DCIDs, 64 source ports) at the issue's rate while
 * ngtcp2's `gtlsclient` handshakes; and below the threshold nothing changes (no Retry).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gtlsclientHandshake, type InitialFlood, startInitialFlood } from '../../bench/quic-flood.js';
import { QuicListener } from '../../src/transport/quic/index.js';
import { EC_CERT_PEM, EC_KEY_PEM } from '../helpers/certs.js';

const HOST = '127.0.0.1';
/** The flood: 20,000 undecryptable Initials per second. */
const FLOOD_RATE = 20_000;
/** Every legitimate handshake completes within this, flood or not (the bound). */
const HANDSHAKE_BOUND_MS = 3000;

const floods: InitialFlood[] = [];
const listeners: QuicListener[] = [];
afterEach(async () => {
  for (const f of floods.splice(0)) await f.stop();
  for (const l of listeners.splice(0)) await l.close();
});

/** A listener, and how many sessions it has accepted. */
async function listen(): Promise<QuicListener & { accepted: number }> {
  const listener = await QuicListener.listen({
    host: HOST,
    cert: EC_CERT_PEM,
    key: EC_KEY_PEM,
    ALPNProtocols: ['h3'],
  });
  const counted = Object.assign(listener, { accepted: 0 });
  listener.on('session', () => counted.accepted++);
  listeners.push(listener);
  return counted;
}

async function flood(port: number, rate: number): Promise<InitialFlood> {
  const f = await startInitialFlood(port, rate, 64, HOST);
  floods.push(f);
  return f;
}

/** Polls `condition` every 10 ms, at most `ms`. */
async function until(condition: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !condition() && Date.now() < end; )
    await new Promise((r) => setTimeout(r, 10));
}

describe('QUIC listener under an Initial flood (gtlsclient, real peer)', () => {
  it(`completes 10 of 10 gtlsclient handshakes under ${FLOOD_RATE} Initials/s, deciding from headers`, async () => {
    const listener = await listen();
    const port = listener.address[1];
    const f = await flood(port, FLOOD_RATE);
    // the flood is on: the listener is answering with Retries before the first client comes
    await until(() => listener.stats.loadRetries > 1000);
    expect(listener.stats.loadRetries).toBeGreaterThan(1000);
    const t0 = performance.now();
    const decrypts0 = listener.stats.initialDecrypts;
    const results = [];
    for (let i = 0; i < 10; i++) {
      // each client lives until our side has the session up too
      const settle = (): Promise<void> => until(() => listener.accepted === i + 1, HANDSHAKE_BOUND_MS);
      results.push(await gtlsclientHandshake(HOST, port, HANDSHAKE_BOUND_MS, settle));
    }
    const seconds = (performance.now() - t0) / 1000;
    const { sent } = await f.stop();
    floods.length = 0;
    expect(sent).toBeGreaterThan(FLOOD_RATE / 4);
    // every one completed within the bound, each after answering a Retry
    expect(results.filter((r) => r.wallMs !== null && r.wallMs < HANDSHAKE_BOUND_MS)).toHaveLength(10);
    expect(results.every((r) => r.retried)).toBe(true);
    expect(listener.accepted).toBe(10);
    // the flood cost no decryptions: only the clients' proven Initials were decrypted
    const st = listener.stats;
    expect(st.initialDecrypts - decrypts0).toBeLessThanOrEqual(10 * listener.limits.maxPendingDatagrams);
    expect(st.initialDecrypts - decrypts0).toBeLessThan(listener.limits.maxDecryptsPerSecond * seconds + 1);
    expect(st.retries).toBe(st.loadRetries);
  });

  it('forces no Retry below the threshold: a handshake has no Retry round trip, garbage is decrypted and dropped', async () => {
    const listener = await listen();
    const port = listener.address[1];
    // a trickle: far below initialRateThreshold (1000/s)
    const f = await flood(port, 100);
    await until(() => listener.stats.helloFailures >= 10);
    const r = await gtlsclientHandshake(HOST, port, HANDSHAKE_BOUND_MS);
    await f.stop();
    floods.length = 0;
    expect(r.wallMs).not.toBeNull();
    expect(r.retried).toBe(false);
    const st = listener.stats;
    expect(st.retries).toBe(0);
    expect(st.loadRetries).toBe(0);
    // the trickle's Initials were decrypted (that is how they were found to be garbage)
    expect(st.helloFailures).toBeGreaterThanOrEqual(10);
    expect(st.initialDecrypts).toBeGreaterThan(st.helloFailures);
  });
});
