/** Mode specs: mitmproxy's `reverse:SCHEME://HOST:PORT`, with `@PORT` or `@HOST:PORT` for where to listen. */
import { describe, expect, it } from 'vitest';
import { hostPort, ModeError, modeListenPort, parseMode } from '../../src/proxy/modes.js';

describe('parseMode', () => {
  it('reads reverse:SCHEME://HOST:PORT, IPv6 in brackets', () => {
    expect(parseMode('reverse:udp://example.com:53')).toEqual({
      kind: 'reverse',
      scheme: 'udp',
      host: 'example.com',
      port: 53,
      spec: 'reverse:udp://example.com:53',
    });
    expect(parseMode('reverse:quic://[::1]:443')).toMatchObject({ scheme: 'quic', host: '::1', port: 443 });
    for (const bad of [
      'udp://a:1',
      'reverse:ftp://a:1',
      'reverse:udp://a',
      'reverse:udp://a:0',
      'reverse:udp://a:70000',
    ]) {
      expect(() => parseMode(bad), bad).toThrow(ModeError);
    }
  });
});

describe('parseMode with a listen address (MODE@PORT)', () => {
  it('reads @PORT and @HOST:PORT, IPv6 in brackets on either side', () => {
    expect(parseMode('reverse:tls://example.com:443@8443')).toEqual({
      kind: 'reverse',
      scheme: 'tls',
      host: 'example.com',
      port: 443,
      spec: 'reverse:tls://example.com:443@8443',
      listenPort: 8443,
    });
    expect(parseMode('reverse:quic://[::1]:443@127.0.0.2:4433')).toMatchObject({
      host: '::1',
      listenHost: '127.0.0.2',
      listenPort: 4433,
    });
    expect(parseMode('reverse:udp://10.0.0.1:53@[::1]:0')).toMatchObject({
      listenHost: '::1',
      listenPort: 0,
    });
    for (const bad of [
      'reverse:tls://a:1@',
      'reverse:tls://a:1@70000',
      'reverse:tls://a:1@h:',
      'reverse:tls://a:1@@2',
    ]) {
      expect(() => parseMode(bad), bad).toThrow(ModeError);
    }
  });

  it('hostPort brackets IPv6 literals', () => {
    expect(hostPort('::1', 53)).toBe('[::1]:53');
    expect(hostPort('example.com', 443)).toBe('example.com:443');
  });
});

describe('parseMode: socks5', () => {
  it("reads socks5, socks5@PORT and socks5@HOST:PORT (mitmproxy's)", () => {
    expect(parseMode('socks5')).toEqual({ kind: 'socks5', spec: 'socks5' });
    expect(parseMode('socks5@1081')).toEqual({ kind: 'socks5', spec: 'socks5@1081', listenPort: 1081 });
    expect(parseMode('socks5@[::1]:0')).toEqual({
      kind: 'socks5',
      spec: 'socks5@[::1]:0',
      listenHost: '::1',
      listenPort: 0,
    });
    for (const bad of ['socks4', 'socks5@', 'socks5@70000', 'socks5://a:1', 'socks5:a:1', 'Socks5']) {
      expect(() => parseMode(bad), bad).toThrow(ModeError);
    }
  });

  it('listens on 1080 unless its spec or the proxy names a port; reverse modes on 0', () => {
    expect(modeListenPort(parseMode('socks5'), undefined)).toBe(1080);
    expect(modeListenPort(parseMode('socks5'), 0)).toBe(0);
    expect(modeListenPort(parseMode('socks5'), 9050)).toBe(9050);
    expect(modeListenPort(parseMode('socks5@1081'), 9050)).toBe(1081);
    expect(modeListenPort(parseMode('reverse:udp://a:53'), undefined)).toBe(0);
    expect(modeListenPort(parseMode('reverse:udp://a:53@5353'), 0)).toBe(5353);
  });
});

describe('parseMode: transparent', () => {
  it("reads transparent, transparent@PORT and transparent@HOST:PORT (mitmproxy's)", () => {
    expect(parseMode('transparent')).toEqual({ kind: 'transparent', spec: 'transparent' });
    expect(parseMode('transparent@8080')).toEqual({
      kind: 'transparent',
      spec: 'transparent@8080',
      listenPort: 8080,
    });
    expect(parseMode('transparent@[::]:8080')).toEqual({
      kind: 'transparent',
      spec: 'transparent@[::]:8080',
      listenHost: '::',
      listenPort: 8080,
    });
    for (const bad of ['transparent@', 'transparent@99999', 'transparent:tcp', 'Transparent', 'transparentx'])
      expect(() => parseMode(bad), bad).toThrow(ModeError);
  });

  it('listens on the proxy default port unless its spec names one', () => {
    expect(modeListenPort(parseMode('transparent'), undefined)).toBe(0);
    expect(modeListenPort(parseMode('transparent'), 8080)).toBe(8080);
    expect(modeListenPort(parseMode('transparent@9090'), 8080)).toBe(9090);
  });
});
