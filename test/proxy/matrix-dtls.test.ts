/**
 * The interception matrix, DTLS: `openssl s_client -dtls1_2` and `gnutls-cli --udp` -> proxy (its
 * link impaired) -> `openssl s_server -dtls1_2`. Each case checks the handshake of both legs
 * (each model against what its peer reported), lines of text both ways, and the counters.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DtlsRun,
  type DtlsRunOptions,
  dtlsRun,
  makeSite,
  type Site,
} from '../../bench/intercept-peers.js';
import { opensslStandardName } from '../helpers/cipher-names.js';
import { gnutlsDescription } from '../transport/dtls-peers.js';

let site: Site;
beforeAll(() => {
  site = makeSite({});
});
afterAll(() => site.remove());

const UP = ['hello server 1', 'hello server 2', 'hello server 3'];
const DOWN = ['hello client 1', 'hello client 2'];

function run(options: Omit<DtlsRunOptions, 'site'>): Promise<DtlsRun> {
  return dtlsRun({ site, up: UP, down: DOWN, ...options });
}

/** Both legs' models against what s_server and the client reported; every line arrived (`once`: exactly once). */
function expectLegs(r: DtlsRun, once = true): void {
  const { client, server } = r.legs!;
  const serverCipher = /CIPHER is (\S+)/.exec(r.serverOutput)?.[1];
  expect(server).toMatchObject({
    tlsVersion: 'DTLSv1.2',
    cipher: opensslStandardName(serverCipher!),
    sni: 'localhost',
    error: null,
  });
  expect(client).toMatchObject({ tlsVersion: 'DTLSv1.2', sni: 'localhost', error: null });
  const opensslCipher = /Cipher\s*: (\S+)/.exec(r.clientOutput)?.[1];
  if (opensslCipher !== undefined) expect(client!.cipher).toBe(opensslStandardName(opensslCipher));
  else expect(client!.cipher).toContain(gnutlsDescription(r.clientOutput)!.bulk.replaceAll('-', '_'));
  expect(client!.mitmcert!.subjectAltName).toContain('DNS:localhost');
  expect(server!.certificateList[0]!.fingerprint256).toBe(
    new X509Certificate(readFileSync(site.certificate.certFile)).fingerprint256,
  );
  if (once) {
    expect(r.atServer).toEqual(UP.map(() => 1));
    expect(r.atClient).toEqual(DOWN.map(() => 1));
  } else {
    for (const n of [...r.atServer, ...r.atClient]) expect(n).toBeGreaterThanOrEqual(1);
  }
  expect(r.flowErrors).toEqual([]);
}

describe('interception matrix: DTLS (openssl s_client / gnutls-cli -> proxy -> openssl s_server)', () => {
  // DTLS does not retransmit records: under loss the lines are sent again until they arrive
  it('openssl: the handshake under 20% loss with reordering, both ways', async () => {
    const r = await run({ client: 'openssl', impair: 'loss=0.2,reorder=0.3,mtu=300,seed=1', resendMs: 150 });
    expectLegs(r, false);
    const { up, down } = r.stats!.impair!;
    expect(up.dropped + down.dropped).toBeGreaterThan(0);
    expect(up.reordered + down.reordered).toBeGreaterThan(0);
  });

  it('gnutls-cli --udp: the handshake under 20% loss with reordering, both ways', async () => {
    const r = await run({ client: 'gnutls', impair: 'loss=0.2,reorder=0.3,mtu=300,seed=5', resendMs: 150 });
    expectLegs(r, false);
    const { up, down } = r.stats!.impair!;
    expect(up.dropped + down.dropped).toBeGreaterThan(0);
    expect(up.reordered + down.reordered).toBeGreaterThan(0);
  });

  it('duplication: every datagram twice; the replay window delivers each record once', async () => {
    const r = await run({ client: 'openssl', impair: 'duplicate=1' });
    expectLegs(r);
    const { up, down } = r.stats!.impair!;
    expect(up.duplicated).toBeGreaterThan(UP.length);
    expect(down.duplicated).toBeGreaterThan(DOWN.length);
  });

  it("MTU 300: the proxy's flights are fragmented to fit; a record over it is lost", async () => {
    const big = `big ${'x'.repeat(400)}`;
    const r = await run({ client: 'openssl', impair: 'mtu=300', upDropped: [big] });
    expectLegs(r);
    // the handshakes (certificate flights of ~1 KB) fitted: the one datagram lost is the big record
    expect(r.droppedAtServer).toEqual([0]);
    expect(r.stats!.impair!.up.dropped).toBe(1);
    expect(r.stats!.impair!.down.dropped).toBe(0);
  });
});
