/**
 * The interception matrix, streams: curl -> proxy (its link impaired) -> `openssl s_server -WWW`
 * (TLS) or an HTTP/1.0 file server (TCP). A byte stream cannot lose or reorder, so TCP and TLS
 * get the link's timing: delay, rate and blackholes. Each case checks the file byte for byte,
 * both legs' models, that the transfer took the time the impairment implies, and the counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSite, type Site, streamRun } from '../../bench/intercept-peers.js';

const FILE = 'file.bin';
const SIZE = 400_000;

let site: Site;
beforeAll(() => {
  site = makeSite({ [FILE]: SIZE });
});
afterAll(() => site.remove());

describe('interception matrix: TLS and TCP (curl -> proxy -> server)', () => {
  it('TLS with 30 ms of delay each way and 4 Mbit/s down: the file whole, in no less than the rate allows', async () => {
    const r = await streamRun({ site, file: FILE, scheme: 'tls', impair: 'delay=30,down:rate=4M' });
    expect(r.intact).toBe(true);
    expect(r.flowErrors).toEqual([]);
    const { client, server } = r.legs!;
    expect(client).toMatchObject({ tlsVersion: r.clientVersion, cipher: r.clientCipher, sni: 'localhost' });
    expect(server).toMatchObject({ tlsVersion: 'TLSv1.3', sni: 'localhost', error: null });
    expect(server!.certificateList[0]!.subject).toContain('CN=localhost');
    // 400 kB at 4 Mbit/s is 800 ms; the request waits 30 ms up and its first bytes 30 ms down
    expect(r.totalMs - r.setupMs).toBeGreaterThanOrEqual(800 + 60 - 50);
    const { up, down } = r.stats!.impair!;
    expect(up.delayed).toBeGreaterThan(0);
    expect(down.delayed).toBeGreaterThan(20);
    expect(up.dropped + down.dropped + down.reordered).toBe(0);
  });

  it('TCP through a blackhole: the bytes wait out the OFF period, none lost', async () => {
    // ON 300 ms, OFF 300 ms; at 4 Mbit/s down the transfer (800 ms on the link) spans OFF periods
    const r = await streamRun({ site, file: FILE, scheme: 'tcp', impair: 'blackhole=300/300,down:rate=4M' });
    expect(r.intact).toBe(true);
    expect(r.legs!.client).toMatchObject({ tls: false, error: null });
    expect(r.legs!.server).toMatchObject({ tls: false, error: null });
    // 800 ms at the rate, plus at least one OFF period of 300 ms
    expect(r.totalMs).toBeGreaterThanOrEqual(800 + 300 - 50);
    expect(r.stats!.impair!.down.delayed).toBeGreaterThan(20);
    expect(r.stats!.impair!.down.dropped).toBe(0);
  });
});
