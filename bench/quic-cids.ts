/**
 * What a connection ID costs a listener to make, per encoding: random IDs (the default, drawn
 * from a pooled CSPRNG), QUIC-LB plaintext, single-pass AES-128-ECB, four-pass (odd and even
 * lengths) and unroutable IDs; and the stateless reset token of each ID, HMAC-SHA256(key, ID)
 * beside the random token it replaced. IDs are made per new connection and per spare ID, never
 * per packet; these are the figures behind that. Rounds alternate each case with its baseline
 * (same run, paired ratios, medians). Run directly (`node dist/bench/quic-cids.js`) or through
 * the runner.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { newResetToken, RANDOM_CIDS } from '../src/transport/quic/cid.js';
import { type QuicLbConfig, quicLbCids } from '../src/transport/quic/lb/index.js';
import { StatelessResets } from '../src/transport/quic/reset.js';
import { median, pairedRatio, type Row, rate } from './report.js';

const ROUNDS = 12;
const ROUND_MS = 40;
const KEY = randomBytes(16);
const SID = randomBytes(15);

const CASES: { name: string; config: QuicLbConfig }[] = [
  {
    name: 'QUIC-LB plaintext (server ID 3 + nonce 6: 10-octet IDs)',
    config: { configId: 0, serverId: SID.subarray(0, 3), nonceLength: 6 },
  },
  {
    name: 'QUIC-LB single-pass AES-128-ECB (8 + 8: 17-octet IDs)',
    config: { configId: 1, serverId: SID.subarray(0, 8), nonceLength: 8, key: KEY },
  },
  {
    name: 'QUIC-LB four-pass, odd (3 + 4: 8-octet IDs)',
    config: { configId: 2, serverId: SID.subarray(0, 3), nonceLength: 4, key: KEY },
  },
  {
    name: 'QUIC-LB four-pass, 20-octet IDs (10 + 9)',
    config: { configId: 3, serverId: SID.subarray(0, 10), nonceLength: 9, key: KEY },
  },
  { name: 'QUIC-LB unroutable (16-octet IDs, 0b111)', config: { unroutable: true } },
];

/** Runs the benchmark (a few seconds) and returns its rows. */
export async function runQuicCidsBench(): Promise<Row[]> {
  const random = (): Buffer => RANDOM_CIDS.next();
  const rows: Row[] = [];
  const measure = (name: string, op: () => unknown, base: () => unknown, baselineName: string): void => {
    rate(op, 50);
    rate(base, 50);
    const ours: number[] = [];
    const baseline: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // alternate which side goes first, so neither always gets the warmer CPU
      if (round % 2 === 0) {
        ours.push(rate(op, ROUND_MS));
        baseline.push(rate(base, ROUND_MS));
      } else {
        baseline.push(rate(base, ROUND_MS));
        ours.push(rate(op, ROUND_MS));
      }
    }
    rows.push({
      name,
      value: median(ours),
      unit: 'IDs/s',
      baseline: median(baseline),
      baselineName,
      ratio: pairedRatio(ours, baseline),
    });
  };
  for (const c of CASES) {
    const cids = quicLbCids(c.config);
    measure(c.name, () => cids.next(), random, 'random 16-octet IDs (RANDOM_CIDS)');
  }
  const resets = new StatelessResets(randomBytes(32));
  const cid = RANDOM_CIDS.next();
  measure(
    'stateless reset token, HMAC-SHA256(key, ID)',
    () => resets.token(cid),
    newResetToken,
    'random token (pooled CSPRNG)',
  );
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { formatTable } = await import('./report.js');
  console.log(formatTable('QUIC connection IDs: cost to make one', await runQuicCidsBench()));
}
