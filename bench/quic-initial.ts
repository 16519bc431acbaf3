/**
 * QUIC Initial micro-benchmark: decrypting a 1200-byte client Initial and extracting its
 * ClientHello, beside the bare AES-128-GCM decryption of the same packet with node:crypto,
 * measured in the same run. Two cases: cold, a fresh DCID per packet as a listener sees new
 * clients (each costs a key derivation; the packets are built before timing), and warm, one
 * DCID whose keys are cached (a connection's later Initials). Rounds alternate ours and the
 * baseline; medians are reported, as the machine is shared. Run directly
 * (`node dist/bench/quic-initial.js`) or through the runner.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import {
  decryptInitial,
  deriveInitialKeys,
  InitialKeyCache,
  InitialTracker,
  parseDatagram,
  QUIC_V1,
} from '../src/handshake/quic/index.js';
import { median, type Row, rate } from './report.js';

/** RFC 9001 appendix A.2: a client Initial of 1200 bytes carrying a ClientHello (packet number 2). */
const CLIENT_INITIAL = Buffer.from(
  [
    'c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11',
    'd242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399',
    '1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c',
    '8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212',
    '30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5',
    '457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208',
    '4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec',
    '4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3',
    '485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db',
    '059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c',
    '7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8',
    '9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556',
    'be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74',
    '68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a',
    'c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00',
    'f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632',
    '291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964',
    '25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd',
    '14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff',
    'ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198',
    'e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd',
    'c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73',
    '203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f',
    'cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e',
    'fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade',
    'a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047',
    '90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2',
    '162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4',
    '40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0',
    '6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e',
    '8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0',
    'be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400',
    '54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab',
    '760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9',
    'f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4',
    '056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064',
    '7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241',
    'e221af44860018ab0856972e194cd934',
  ].join(''),
  'hex',
);
const DCID = Buffer.from('8394c8f03e515708', 'hex');

const ROUNDS = 16;
/** Packets with distinct DCIDs for the cold case, cycled through (no cache spans them). */
const FRESH_PACKETS = 4096;
const ROUND_MS = 40;

