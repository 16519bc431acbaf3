/**
 * The interception matrix, QUIC: quic-interop-runner's cases through the proxy, `gtlsclient`
 * (ngtcp2) -> proxy (its link impaired) -> `gtlsserver`, HTTP/3 fetches compared byte for byte.
 * Each case checks the files, both legs' models (each its own handshake), and the impairment
 * counters that show the faults happened.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeSite,
  type QuicRun,
  type QuicRunOptions,
  quicRun,
  type Site,
} from '../../bench/intercept-peers.js';
import type { ImpairCounters } from '../../src/proxy/impair/impairer.js';
import { FORCED_CIPHERS } from '../transport/quic-peers.js';

const SMALL = 'small.bin';
const LARGE = 'large.bin';
const HUGE = 'huge.bin';
const MANY = Array.from({ length: 24 }, (_, i) => `m${i}.bin`);

let site: Site;
beforeAll(() => {
  site = makeSite({
    [SMALL]: 2_000,
    [LARGE]: 1_000_000,
    [HUGE]: 3_000_000,
    ...Object.fromEntries(MANY.map((name, i) => [name, 10_000 + i * 997])),
  });
});
afterAll(() => site.remove());

function run(options: Omit<QuicRunOptions, 'site'>): Promise<QuicRun> {
  return quicRun({ site, ...options });
}

/** Every file of every client arrived whole; both legs are the QUIC v1 h3 handshakes they should be. */
function expectWhole(r: QuicRun, fetches: readonly (readonly string[])[]): void {
  expect(r.intact).toEqual(fetches.map((names) => [...names]));
  const { client, server } = r.legs!;
  expect(client).toMatchObject({ tlsVersion: 'QUICv1', alpn: 'h3', sni: 'localhost' });
  expect(client!.alpnOffers).toContain('h3');
  expect(server).toMatchObject({ tlsVersion: 'QUICv1', alpn: 'h3', sni: 'localhost' });
  // gtlsclient ends with CONNECTION_CLOSE H3_NO_ERROR (0x100), mirrored: an ordinary end on h3
  for (const leg of [client!, server!]) expect(leg.error).toBeNull();
  expect(server!.peername![0]).toBe('127.0.0.1');
  // the server leg's model holds gtlsserver's own leaf; the client leg's the cipher gtlsclient chose
  expect(server!.certificateList[0]!.fingerprint256).toBe(
    new X509Certificate(readFileSync(site.certificate.certFile)).fingerprint256,
  );
  const chosen = FORCED_CIPHERS.find((c) => c.gnutls === r.ciphers.at(-1));
  expect(chosen, `gtlsclient's cipher ${r.ciphers.at(-1)}`).toBeDefined();
  if (r.ciphers.length === 1) expect(client!.cipher).toBe(chosen!.iana);
  expect(client!.timestampTlsSetup!).toBeGreaterThanOrEqual(client!.timestampStart!);
  expect(server!.timestampTlsSetup!).toBeGreaterThanOrEqual(server!.timestampStart!);
}

function counters(r: QuicRun): { up: ImpairCounters; down: ImpairCounters } {
  const impair = r.stats!.impair!;
  return { up: impair.up, down: impair.down };
}

const cipherOf = (gnutls: string): string[] => [
  `--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+${gnutls}`,
];

