/**
 * QUIC-LB connection IDs (draft-ietf-quic-load-balancers): the draft's test vectors byte for
 * byte, its worked four-pass example, a round-trip property over random configurations, the
 * generator's IDs, and the `--quic-lb` text form.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeQuicLbServerId,
  encodeQuicLbCid,
  parseQuicLbConfig,
  QuicLbConfigError,
  QuicLbDecoder,
  type QuicLbRoutableConfig,
  quicLbCids,
  quicLbConfigId,
} from '../../src/transport/quic/lb/index.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/**
 * Appendix "Load Balancer Test Vectors" of the draft (the editor's copy after -19; the -19 text
 * has the same rows). Every configuration encodes the CID length. The last encrypted row is
 * labelled cr_bits 3 in the table, but its first octet 0x12 carries config ID 0 (0x12 >> 5),
 * as the previous revision of the table said: config ID 0 is what the bytes encode.
 */
const ENCRYPTED_KEY = '8f95f09245765f80256934e50c66207f';
const VECTORS: {
  name: string;
  configId: number;
  sid: string;
  nonce: string;
  key: string | null;
  cid: string;
}[] = [
  { name: 'unencrypted', configId: 0, sid: 'c4605e', nonce: '4504cc4f', key: null, cid: '07c4605e4504cc4f' },
  {
    name: 'four-pass, odd length (7)',
    configId: 0,
    sid: 'ed793a',
    nonce: 'ee080dbf',
    key: ENCRYPTED_KEY,
    cid: '0720b1d07b359d3c',
  },
  {
    name: 'four-pass, server ID longer than the nonce (a fourth decryption pass)',
    configId: 1,
    sid: 'ed793a51d49b8f5fab65',
    nonce: 'ee080dbf48',
    key: ENCRYPTED_KEY,
    cid: '2fcc381bc74cb4fbad2823a3d1f8fed2',
  },
  {
    name: 'single pass (16 octets)',
    configId: 2,
    sid: 'ed793a51d49b8f5f',
    nonce: 'ee080dbf48c0d1e5',
    key: ENCRYPTED_KEY,
    cid: '504dd2d05a7b0de9b2b9907afb5ecf8cc3',
  },
  {
    name: 'four-pass, even length (18)',
    configId: 0,
    sid: 'ed793a51d49b8f5fab',
    nonce: 'ee080dbf48c0d1e55d',
    key: ENCRYPTED_KEY,
    cid: '125779c9cc86beb3a3a4a3ca96fce4bfe0cdbc',
  },
  // the draft's second unencrypted row is malformed (a 9-digit nonce, a 3-digit first
  // octet); this one, config 1 with an 8-octet server ID, is from Google quiche's
  // load_balancer_encoder_test.cc (UnencryptedConnectionIdTestVectors)
  {
    name: 'unencrypted, config 1, 8-octet server ID',
    configId: 1,
    sid: 'ed793a51d49b8f5f',
    nonce: '8e9853fe93',
    key: null,
    cid: '2ded793a51d49b8f5f8e9853fe93',
  },
];

function configOf(v: (typeof VECTORS)[number]): QuicLbRoutableConfig {
  return {
    configId: v.configId,
    serverId: hex(v.sid),
    nonceLength: v.nonce.length / 2,
    key: v.key === null ? null : hex(v.key),
  };
}

