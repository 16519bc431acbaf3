import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ja3, ja3String, ja4, parseClientHello, parseClientHelloRecords } from '../../src/handshake/index.js';
import {
  alpnExt,
  chromeLikeClientHello,
  clientHelloBody,
  type Ext,
  emptyExt,
  keyShareExt,
  sniExt,
  supportedVersionsExt,
  u8VectorExt,
  u16VectorExt,
} from './build.js';
import { tlsStream } from './fixtures.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

function hello(ext: Ext[], ciphers: number[], version = 0x0303) {
  const r = parseClientHello(clientHelloBody({ version, ciphers, extensions: ext }));
  if (r.status !== 'done') throw new Error('bad hello');
  return r.value;
}

describe('JA3', () => {
  it("reproduces the JA3 README's examples", () => {
    // salesforce/ja3 README: the string and its MD5.
    const h = hello(
      [emptyExt(0), u16VectorExt(10, [23, 24, 25]), u8VectorExt(11, [0])],
      [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
      769,
    );
    expect(ja3(h)).toEqual({
      text: '769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0',
      hash: 'ada70206e40642a3e4461f35503241d5',
    });
    const bare = parseClientHello(
      clientHelloBody({ version: 769, ciphers: [4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], extensions: null }),
    );
    expect(bare.status === 'done' && ja3(bare.value)).toEqual({
      text: '769,4-5-10-9-100-98-3-6-19-18-99,,,',
      hash: 'de350869b8c85de67a350c8d186f11e6',
    });
  });
});

/**
 * A Chrome 143 hello as published by browserleaks (ja4, ja4_r, ja4_o, ja4_ro, ja3_text, ja3_hash),
 * rebuilt from its ja4_ro order with GREASE added (which every fingerprint must ignore).
 */
function browserleaksChrome() {
  const ciphers = [
    0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
    0x009d, 0x002f, 0x0035,
  ];
  const sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
  const ext: Ext[] = [
    emptyExt(0xdada),
    [0x002d, Uint8Array.from([1, 1])],
    [0x0033, Uint8Array.from([0, 8, 0x11, 0xec, 0, 0, 0, 0x1d, 0, 0])],
    alpnExt(['h2', 'http/1.1']),
    [0xfe0d, new Uint8Array(10)],
    emptyExt(0x0017),
    [0x44cd, Uint8Array.from([0, 3, 2, 0x68, 0x32])],
    sniExt('tls.browserleaks.com'),
    u8VectorExt(0x000b, [0]),
    u16VectorExt(0x000a, [0x1a1a, 4588, 29, 23, 24]),
    supportedVersionsExt([0x3a3a, 0x0304, 0x0303]),
    [0xff01, Uint8Array.from([0])],
    emptyExt(0x0023),
    emptyExt(0x0012),
    [0x0005, Uint8Array.from([1, 0, 0, 0, 0])],
    u16VectorExt(0x000d, sig),
    [0x001b, Uint8Array.from([2, 0, 2])],
    [0x4a4a, Uint8Array.from([0])],
  ];
  return hello(ext, ciphers);
}

describe('JA4', () => {
  it("reproduces the spec's worked example hashes", () => {
    const sorted = '002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9';
    expect(createHash('sha256').update(sorted).digest('hex').slice(0, 12)).toBe('8daaf6152771');
    // The spec's ClientHello: 15 ciphers, 16 extensions incl. SNI and ALPN, 8 signature algorithms.
    const exts = [
      0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01,
      0x000b, 0x000a, 0x0015,
    ];
    const sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
    const data: Record<number, Ext> = {
      0: sniExt('example.com'),
      16: alpnExt(['h2']),
      13: u16VectorExt(13, sig),
      43: supportedVersionsExt([0x0304, 0x0303]),
      10: u16VectorExt(10, [29, 23]),
      11: u8VectorExt(11, [0]),
      45: u8VectorExt(45, [1]),
      51: keyShareExt([[29, 32]]),
    };
    const built: Ext[] = exts.map((t) => data[t] ?? emptyExt(t));
    const h = hello(
      built,
      [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
        0x009d, 0x002f, 0x0035,
      ],
    );
    const fp = ja4(h);
    expect(fp.ja4).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
    expect(fp.raw).toBe(
      't13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601',
    );
    expect(fp.original).toBe('t13d1516h2_acb858a92679_18f69afefd3d');
    expect(fp.rawOriginal).toBe(
      't13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_0403,0804,0401,0503,0805,0501,0806,0601',
    );
  });

  it('matches a published Chrome fingerprint set (browserleaks), GREASE ignored', () => {
    const h = browserleaksChrome();
    const fp = ja4(h);
    expect(fp.ja4).toBe('t13d1516h2_8daaf6152771_d8a2da3f94cd');
    expect(fp.raw).toBe(
      't13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403,0804,0401,0503,0805,0501,0806,0601',
    );
    expect(fp.original).toBe('t13d1516h2_acb858a92679_f96a17c57971');
    const text =
      '771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0';
    expect(ja3String(h)).toBe(text);
    expect(ja3(h).hash).toBe('98487aa16281980e7d1120d399efb6a4');
    expect(md5(text)).toBe('98487aa16281980e7d1120d399efb6a4');
  });

  it('ALPN, SNI, empty lists and transport prefixes', () => {
    const base = [0x1301];
    expect(ja4(hello([alpnExt(['http/1.1'])], base)).ja4.slice(0, 10)).toBe('t12i0101h1');
    expect(ja4(hello([alpnExt(['a'])], base)).ja4.slice(8, 10)).toBe('aa');
    expect(ja4(hello([alpnExt(['\xab'])], base)).ja4.slice(8, 10)).toBe('ab');
    expect(ja4(hello([alpnExt(['\xab\xcd'])], base)).ja4.slice(8, 10)).toBe('ad');
    expect(ja4(hello([alpnExt(['0\xab\xcd1'])], base)).ja4.slice(8, 10)).toBe('01');
    expect(ja4(hello([alpnExt(['01\xab\xcd'])], base)).ja4.slice(8, 10)).toBe('3d');
    expect(ja4(hello([alpnExt([''])], base)).ja4.slice(8, 10)).toBe('00');
    expect(ja4(hello([], [])).ja4).toBe('t12i000000_000000000000_000000000000');
    const h = hello([sniExt('x.example'), alpnExt(['h2'])], base);
    expect(ja4(h, 'quic').ja4.startsWith('q12d0102h2_')).toBe(true);
    // SNI and ALPN alone leave nothing to hash in part c.
    expect(ja4(h).ja4.endsWith('_000000000000')).toBe(true);
  });

  it('fingerprints the captured openssl hellos', () => {
    const r = parseClientHelloRecords(tlsStream('openssl-tls13', 'client'));
    expect(r.status).toBe('done');
    if (r.status !== 'done') return;
    expect(ja4(r.value).ja4).toMatch(/^t13d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$/);
    expect(ja4(r.value).ja4.slice(0, 10)).toBe(
      `t13d${String(r.value.cipherSuites.length).padStart(2, '0')}${r.value.extensions.length}h2`,
    );
    const chrome = parseClientHelloRecords(chromeLikeClientHello());
    expect(chrome.status === 'done' && ja4(chrome.value).ja4.slice(0, 10)).toBe('t13d1516h2');
  });
});