describe('interception matrix: QUIC (gtlsclient -> proxy -> gtlsserver)', () => {
  it('handshake: a small file, the link delayed 5 ms each way', async () => {
    const fetches = [[SMALL]];
    const r = await run({ fetches, impair: 'delay=5' });
    expectWhole(r, fetches);
    expect(r.legs!.client!.cipher).toBe('TLS_AES_128_GCM_SHA256');
    const c = counters(r);
    expect(c.up.delayed).toBeGreaterThan(3);
    expect(c.down.delayed).toBeGreaterThan(3);
  });

  it('transfer: 1 MB by HTTP/3, byte for byte', async () => {
    const fetches = [[LARGE]];
    const r = await run({ fetches, impair: 'delay=5' });
    expectWhole(r, fetches);
    const request = r.streams.find((s) => s.client_stream_id === 0)!;
    expect(request.bytes_from_server).toBeGreaterThan(1_000_000);
    expect(counters(r).down.delayed).toBeGreaterThan(700);
  });

  it('chacha20: both legs negotiate TLS_CHACHA20_POLY1305_SHA256', async () => {
    const fetches = [[SMALL]];
    const r = await run({
      fetches,
      impair: 'delay=5',
      clientArgs: cipherOf('CHACHA20-POLY1305'),
      serverArgs: cipherOf('CHACHA20-POLY1305'),
    });
    expectWhole(r, fetches);
    expect(r.ciphers).toEqual(['CHACHA20-POLY1305']);
    expect(r.legs!.client!.cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
    expect(r.legs!.server!.cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
  });

  it("retry: the proxy's client leg answers with a Retry first", async () => {
    const fetches = [[SMALL]];
    const r = await run({ fetches, impair: 'delay=5', proxy: { quicRetry: true } });
    expectWhole(r, fetches);
    expect(r.outputs[0]).toMatch(/type=Retry/);
  });

  it('multiplexing: 24 files on one connection, at once', async () => {
    const fetches = [MANY];
    const r = await run({ fetches, impair: 'delay=5' });
    expectWhole(r, fetches);
    const requests = r.streams.filter((s) => s.client_stream_id! % 4 === 0);
    expect(requests).toHaveLength(MANY.length);
    expect(requests.every((s) => s.client_stream_id === s.server_stream_id)).toBe(true);
  });

  // Three handshakes, one after the other, each under its own seeded pattern. The seeds are ones
  // whose losses ngtcp2 and quiche recover from within a probe timeout or two (others take their
  // backoff: 1 s, 2 s, 4 s ...): the case is about the proxy carrying a lossy handshake whole.
  it('handshakeloss: 30% loss in bursts of up to 3, both ways, three handshakes', async () => {
    let dropped = 0;
    for (const seed of [2, 5, 8]) {
      const fetches = [[SMALL]];
      const r = await run({ fetches, impair: `loss=0.3,burst=3,seed=${seed}`, timeoutS: 10 });
      expectWhole(r, fetches);
      const c = counters(r);
      expect(c.up.dropped + c.down.dropped).toBeGreaterThan(3);
      dropped += c.up.dropped + c.down.dropped;
    }
    expect(dropped).toBeGreaterThan(20);
  });

  it('transferloss: 2% loss both ways over a 1 MB transfer', async () => {
    const fetches = [[LARGE]];
    const r = await run({ fetches, impair: 'loss=0.02,seed=4', timeoutS: 10 });
    expectWhole(r, fetches);
    expect(counters(r).down.dropped).toBeGreaterThan(5);
  });

  it('handshakecorruption: 30% of datagrams corrupted both ways, three handshakes', async () => {
    let corrupted = 0;
    for (const seed of [5, 7, 8]) {
      const fetches = [[SMALL]];
      const r = await run({ fetches, impair: `corrupt=0.3,seed=${seed}`, timeoutS: 10 });
      expectWhole(r, fetches);
      const c = counters(r);
      expect(c.up.corrupted + c.down.corrupted).toBeGreaterThan(2);
      corrupted += c.up.corrupted + c.down.corrupted;
    }
    expect(corrupted).toBeGreaterThan(12);
  });

  it('transfercorruption: 2% corrupted both ways over a 1 MB transfer', async () => {
    const fetches = [[LARGE]];
    const r = await run({ fetches, impair: 'corrupt=0.02,seed=6', timeoutS: 10 });
    expectWhole(r, fetches);
    expect(counters(r).down.corrupted).toBeGreaterThan(5);
  });

  it("rebind-port: the server leg's source port changes mid-transfer (NAT rebinding)", async () => {
    const fetches = [[LARGE]];
    // a 40 ms round trip: the transfer (slow start) lasts several rebinding periods
    const r = await run({ fetches, impair: 'rebind=80,delay=20', timeoutS: 10 });
    expectWhole(r, fetches);
    const rebound = counters(r).up.rebound;
    expect(rebound).toBeGreaterThanOrEqual(2);
    // the server saw the proxy from as many ports, on one address
    // (the last source may have had only the closing datagram, after the server was gone)
    expect(r.serverSaw.size).toBeGreaterThanOrEqual(3);
    expect(r.serverSaw.size).toBeLessThanOrEqual(rebound + 1);
    expect(new Set([...r.serverSaw].map((a) => a.split(':')[0]))).toEqual(new Set(['127.0.0.1']));
    // the server leg's model keeps the socket the proxy bound: the NAT moved, not the proxy
    expect(r.serverSaw).toContain(`127.0.0.1:${r.legs!.server!.sockname![1]}`);
  });

  it("rebind-addr: the server leg's source address and port change mid-transfer", async () => {
    const fetches = [[LARGE]];
    const r = await run({ fetches, impair: 'rebind-addr=80,delay=20', timeoutS: 10 });
    expectWhole(r, fetches);
    const rebound = counters(r).up.rebound;
    expect(rebound).toBeGreaterThanOrEqual(2);
    const addresses = new Set([...r.serverSaw].map((a) => a.split(':')[0]));
    expect(addresses.size).toBeGreaterThanOrEqual(3);
    expect(addresses.size).toBeLessThanOrEqual(rebound + 1);
    expect(addresses).toContain('127.0.0.2');
  });

  it('blackhole: the link drops everything for 150 ms of every 400, mid-transfer', async () => {
    const fetches = [[HUGE]];
    // a 40 ms round trip keeps the transfer going past the first 250 ms; OFF periods shorter than
    // ON ones let the probes that follow one get through
    const r = await run({ fetches, impair: 'blackhole=250/150,delay=20', timeoutS: 10 });
    expectWhole(r, fetches);
    const c = counters(r);
    // toward the client: the server leg may have had all 3 MB (its window is 4 MB), and acknowledged
    // them, before the first OFF period, so `up` may have had nothing to lose
    expect(c.down.dropped).toBeGreaterThan(0);
  });
});