describe('the draft test vectors', () => {
  for (const v of VECTORS) {
    it(`${v.name}: encodes byte for byte and decodes the server ID`, () => {
      const config = configOf(v);
      expect(encodeQuicLbCid(config, hex(v.nonce)).toString('hex')).toBe(v.cid);
      expect(decodeQuicLbServerId(hex(v.cid), config)?.toString('hex')).toBe(v.sid);
      // a balancer knows the lengths and the key, not the server ID
      const lengthsOnly = new QuicLbDecoder({
        configId: v.configId,
        serverIdLength: v.sid.length / 2,
        nonceLength: v.nonce.length / 2,
        key: config.key ?? null,
      });
      expect(lengthsOnly.serverId(hex(v.cid))?.toString('hex')).toBe(v.sid);
      expect(quicLbConfigId(hex(v.cid))).toBe(v.configId);
    });
  }

  it("the draft's worked four-pass example (server ID 31441a, nonce 9c69c275)", () => {
    const config = {
      configId: 0,
      serverId: hex('31441a'),
      nonceLength: 4,
      key: hex('fdf726a9893ec05c0632d3956680baf0'),
    };
    expect(encodeQuicLbCid(config, hex('9c69c275')).toString('hex')).toBe('0767947d29be054a');
    expect(decodeQuicLbServerId(hex('0767947d29be054a'), config)?.toString('hex')).toBe('31441a');
  });

  it('refuses IDs of another config ID, the unroutable codepoint and short ones; longer ones decode', () => {
    const v = VECTORS[1]!;
    const decoder = new QuicLbDecoder(configOf(v));
    const cid = hex(v.cid);
    expect(decoder.serverId(Buffer.concat([Buffer.from([0x27]), cid.subarray(1)]))).toBeNull();
    expect(decoder.serverId(Buffer.concat([Buffer.from([0xe7]), cid.subarray(1)]))).toBeNull();
    expect(decoder.serverId(cid.subarray(0, cid.length - 1))).toBeNull();
    expect(decoder.serverId(Buffer.concat([cid, hex('abcd')]))?.toString('hex')).toBe(v.sid);
    expect(quicLbConfigId(new Uint8Array(0))).toBe(-1);
  });
});

/** A random valid configuration: config ID 0..6, server ID 1..15 octets, nonce 4..18, sum <= 19, key or not. */
const configs = fc
  .record({
    configId: fc.integer({ min: 0, max: 6 }),
    sidLength: fc.integer({ min: 1, max: 15 }),
    nonceLength: fc.integer({ min: 4, max: 18 }),
    keyed: fc.boolean(),
    key: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    bytes: fc.uint8Array({ minLength: 34, maxLength: 34 }),
  })
  .filter((c) => c.sidLength + c.nonceLength <= 19)
  .map((c) => ({
    config: {
      configId: c.configId,
      serverId: c.bytes.subarray(0, c.sidLength),
      nonceLength: c.nonceLength,
      key: c.keyed ? c.key : null,
    } satisfies QuicLbRoutableConfig,
    nonce: c.bytes.subarray(16, 16 + c.nonceLength),
  }));

