import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_STATE_KEYS,
  Client,
  ConnectionStateError,
  SERVER_STATE_KEYS,
  Server,
  TLS_VERSIONS,
} from '../../src/connection/index.js';
import { EC_CERT_PEM, RSA_CERT_PEM } from '../helpers/certs.js';

const port = fc.integer({ min: 0, max: 65535 });
const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
const address = fc.oneof(
  fc.tuple(host, port),
  fc.tuple(fc.ipV6(), port, fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })),
);
const ts = fc.double({ min: 0, max: 4e9, noNaN: true, noDefaultInfinity: true });
const pem = fc.constantFrom(EC_CERT_PEM, RSA_CERT_PEM);
const common = {
  id: fc.uuid(),
  transport_protocol: fc.constantFrom('tcp', 'udp'),
  error: fc.option(fc.string()),
  tls: fc.boolean(),
  certificate_list: fc.array(pem, { maxLength: 3 }),
  alpn: fc.option(fc.string()),
  alpn_offers: fc.array(fc.string()),
  cipher: fc.option(fc.string()),
  cipher_list: fc.array(fc.string()),
  tls_version: fc.option(fc.constantFrom(...TLS_VERSIONS)),
  sni: fc.option(fc.string()),
  timestamp_end: fc.option(ts),
  timestamp_tls_setup: fc.option(ts),
};
const clientState = fc.record({
  peername: address,
  sockname: address,
  ...common,
  timestamp_start: ts,
  mitmcert: fc.option(pem),
  proxy_mode: fc.string(),
});
const serverState = fc.record({
  peername: fc.option(address),
  sockname: fc.option(address),
  ...common,
  timestamp_start: fc.option(ts),
  address: fc.option(address),
  timestamp_tcp_setup: fc.option(ts),
  via: fc.option(fc.tuple(fc.constantFrom('http', 'https', 'tls', 'quic'), fc.tuple(host, port))),
});

/** A value no field of the schema accepts where a different type is expected. */
const wrongValue = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: -5, max: -1 }),
  fc.constant({}),
  fc.constant([1, 2, 3]),
  fc.constant('DTLSv9'),
  fc.constant(Number.NaN),
  fc.constant(true),
);

const sortedKeys = (o: object) => JSON.stringify(o, Object.keys(o));

describe('state format properties', () => {
  it('any valid Client state round-trips exactly, keys in order', () => {
    fc.assert(
      fc.property(clientState, (state) => {
        const out = Client.fromState(state).toState();
        expect(out).toEqual(state);
        expect(Object.keys(out)).toEqual([...CLIENT_STATE_KEYS]);
        expect(JSON.parse(JSON.stringify(Client.fromState(out)))).toEqual(JSON.parse(JSON.stringify(state)));
      }),
      { numRuns: 300 },
    );
  });

  it('any valid Server state round-trips exactly, keys in order', () => {
    fc.assert(
      fc.property(serverState, (state) => {
        const out = Server.fromState(state).toState();
        expect(out).toEqual(state);
        expect(Object.keys(out)).toEqual([...SERVER_STATE_KEYS]);
      }),
      { numRuns: 300 },
    );
  });

  it('a mutation outside the schema is rejected with a ConnectionStateError naming the key', () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('wrong' as const),
        key: fc.constantFrom(...CLIENT_STATE_KEYS),
        value: wrongValue,
      }),
      fc.record({ kind: fc.constant('drop' as const), key: fc.constantFrom(...CLIENT_STATE_KEYS) }),
      fc.record({
        kind: fc.constant('extra' as const),
        key: fc.string({ minLength: 1 }).filter((k) => !(CLIENT_STATE_KEYS as readonly string[]).includes(k)),
      }),
    );
    fc.assert(
      fc.property(clientState, mutation, (state, m) => {
        const bad: Record<string, unknown> = { ...state };
        if (m.kind === 'wrong') {
          // some "wrong" values are valid for some keys (e.g. a string for a string field): skip those
          const accepts =
            (typeof m.value === 'string' &&
              ['error', 'alpn', 'cipher', 'sni', 'proxy_mode', 'id'].includes(m.key)) ||
            (typeof m.value === 'boolean' && m.key === 'tls');
          fc.pre(!accepts);
          bad[m.key] = m.value;
        } else if (m.kind === 'drop') delete bad[m.key];
        else Object.defineProperty(bad, m.key, { value: 1, enumerable: true }); // an own key, even __proto__
        let thrown: unknown;
        try {
          Client.fromState(bad);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(ConnectionStateError);
        const key = (thrown as ConnectionStateError).key;
        expect(key === m.key || key.startsWith(`${m.key}[`)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('JSON text of a state is stable across a load (no key reordering)', () => {
    fc.assert(
      fc.property(serverState, (state) => {
        const text = JSON.stringify(Server.fromState(state));
        expect(text).toBe(JSON.stringify(Server.fromState(JSON.parse(text))));
        expect(sortedKeys(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 100 },
    );
  });
});