/** Runs the benchmark (a few seconds) and returns its rows. */
export async function runQuicInitialBench(): Promise<Row[]> {
  const keys = deriveInitialKeys(QUIC_V1, DCID);
  const parsed = parseDatagram(CLIENT_INITIAL);
  if (parsed.status !== 'done' || parsed.value.packets[0]?.form !== 'long')
    throw new Error('bench packet does not parse');
  const header = parsed.value.packets[0];
  // The baseline is handed what header protection removal would produce: the clear header
  // (AAD), the nonce and the ciphertext. It does no parsing, no header protection, no frames.
  const pnLength = 4;
  const aad = Buffer.from(CLIENT_INITIAL.subarray(0, header.pnOffset + pnLength));
  aad[0] = 0xc3;
  aad.writeUInt32BE(2, header.pnOffset);
  const nonce = Buffer.from(keys.client.keys.iv);
  nonce[11]! ^= 2;
  const sealed = CLIENT_INITIAL.subarray(header.pnOffset + pnLength);
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  const key = keys.client.keys.key;

  const bare = (): number => {
    const decipher = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
    decipher.setAAD(aad);
    const plaintext = decipher.update(ciphertext);
    decipher.setAuthTag(tag);
    decipher.final();
    return plaintext.length;
  };
  // The cold case's packets: the RFC packet's plaintext (same ClientHello, same padding)
  // sealed again under the keys of a random DCID each, header protection applied, before timing.
  const plaintext = (() => {
    const decipher = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
    decipher.setAAD(aad);
    const out = decipher.update(ciphertext);
    decipher.setAuthTag(tag);
    decipher.final();
    return out;
  })();
  const fresh: Buffer[] = [];
  for (let i = 0; i < FRESH_PACKETS; i++) {
    const dcid = randomBytes(DCID.length);
    const freshKeys = deriveInitialKeys(QUIC_V1, dcid);
    const head = Buffer.from(aad);
    dcid.copy(head, 6);
    const sealed = freshKeys.client.seal(2, head, plaintext);
    // header protection: the sample is the 16 bytes 4 after the packet number's start
    const mask = freshKeys.client.headerMask(sealed.subarray(0, 16));
    head[0] = head[0]! ^ (mask[0]! & 0x0f);
    const at = head.length - pnLength;
    for (let j = 0; j < pnLength; j++) head[at + j] = head[at + j]! ^ mask[1 + j]!;
    fresh.push(Buffer.concat([head, sealed]));
  }
  let next = 0;
  const cold = (): number => {
    const packet = fresh[next]!;
    next = (next + 1) % FRESH_PACKETS;
    const result = new InitialTracker().receive(packet, 'client');
    if (result.status !== 'done' || result.value.clientHello === undefined) throw new Error('no ClientHello');
    return result.value.clientHello.length;
  };
  const cache = new InitialKeyCache();
  const extract = (): number => {
    const result = new InitialTracker({ keyCache: cache }).receive(CLIENT_INITIAL, 'client');
    if (result.status !== 'done' || result.value.clientHello === undefined) throw new Error('no ClientHello');
    return result.value.clientHello.length;
  };
  const decryptOnly = (): number => {
    const result = decryptInitial(CLIENT_INITIAL, keys, 'client');
    if (result.status !== 'done') throw new Error('decryption failed');
    return result.value.length;
  };
  let dcidCounter = 0;
  const derive = (): number => {
    DCID[0] = dcidCounter++ & 0xff;
    return deriveInitialKeys(QUIC_V1, DCID).client.keys.key.length;
  };

  for (const op of [bare, cold, extract, decryptOnly, derive]) rate(op, 50);
  // Short rounds, each of ours right beside a baseline: the ratio of each pair is taken, as
  // the machine's speed drifts between rounds more than within one.
  const coldRates: number[] = [];
  const extractRates: number[] = [];
  const decryptRates: number[] = [];
  const bareRates: number[] = [];
  const coldRatios: number[] = [];
  const extractRatios: number[] = [];
  const decryptRatios: number[] = [];
  const deriveRates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const before = rate(bare, ROUND_MS);
    const coldRate = rate(cold, ROUND_MS);
    const extracted = rate(extract, ROUND_MS);
    const decrypted = rate(decryptOnly, ROUND_MS);
    const after = rate(bare, ROUND_MS);
    const baselineRate = (before + after) / 2;
    bareRates.push(baselineRate);
    coldRates.push(coldRate);
    extractRates.push(extracted);
    decryptRates.push(decrypted);
    coldRatios.push(coldRate / baselineRate);
    extractRatios.push(extracted / baselineRate);
    decryptRatios.push(decrypted / baselineRate);
    if (round % 4 === 0) deriveRates.push(rate(derive, ROUND_MS));
  }
  DCID[0] = 0x83;
  const baseline = median(bareRates);
  const baselineName = 'bare AES-128-GCM decrypt, node:crypto';
  return [
    {
      name: 'client Initial (1200 B), cold: fresh DCID per packet, key derivation + decrypt + ClientHello',
      value: median(coldRates),
      unit: 'packets/s',
      baseline,
      baselineName,
      ratio: median(coldRatios),
    },
    {
      name: 'client Initial (1200 B), warm: one DCID, keys cached, decrypt + ClientHello',
      value: median(extractRates),
      unit: 'packets/s',
      baseline,
      baselineName,
      ratio: median(extractRatios),
    },
    {
      name: 'client Initial (1200 B): decryptInitial only',
      value: median(decryptRates),
      unit: 'packets/s',
      baseline,
      baselineName,
      ratio: median(decryptRatios),
    },
    {
      name: 'Initial key derivation (new DCID, both directions)',
      value: median(deriveRates),
      unit: 'keys/s',
    },
  ];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await runQuicInitialBench();
  const fmt = (n: number | undefined): string =>
    n === undefined ? '' : Math.round(n).toLocaleString('en-US');
  console.log('| benchmark | wirelayer | baseline | ratio |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) {
    const base = r.baseline === undefined ? '' : `${fmt(r.baseline)} ${r.unit} (${r.baselineName})`;
    console.log(
      `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${base} | ${r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`} |`,
    );
  }
}
