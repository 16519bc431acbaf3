import { X509Certificate } from 'node:crypto';
import { ConnectionStateError } from './errors.js';
import { type Address, type ServerSpec, TLS_VERSIONS, TRANSPORT_PROTOCOLS, VIA_SCHEMES } from './types.js';

/**
 * One field of the state format: its snake_case key, and how a value is checked and converted
 * between the model (TypeScript) and the state (JSON-safe).
 */
export interface FieldCodec<M, S> {
  /** Throws ConnectionStateError (naming `key`) if `value` is not a valid state value. */
  load(value: unknown, key: string): M;
  dump(value: M): S;
}

const invalid = (key: string, what: string, value: unknown): ConnectionStateError =>
  new ConnectionStateError(
    'ERR_STATE_INVALID_VALUE',
    key,
    `${key}: expected ${what}, got ${describe(value)}`,
  );

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  return typeof value;
}

const identity = <T>(v: T): T => v;

export const str: FieldCodec<string, string> = {
  load(v, key) {
    if (typeof v !== 'string') throw invalid(key, 'a string', v);
    return v;
  },
  dump: identity,
};

export const bool: FieldCodec<boolean, boolean> = {
  load(v, key) {
    if (typeof v !== 'boolean') throw invalid(key, 'a boolean', v);
    return v;
  },
  dump: identity,
};

export const timestamp: FieldCodec<number, number> = {
  load(v, key) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw invalid(key, 'seconds since the epoch (>= 0)', v);
    return v;
  },
  dump: identity,
};

export function nullable<M, S>(codec: FieldCodec<M, S>): FieldCodec<M | null, S | null> {
  return {
    load: (v, key) => (v === null ? null : codec.load(v, key)),
    dump: (v) => (v === null ? null : codec.dump(v)),
  };
}

export function list<M, S>(codec: FieldCodec<M, S>): FieldCodec<readonly M[], S[]> {
  return {
    load(v, key) {
      if (!Array.isArray(v)) throw invalid(key, 'an array', v);
      return v.map((item, i) => codec.load(item, `${key}[${i}]`));
    },
    dump: (v) => v.map((item) => codec.dump(item)),
  };
}

export function literal<const T extends string>(values: readonly T[]): FieldCodec<T, T> {
  return {
    load(v, key) {
      if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
        throw invalid(key, `one of ${values.join(', ')}`, v);
      }
      return v as T;
    },
    dump: identity,
  };
}

const isPort = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535;
const isUint32 = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

export const address: FieldCodec<Address, (string | number)[]> = {
  load(v, key) {
    if (!Array.isArray(v) || (v.length !== 2 && v.length !== 4))
      throw invalid(key, 'an address [host, port]', v);
    const [host, port, flowinfo, scopeId] = v as unknown[];
    if (typeof host !== 'string') throw invalid(`${key}[0]`, 'a host string', host);
    if (!isPort(port)) throw invalid(`${key}[1]`, 'a port (0-65535)', port);
    if (v.length === 2) return [host, port];
    if (!isUint32(flowinfo)) throw invalid(`${key}[2]`, 'a flowinfo (uint32)', flowinfo);
    if (!isUint32(scopeId)) throw invalid(`${key}[3]`, 'a scope id (uint32)', scopeId);
    return [host, port, flowinfo, scopeId];
  },
  dump: (v) => [...v],
};

export const serverSpec: FieldCodec<ServerSpec, [string, [string, number]]> = {
  load(v, key) {
    if (!Array.isArray(v) || v.length !== 2) throw invalid(key, 'a server spec [scheme, [host, port]]', v);
    const scheme = literal(VIA_SCHEMES).load(v[0], `${key}[0]`);
    const addr = v[1] as unknown;
    if (!Array.isArray(addr) || addr.length !== 2)
      throw invalid(`${key}[1]`, 'an address [host, port]', addr);
    const [host, port] = address.load(addr, `${key}[1]`);
    return [scheme, [host, port]];
  },
  dump: ([scheme, [host, port]]) => [scheme, [host, port]],
};

/** Certificates live as X509Certificate objects in the model and as PEM in the state. */
export const certificate: FieldCodec<X509Certificate, string> = {
  load(v, key) {
    if (typeof v !== 'string') throw invalid(key, 'a PEM certificate', v);
    try {
      return new X509Certificate(v);
    } catch (e) {
      throw new ConnectionStateError(
        'ERR_STATE_INVALID_VALUE',
        key,
        `${key}: not a PEM certificate (${(e as Error).message})`,
      );
    }
  },
  dump: (v) => v.toString(),
};

export const transportProtocol = literal(TRANSPORT_PROTOCOLS);
export const tlsVersion = nullable(literal(TLS_VERSIONS));
