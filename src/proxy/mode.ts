import { SCHEMES, type Scheme } from '../transport/types.js';

/** A mode spec that does not parse. */
export class ModeError extends Error {
  override readonly name = 'ModeError';
}

/** A reverse proxy to one upstream, mitmproxy's `reverse:SCHEME://HOST:PORT`. */
export interface ReverseMode {
  kind: 'reverse';
  scheme: Scheme;
  host: string;
  port: number;
  /** The spec as given, recorded on every Client (`proxyMode`). */
  spec: string;
}

/** A parsed `--mode` spec (mitmproxy's strings). */
export type ProxyMode = ReverseMode;

/** Parses a mode spec string: `reverse:udp://example.com:53`, `reverse:tcp://[::1]:8080`. */
export function parseMode(spec: string): ProxyMode {
  const m = /^reverse:([a-z]+):\/\/(\[[0-9a-fA-F:.%\w]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(spec);
  if (!m) throw new ModeError(`not a mode spec (reverse:SCHEME://HOST:PORT): ${spec}`);
  const scheme = m[1] as Scheme;
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new ModeError(`unknown scheme "${m[1]}" (one of ${SCHEMES.join(', ')})`);
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new ModeError(`port out of range: ${m[3]}`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { kind: 'reverse', scheme, host, port, spec };
}
