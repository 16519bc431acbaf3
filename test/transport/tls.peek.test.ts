/** The sans-IO parts of the TLS layer: the ClientHello peek and the ServerHello observer. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientHelloPeek, ServerHelloObserver } from '../../src/transport/tls/index.js';
import { handshakeFixture } from './tls-fixtures.js';

const split512 = handshakeFixture('openssl-3.0-split-512.hex');
const tls12 = handshakeFixture('openssl-3.0-tls12.hex');
const sslv3 = handshakeFixture('sslv3-client-hello.hex');
const sslv3Server = handshakeFixture('sslv3-server-hello.hex');

/** Feeds `bytes` cut at `cuts` and returns the first decision. */
function feed(peek: ClientHelloPeek, bytes: Buffer, cuts: number[]) {
  const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, bytes.length]) {
    if (to <= from) continue;
    const r = peek.push(bytes.subarray(from, to));
    from = to;
    if (r.kind !== 'need-more') return { r, at: to };
  }
  return { r: { kind: 'need-more' as const }, at: bytes.length };
}

describe('ClientHelloPeek', () => {
  it('a ClientHello over two records, one byte at a time: decided exactly at its last byte', () => {
    const peek = new ClientHelloPeek(false);
    const { r, at } = feed(
      peek,
      split512,
      Array.from({ length: split512.length }, (_, i) => i),
    );
    expect(r.kind).toBe('hello');
    expect(at).toBe(split512.length);
    if (r.kind !== 'hello') return;
    expect(r.hello.sni).toBe('split.example');
    expect(r.hello.alpnProtocols).toHaveLength(60);
    expect(r.hello.alpnProtocols[59]).toBe('proto-59-x');
    expect(r.bytes.equals(split512)).toBe(true);
  });

  it('any split gives the same hello (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (cuts, detect) => {
        const { r } = feed(new ClientHelloPeek(detect), tls12, cuts);
        expect(r.kind).toBe('hello');
        if (r.kind === 'hello') {
          expect(r.hello.sni).toBe('example.com');
          expect(r.hello.alpnProtocols).toEqual(['h2', 'http/1.1']);
          expect(r.bytes.equals(tls12)).toBe(true);
        }
      }),
    );
  });

  it('bytes after the ClientHello are handed on with it', () => {
    const more = Buffer.concat([tls12, Buffer.from('170303000100', 'hex')]);
    const r = new ClientHelloPeek(false).push(more);
    expect(r.kind).toBe('hello');
    if (r.kind === 'hello') expect(r.bytes.equals(more)).toBe(true);
  });

  it('an SSLv3 ClientHello is recognised', () => {
    const r = new ClientHelloPeek(true).push(sslv3);
    expect(r.kind).toBe('hello');
    if (r.kind === 'hello') {
      expect(r.hello.legacyVersion).toBe(0x0300);
      expect(r.hello.cipherSuites).toEqual([0x002f, 0x0035]);
      expect(r.hello.sni).toBeNull();
    }
  });

  it('plain bytes: an error without detection, "plain" with it, decided at the first byte', () => {
    const get = Buffer.from('GET / HTTP/1.1\r\n');
    const strict = new ClientHelloPeek(false).push(get.subarray(0, 1));
    expect(strict.kind).toBe('error');
    const detect = new ClientHelloPeek(true).push(get);
    expect(detect).toEqual({ kind: 'plain', bytes: get });
  });

  it('a handshake record that is not a ClientHello is an error', () => {
    const r = new ClientHelloPeek(false).push(Buffer.from('160303000a020000060303000000000000', 'hex'));
    expect(r.kind).toBe('error');
  });

  it('a ClientHello that never ends is cut off', () => {
    const peek = new ClientHelloPeek(false);
    // a handshake header announcing 16 MB, then filler records
    let r = peek.push(Buffer.from('1603034000' + '01ffffff', 'hex'));
    const filler = Buffer.concat([Buffer.from('1603034000', 'hex'), Buffer.alloc(0x4000)]);
    for (let i = 0; i < 8 && r.kind === 'need-more'; i++) r = peek.push(filler);
    expect(r.kind).toBe('error');
  });

  it('garbage never throws (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, detect) => {
        const r = new ClientHelloPeek(detect).push(Buffer.from(bytes));
        expect(['need-more', 'plain', 'hello', 'error']).toContain(r.kind);
      }),
    );
  });
});

describe('ServerHelloObserver', () => {
  it('reads an SSLv3 ServerHello split anywhere', () => {
    for (let cut = 1; cut < sslv3Server.length; cut++) {
      const o = new ServerHelloObserver();
      expect(o.push(sslv3Server.subarray(0, cut)).kind).toBe('need-more');
      const r = o.push(sslv3Server.subarray(cut));
      expect(r.kind).toBe('server-hello');
      if (r.kind === 'server-hello') {
        expect(r.hello.version).toBe(0x0300);
        expect(r.hello.cipherSuite).toBe(0x002f);
      }
    }
  });

  it('not TLS: an error, once', () => {
    const o = new ServerHelloObserver();
    expect(o.push(Buffer.from('HTTP/1.1 200 OK\r\n')).kind).toBe('error');
    expect(o.result.kind).toBe('error');
  });
});
