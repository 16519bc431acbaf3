/** SOCKS5's wire format (RFC 1928, RFC 1929): parsers (need more, a value, or a typed error) and builders. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  datagramHeader,
  datagramHeaderLength,
  destinationHash,
  encodeAddress,
  isHostName,
  parseCredentials,
  parseDatagramHeader,
  parseGreeting,
  parseRequest,
  Reply,
  reply,
  Socks5Error,
  sameDestination,
} from '../../src/proxy/socks5/wire.js';

/** Every strict prefix of `bytes` needs more; the whole parses. */
function prefixesNeedMore(parse: (b: Uint8Array) => unknown, bytes: Buffer): void {
  for (let n = 0; n < bytes.length; n++) expect(parse(bytes.subarray(0, n)), `${n} bytes`).toBeNull();
}

const thrown = (f: () => unknown): Socks5Error => {
  try {
    f();
  } catch (err) {
    if (err instanceof Socks5Error) return err;
    throw err;
  }
  throw new Error('did not throw');
};

describe('SOCKS5 parsers', () => {
  it('greeting: methods, need-more on every prefix, bad version and no methods refused', () => {
    const greeting = Buffer.from([5, 2, 0, 2, 0xaa]);
    prefixesNeedMore(parseGreeting, greeting.subarray(0, 4));
    expect(parseGreeting(greeting)).toEqual({ value: { methods: [0, 2] }, length: 4 });
    expect(thrown(() => parseGreeting(Buffer.from([4, 1, 0])))).toMatchObject({
      code: 'ERR_SOCKS5_VERSION',
      reply: null,
    });
    // an HTTP request sent to a SOCKS port
    expect(thrown(() => parseGreeting(Buffer.from('GET / HTTP/1.1\r\n'))).code).toBe('ERR_SOCKS5_VERSION');
    expect(thrown(() => parseGreeting(Buffer.from([5, 0]))).code).toBe('ERR_SOCKS5_METHODS');
  });

  it('credentials (RFC 1929): UTF-8 name and password; empty fields and other versions refused', () => {
    const utf8 = Buffer.from('pässwört');
    const creds = Buffer.concat([
      Buffer.from([1, 5]),
      Buffer.from('alice'),
      Buffer.from([utf8.length]),
      utf8,
    ]);
    const fixed = Buffer.concat([
      Buffer.from([1, 5]),
      Buffer.from('alice'),
      Buffer.from([5]),
      Buffer.from('p4ss!'),
    ]);
    prefixesNeedMore(parseCredentials, fixed);
    expect(parseCredentials(fixed)).toEqual({ value: { username: 'alice', password: 'p4ss!' }, length: 13 });
    expect(parseCredentials(creds)?.value).toEqual({ username: 'alice', password: 'pässwört' });
    expect(thrown(() => parseCredentials(Buffer.from([5, 1, 0x61, 1, 0x62]))).code).toBe(
      'ERR_SOCKS5_AUTH_FORMAT',
    );
    expect(thrown(() => parseCredentials(Buffer.from([1, 0, 1, 0x62]))).code).toBe('ERR_SOCKS5_AUTH_FORMAT');
    expect(thrown(() => parseCredentials(Buffer.from([1, 1, 0x61, 0]))).code).toBe('ERR_SOCKS5_AUTH_FORMAT');
  });

  it('requests: IPv4, IPv6 (RFC 5952 text), a domain name; need-more on every prefix', () => {
    const v4 = Buffer.from([5, 1, 0, 1, 192, 0, 2, 1, 0x01, 0xbb]);
    prefixesNeedMore(parseRequest, v4);
    expect(parseRequest(v4)).toEqual({
      value: { command: 1, address: { host: '192.0.2.1', port: 443, domain: false } },
      length: 10,
    });
    const v6 = Buffer.concat([
      Buffer.from([5, 3, 0, 4]),
      Buffer.from('20010db8000000000000000000000001', 'hex'),
      Buffer.from([0, 53]),
    ]);
    prefixesNeedMore(parseRequest, v6);
    expect(parseRequest(v6)?.value.address).toEqual({ host: '2001:db8::1', port: 53, domain: false });
    const loop6 = Buffer.concat([Buffer.from([5, 3, 0, 4]), Buffer.alloc(15), Buffer.from([1, 0, 53])]);
    expect(parseRequest(loop6)?.value.address.host).toBe('::1');
    const name = Buffer.concat([
      Buffer.from([5, 1, 0, 3, 11]),
      Buffer.from('example.com'),
      Buffer.from([0, 80]),
    ]);
    prefixesNeedMore(parseRequest, name);
    expect(parseRequest(name)?.value).toEqual({
      command: 1,
      address: { host: 'example.com', port: 80, domain: true },
    });
    // BIND and unknown commands parse: the layer answers them
    expect(parseRequest(Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]))?.value.command).toBe(2);
    expect(parseRequest(Buffer.from([5, 9, 0, 1, 0, 0, 0, 0, 0, 0]))?.value.command).toBe(9);
  });

  it('ATYP outside 1/3/4: "address type not supported"; names that are no host name: "host unreachable"', () => {
    for (const atyp of [0, 2, 5, 0xff]) {
      expect(thrown(() => parseRequest(Buffer.from([5, 1, 0, atyp, 1, 2, 3, 4, 0, 80])))).toMatchObject({
        code: 'ERR_SOCKS5_ADDRESS_TYPE',
        reply: Reply.ADDRESS_TYPE_NOT_SUPPORTED,
      });
    }
    const request = (name: Buffer): Buffer =>
      Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([0, 80])]);
    for (const bad of [
      Buffer.alloc(0),
      Buffer.from('a'.repeat(254)),
      Buffer.from('x'.repeat(255)),
      Buffer.from(`${'l'.repeat(64)}.com`),
      Buffer.from('spa ce.com'),
      Buffer.from('new\nline'),
      Buffer.from([0xc3, 0xa9, 0x2e, 0x66, 0x72]),
      Buffer.from('a..b'),
    ]) {
      expect(
        thrown(() => parseRequest(request(bad))),
        JSON.stringify(bad.toString('latin1')),
      ).toMatchObject({
        code: 'ERR_SOCKS5_HOST_NAME',
        reply: Reply.HOST_UNREACHABLE,
      });
    }
    expect(isHostName(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`)).toBe(true);
    expect(isHostName('under_score.example.')).toBe(true);
  });

  it('datagram headers: the data offset, FRAG as sent; short datagrams and bad addresses are typed errors', () => {
    const d = Buffer.concat([datagramHeader('10.0.0.1', 53), Buffer.from('query')]);
    expect(parseDatagramHeader(d)).toEqual({
      frag: 0,
      address: { host: '10.0.0.1', port: 53, domain: false },
      headerLength: 10,
    });
    expect(d.subarray(10).toString()).toBe('query');
    const frag = Buffer.from(d);
    frag[2] = 0x81;
    expect(parseDatagramHeader(frag).frag).toBe(0x81);
    for (let n = 0; n < 10; n++)
      expect(thrown(() => parseDatagramHeader(d.subarray(0, n))).code).toBe('ERR_SOCKS5_DATAGRAM');
    // a name longer than the datagram
    expect(thrown(() => parseDatagramHeader(Buffer.from([0, 0, 0, 3, 200, 0x61]))).code).toBe(
      'ERR_SOCKS5_DATAGRAM',
    );
    expect(thrown(() => parseDatagramHeader(Buffer.from([0, 0, 0, 7, 1, 2, 3, 4, 0, 1]))).code).toBe(
      'ERR_SOCKS5_ADDRESS_TYPE',
    );
    // the header alone, no data: a valid empty datagram
    expect(parseDatagramHeader(datagramHeader('::1', 443)).headerLength).toBe(22);
  });

  it('datagramHeaderLength reads the length from ATYP alone; destinationHash covers the address bytes only', () => {
    const v4 = Buffer.concat([datagramHeader('10.0.0.1', 53), Buffer.from('x')]);
    const v6 = Buffer.concat([datagramHeader('::1', 53), Buffer.from('x')]);
    const name = Buffer.concat([datagramHeader('example.com', 53), Buffer.from('x')]);
    expect([datagramHeaderLength(v4), datagramHeaderLength(v6), datagramHeaderLength(name)]).toEqual([
      10, 22, 18,
    ]);
    expect(datagramHeaderLength(v4.subarray(0, 9))).toBe(-1);
    expect(datagramHeaderLength(Buffer.from([0, 0, 0, 2, 1, 2, 3, 4, 0, 53]))).toBe(-1);
    const other = Buffer.from(v4);
    other[0] = 7;
    other[2] = 1;
    expect(destinationHash(other, 10)).toBe(destinationHash(v4, 10));
    expect(destinationHash(Buffer.concat([datagramHeader('10.0.0.1', 54), Buffer.from('x')]), 10)).not.toBe(
      destinationHash(v4, 10),
    );
  });

  it('sameDestination compares the address bytes, not the RSV bytes', () => {
    const header = datagramHeader('example.com', 53);
    const d = Buffer.concat([header, Buffer.from('x')]);
    expect(sameDestination(d, header)).toBe(true);
    d[0] = 0xff;
    expect(sameDestination(d, header)).toBe(true);
    expect(
      sameDestination(Buffer.concat([datagramHeader('example.org', 53), Buffer.from('x')]), header),
    ).toBe(false);
    expect(
      sameDestination(Buffer.concat([datagramHeader('example.com', 54), Buffer.from('x')]), header),
    ).toBe(false);
    expect(sameDestination(header.subarray(0, 5), header)).toBe(false);
  });

  it('random bytes: every parser answers null, a value, or a Socks5Error, never anything else', () => {
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytes(1 + (i % 40));
      // a valid version byte half the time, so the parsers get past it
      if (i % 2 === 0) bytes[0] = i % 4 === 0 ? 5 : 1;
      for (const parse of [parseGreeting, parseCredentials, parseRequest, parseDatagramHeader]) {
        try {
          parse(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(Socks5Error);
        }
      }
    }
  });
});

describe('SOCKS5 builders', () => {
  it('replies and addresses round-trip through the parsers', () => {
    expect([...reply(Reply.SUCCEEDED, '127.0.0.1', 1080)]).toEqual([5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38]);
    expect([...reply(Reply.COMMAND_NOT_SUPPORTED)]).toEqual([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    for (const host of ['::1', '2001:db8::8:800:200c:417a', 'fe80::', '::ffff:192.0.2.1', 'example.com']) {
      const parsed = parseRequest(Buffer.concat([Buffer.from([5, 1, 0]), encodeAddress(host, 8080)]));
      const expected = host === '::ffff:192.0.2.1' ? '::ffff:c000:201' : host;
      expect(parsed?.value.address).toEqual({ host: expected, port: 8080, domain: host === 'example.com' });
    }
  });
});
