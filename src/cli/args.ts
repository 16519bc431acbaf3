import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { TLS_VERSIONS, type TlsVersion } from '../connection/index.js';
import { AddressSet } from '../transport/datagram/address-set.js';
import { type ConnectOptions, type ListenOptions, SCHEMES, type Scheme } from '../transport/types.js';
import { MAX_WORKERS, type WorkerCount } from '../workers/protocol.js';

/** Bad usage: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The options every scheme shares (the command-line contract, docs/ARCHITECTURE.md). */
export const commonOptions = {
  json: { type: 'boolean' },
  sni: { type: 'string' },
  alpn: { type: 'string' },
  insecure: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'tls-min': { type: 'string' },
  'tls-max': { type: 'string' },
  ciphers: { type: 'string' },
  keylog: { type: 'string' },
  'idle-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type CommonValues = {
  json?: boolean;
  sni?: string;
  alpn?: string;
  insecure?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  'tls-min'?: string;
  'tls-max'?: string;
  ciphers?: string;
  keylog?: string;
  'idle-timeout'?: string;
  help?: boolean;
};

/** parseArgs with usage errors as UsageError. */
type Parsed<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>
>;
type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<const T extends Options>(args: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export interface Target {
  scheme: Scheme;
  host: string;
  port: number;
}

/** `SCHEME://HOST:PORT`, IPv6 in brackets. */
export function parseTarget(text: string | undefined): Target {
  if (!text) throw new UsageError('missing SCHEME://HOST:PORT');
  const m = /^([a-z]+):\/\/(\[[0-9a-fA-F:.%\w]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(text);
  if (!m) throw new UsageError(`not SCHEME://HOST:PORT: ${text}`);
  const scheme = m[1] as Scheme;
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new UsageError(`unknown scheme "${m[1]}" (one of ${SCHEMES.join(', ')})`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`port out of range: ${m[3]}`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { scheme, host, port };
}

function tlsVersion(name: string | undefined, flag: string): TlsVersion | undefined {
  if (name === undefined) return undefined;
  if (!(TLS_VERSIONS as readonly string[]).includes(name)) {
    throw new UsageError(`${flag}: unknown version "${name}" (one of ${TLS_VERSIONS.join(', ')})`);
  }
  return name as TlsVersion;
}

function readPem(path: string | undefined, flag: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Maps the shared flags to driver options (named as in `node:tls`). */
export function securityOptions(v: CommonValues): ListenOptions & Partial<ConnectOptions> {
  if ((v.cert === undefined) !== (v.key === undefined)) throw new UsageError('--cert and --key go together');
  let idleTimeout: number | undefined;
  if (v['idle-timeout'] !== undefined) {
    const seconds = Number(v['idle-timeout']);
    if (!Number.isFinite(seconds) || seconds < 0)
      throw new UsageError(`--idle-timeout: not a number of seconds: ${v['idle-timeout']}`);
    idleTimeout = seconds * 1000;
  }
  const options: ListenOptions & Partial<ConnectOptions> = {
    servername: v.sni,
    ALPNProtocols: v.alpn?.split(',').filter((p) => p.length > 0),
    rejectUnauthorized: v.insecure ? false : undefined,
    ca: readPem(v.ca, '--ca'),
    cert: readPem(v.cert, '--cert'),
    key: readPem(v.key, '--key'),
    minVersion: tlsVersion(v['tls-min'], '--tls-min'),
    maxVersion: tlsVersion(v['tls-max'], '--tls-max'),
    ciphers: v.ciphers,
    keylog: v.keylog,
    idleTimeout,
  };
  for (const key of Object.keys(options) as (keyof typeof options)[]) {
    if (options[key] === undefined) delete options[key];
  }
  return options;
}

/** `--proxy-protocol-from` values: every entry of every (comma-separated) value, parsed. */
export function trustedSenders(values: readonly string[], flag: string): AddressSet {
  try {
    return new AddressSet(values.flatMap((v) => v.split(',')).filter((e) => e.trim().length > 0));
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

/** `--workers N|auto`: absent is 1 (no worker processes). */
export function parseWorkers(text: string | undefined): WorkerCount {
  if (text === undefined) return 1;
  if (text === 'auto') return 'auto';
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_WORKERS)
    throw new UsageError(`--workers: an integer from 1 to ${MAX_WORKERS}, or auto, not ${text}`);
  return n;
}