describe('round trip', () => {
  it('decode(encode(server ID, nonce)) is the server ID, for every encoding and random configurations', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(configs, ({ config, nonce }) => {
        const cid = encodeQuicLbCid(config, nonce);
        expect(cid.length).toBe(1 + config.serverId.length + config.nonceLength);
        expect(cid[0]! >> 5).toBe(config.configId);
        expect(cid[0]! & 0x1f).toBe(cid.length - 1);
        expect(Buffer.from(decodeQuicLbServerId(cid, config)!)).toEqual(Buffer.from(config.serverId));
        const plaintext = config.key === null;
        seen.add(
          plaintext ? 'plaintext' : config.serverId.length + config.nonceLength === 16 ? 'single' : 'four',
        );
        // encrypted, a server ID of 3 octets or more shows in clear with odds of 2^-24 at most
        if (!plaintext && config.serverId.length >= 3)
          expect(cid.subarray(1, 1 + config.serverId.length).equals(Buffer.from(config.serverId))).toBe(
            false,
          );
      }),
      { numRuns: 400 },
    );
    expect([...seen].sort()).toEqual(['four', 'plaintext', 'single']);
  });

  it("the generator's IDs decode to its server ID, all distinct, with 4 changing octets at the steering offset", () => {
    fc.assert(
      fc.property(configs, ({ config }) => {
        const cids = quicLbCids(config);
        const decoder = new QuicLbDecoder(config);
        const ids = Array.from({ length: 70 }, () => cids.next());
        const steering = new Set<string>();
        for (const id of ids) {
          expect(id.length).toBe(cids.length);
          expect(Buffer.from(decoder.serverId(id)!)).toEqual(Buffer.from(config.serverId));
          steering.add(id.subarray(cids.steeringOffset, cids.steeringOffset + 4).toString('hex'));
        }
        expect(new Set(ids.map((id) => id.toString('hex'))).size).toBe(ids.length);
        expect(steering.size).toBe(ids.length);
        expect(cids.steeringOffset + 4).toBeLessThanOrEqual(cids.length);
        expect(cids.issueSpares).toBe(config.key !== null);
        expect(cids.disableActiveMigration).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});

describe('unroutable IDs', () => {
  it('are random with 0b111 first bits and the length in the low 5 bits, and ask for no migration and no spares', () => {
    for (const length of [8, 16, 20]) {
      const cids = quicLbCids({ unroutable: true, length });
      expect(cids.encoding).toBe('unroutable');
      expect(cids.configId).toBe(7);
      expect(cids.disableActiveMigration).toBe(true);
      expect(cids.issueSpares).toBe(false);
      const ids = Array.from({ length: 100 }, () => cids.next());
      for (const id of ids) {
        expect(id.length).toBe(length);
        expect(id[0]! >> 5).toBe(0b111);
        expect(id[0]! & 0x1f).toBe(length - 1);
        expect(quicLbConfigId(id)).toBe(7);
      }
      expect(new Set(ids.map((id) => id.subarray(1).toString('hex'))).size).toBe(100);
    }
    expect(quicLbCids({ unroutable: true }).length).toBe(16);
  });
});

describe('--quic-lb text', () => {
  it('parses CONFIG_ID:SERVER_ID_HEX:NONCE_LEN[:KEY_HEX] and unroutable[:LENGTH]', () => {
    expect(parseQuicLbConfig('0:c4605e:4')).toEqual({
      configId: 0,
      serverId: hex('c4605e'),
      nonceLength: 4,
      key: null,
    });
    expect(parseQuicLbConfig(`6:ED793A:13:${ENCRYPTED_KEY}`)).toEqual({
      configId: 6,
      serverId: hex('ed793a'),
      nonceLength: 13,
      key: hex(ENCRYPTED_KEY),
    });
    expect(parseQuicLbConfig('unroutable')).toEqual({ unroutable: true });
    expect(parseQuicLbConfig('unroutable:8')).toEqual({ unroutable: true, length: 8 });
    expect(quicLbCids(parseQuicLbConfig(`2:ed793a51d49b8f5f:8:${ENCRYPTED_KEY}`)).encoding).toBe(
      'single-pass',
    );
    expect(quicLbCids(parseQuicLbConfig(`2:ed793a51:8:${ENCRYPTED_KEY}`)).encoding).toBe('four-pass');
    expect(quicLbCids(parseQuicLbConfig('2:ed793a51:8')).encoding).toBe('plaintext');
  });

  it('refuses what does not hold together, with a QuicLbConfigError naming the problem', () => {
    const bad: [string, RegExp][] = [
      ['', /CONFIG_ID/],
      ['0:c4605e', /CONFIG_ID/],
      ['7:c4605e:4', /config ID/],
      ['x:c4605e:4', /decimal/],
      ['0:c4605:4', /hex/],
      ['0:zz:4', /hex/],
      ['0:c4605e:3', /nonce length/],
      ['0:c4605e:19', /nonce length/],
      ['0::4', /hex/],
      ['0:00112233445566778899aabbccddeeff:4', /server ID length/],
      ['0:0011223344556677:12', /sum to 19/],
      ['0:c4605e:4:0011', /16 octets/],
      ['0:c4605e:4:key', /hex/],
      ['0:c4605e:4:00:00', /CONFIG_ID/],
      ['unroutable:7', /length/],
      ['unroutable:21', /length/],
      ['unroutable:8:1', /unroutable/],
    ];
    for (const [text, message] of bad) {
      let error: unknown;
      try {
        parseQuicLbConfig(text);
      } catch (e) {
        error = e;
      }
      expect(error, text).toBeInstanceOf(QuicLbConfigError);
      expect((error as QuicLbConfigError).code).toBe('ERR_QUIC_LB_CONFIG');
      expect((error as Error).message, text).toMatch(message);
    }
  });
});
