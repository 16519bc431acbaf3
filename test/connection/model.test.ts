import { describe, expect, it } from 'vitest';
import {
  CLIENT_STATE_KEYS,
  Client,
  ConnectionGuardError,
  ConnectionState,
  ConnectionStateError,
  formatAddress,
  SERVER_STATE_KEYS,
  Server,
} from '../../src/connection/index.js';
import { EC_CERT, RSA_CERT } from '../helpers/certs.js';

const client = (init: Partial<ConstructorParameters<typeof Client>[0]> = {}) =>
  new Client({ peername: ['127.0.0.1', 52314], sockname: ['127.0.0.1', 8080], ...init });

describe('text forms (mitmproxy str)', () => {
  it('prints a Client with its state, alpn or tls', () => {
    expect(String(client({ state: ConnectionState.OPEN }))).toBe('Client(127.0.0.1:52314, state=open)');
    expect(String(client({ alpn: 'foo' }))).toBe('Client(127.0.0.1:52314, state=closed, alpn=foo)');
    expect(String(client({ state: ConnectionState.OPEN, timestampTlsSetup: 1 }))).toBe(
      'Client(127.0.0.1:52314, state=open, tls)',
    );
    // an empty ALPN (negotiated nothing) with TLS done prints "tls", as Python's falsy b"" does
    expect(String(client({ alpn: '', timestampTlsSetup: 1 }))).toBe(
      'Client(127.0.0.1:52314, state=closed, tls)',
    );
  });

  it('prints a Server with address, state, alpn and src_port', () => {
    const s = new Server({ address: ['address', 22], alpn: 'foo', sockname: ['127.0.0.1', 54321] });
    expect(String(s)).toBe('Server(address:22, state=closed, alpn=foo, src_port=54321)');
    const t = new Server({
      address: ['example.com', 443],
      state: ConnectionState.CAN_READ,
      sockname: ['::1', 5555],
    });
    expect(String(t)).toBe('Server(example.com:443, state=can_read, src_port=5555)');
    expect(String(new Server({ address: null, state: ConnectionState.CAN_WRITE }))).toBe(
      'Server(<no address>, state=can_write)',
    );
  });

  it.each([
    [['1.2.3.4', 80], '1.2.3.4:80'],
    [['::1', 443], '[::1]:443'],
    [['2001:DB8:0:0:0:0:0:1', 443], '[2001:db8::1]:443'],
    [['2001:db8:0:1:1:1:1:1', 1], '[2001:db8:0:1:1:1:1:1]:1'],
    [['fe80::1%eth0', 5], '[fe80::1%eth0]:5'],
    [['::ffff:127.0.0.1', 8080], '127.0.0.1:8080'],
    [['::ffff:7f00:1', 8080], '127.0.0.1:8080'],
    [['0.0.0.0', 80], '*:80'],
    [['::', 80], '*:80'],
    [['example.com', 443], 'example.com:443'],
    [['::1', 443, 0, 0], '[::1]:443'],
  ] as const)('formats %j as %s', (addr, text) => {
    expect(formatAddress(addr)).toBe(text);
  });

  it('formats a missing address', () => {
    expect(formatAddress(null)).toBe('<no address>');
  });
});

describe('properties', () => {
  it('connected only when exactly OPEN; tlsEstablished once timestampTlsSetup is set', () => {
    const c = client();
    for (const [state, connected] of [
      [ConnectionState.OPEN, true],
      [ConnectionState.CAN_READ, false],
      [ConnectionState.CAN_WRITE, false],
      [ConnectionState.CLOSED, false],
    ] as const) {
      c.state = state;
      expect(c.connected).toBe(connected);
    }
    expect(c.tlsEstablished).toBe(false);
    c.timestampTlsSetup = 1700000000.5;
    expect(c.tlsEstablished).toBe(true);
  });

  it('has mitmproxy defaults', () => {
    const c = client();
    expect(c.state).toBe(ConnectionState.CLOSED);
    expect(c.transportProtocol).toBe('tcp');
    expect(c.proxyMode).toBe('regular');
    expect(c.timestampStart).toBeGreaterThan(1.6e9);
    const s = new Server({ address: ['example.com', 80] });
    expect(s.timestampStart).toBeNull();
    expect(s.peername).toBeNull();
    expect([s.alpn, s.cipher, s.tlsVersion, s.sni, s.error, s.via]).toEqual([
      null,
      null,
      null,
      null,
      null,
      null,
    ]);
  });
});

describe('address/via guard', () => {
  it('refuses a different address or via on an open Server, allows the same value', () => {
    const s = new Server({ address: ['example.com', 443] });
    s.address = ['example.org', 443]; // closed: allowed
    s.state = ConnectionState.OPEN;
    expect(() => {
      s.address = ['example.com', 443];
    }).toThrow(ConnectionGuardError);
    expect(() => {
      s.address = ['example.com', 443];
    }).toThrow('Cannot change server.address on open connection.');
    s.address = ['example.org', 443]; // same value: allowed
    expect(() => {
      s.via = ['http', ['proxy', 8080]];
    }).toThrow('Cannot change server.via on open connection.');
    s.via = null;
    s.sni = 'other'; // other fields may change
    s.state = ConnectionState.CAN_READ; // half-closed is not OPEN: allowed
    s.address = ['example.net', 1];
    expect(s.address).toEqual(['example.net', 1]);
  });
});

describe('identity', () => {
  it('compares by id only, across Client and Server; key works in a Map', () => {
    const a = client();
    const b = client({ id: a.id, alpn: 'x' });
    const s = new Server({ address: null, id: a.id });
    expect(a.equals(b)).toBe(true);
    expect(a.equals(s)).toBe(true);
    expect(a.equals(client())).toBe(false);
    expect(a.equals({ id: a.id })).toBe(false);
    const m = new Map([[a.key, 1]]);
    expect(m.get(b.key)).toBe(1);
  });

  it('copy() gives an equal state with a new id', () => {
    const c = client({ certificateList: [EC_CERT], mitmcert: RSA_CERT, alpnOffers: ['h2'] });
    const d = c.copy();
    expect(d.equals(c)).toBe(false);
    expect(d.id).not.toBe(c.id);
    expect({ ...d.toState(), id: c.id }).toEqual(c.toState());
    const s = new Server({ address: ['h', 1], via: ['http', ['p', 3128]] });
    expect({ ...s.copy().toState(), id: s.id }).toEqual(s.toState());
  });
});

describe('state format', () => {
  it('uses mitmproxy keys in mitmproxy order', () => {
    expect(Object.keys(client().toState())).toEqual([...CLIENT_STATE_KEYS]);
    expect(Object.keys(new Server({ address: null }).toState())).toEqual([...SERVER_STATE_KEYS]);
    expect(CLIENT_STATE_KEYS).toEqual([
      'peername',
      'sockname',
      'id',
      'transport_protocol',
      'error',
      'tls',
      'certificate_list',
      'alpn',
      'alpn_offers',
      'cipher',
      'cipher_list',
      'tls_version',
      'sni',
      'timestamp_start',
      'timestamp_end',
      'timestamp_tls_setup',
      'mitmcert',
      'proxy_mode',
    ]);
    expect(SERVER_STATE_KEYS.slice(-3)).toEqual(['address', 'timestamp_tcp_setup', 'via']);
  });

  it('writes certificates as PEM and JSON.stringify gives the state', () => {
    const c = client({ certificateList: [EC_CERT], mitmcert: RSA_CERT });
    const state = JSON.parse(JSON.stringify(c));
    expect(state.certificate_list[0]).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(state.mitmcert).toBe(RSA_CERT.toString());
    expect(state).not.toHaveProperty('state');
    const back = Client.fromState(state);
    expect(back.certificateList[0]!.fingerprint256).toBe(EC_CERT.fingerprint256);
    expect(back.toState()).toEqual(c.toState());
  });

  it('accepts 4-element IPv6 addresses', () => {
    const c = client({ peername: ['::1', 1, 0, 0] });
    expect(Client.fromState(c.toState()).peername).toEqual(['::1', 1, 0, 0]);
  });

  const errorOf = (f: () => unknown): ConnectionStateError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ConnectionStateError);
      return e as ConnectionStateError;
    }
    throw new Error('did not throw');
  };

  it('rejects unknown keys, missing keys and values outside the schema, naming the key', () => {
    const base = client().toState();
    expect(errorOf(() => Client.fromState({ ...base, extra: 1 }))).toMatchObject({
      code: 'ERR_STATE_UNKNOWN_KEY',
      key: 'extra',
    });
    const { sni: _sni, ...missing } = base;
    expect(errorOf(() => Client.fromState(missing))).toMatchObject({
      code: 'ERR_STATE_MISSING_KEY',
      key: 'sni',
    });
    expect(errorOf(() => Client.fromState({ ...base, tls_version: 'DTLSv9' }))).toMatchObject({
      code: 'ERR_STATE_INVALID_VALUE',
      key: 'tls_version',
    });
    expect(errorOf(() => Client.fromState({ ...base, transport_protocol: 'sctp' })).key).toBe(
      'transport_protocol',
    );
    expect(errorOf(() => Client.fromState({ ...base, peername: ['h', 70000] })).key).toBe('peername[1]');
    expect(errorOf(() => Client.fromState({ ...base, certificate_list: ['nope'] })).key).toBe(
      'certificate_list[0]',
    );
    expect(errorOf(() => Client.fromState({ ...base, timestamp_start: null })).key).toBe('timestamp_start');
    expect(
      errorOf(() => Server.fromState({ ...new Server({ address: null }).toState(), via: ['ftp', ['h', 1]] }))
        .key,
    ).toBe('via[0]');
    expect(errorOf(() => Server.fromState(base)).code).toBe('ERR_STATE_UNKNOWN_KEY');
    expect(errorOf(() => Client.fromState(null)).code).toBe('ERR_STATE_NOT_OBJECT');
    const polluted = JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(base).slice(1)}`);
    expect(errorOf(() => Client.fromState(polluted))).toMatchObject({
      code: 'ERR_STATE_UNKNOWN_KEY',
      key: '__proto__',
    });
  });
});
