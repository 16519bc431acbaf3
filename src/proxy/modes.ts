import { SCHEMES, type Scheme } from '../transport/types.js';

/** A mode spec that does not parse. */
export class ModeError extends Error {
  override readonly name = 'ModeError';
}

/**
 * What the layers know of a flow's mode: the scheme that picks them, the upstream the flow is
 * relayed to, and the spec recorded on its Client (`proxyMode`). A reverse mode is one for all
 * its flows; a SOCKS5 flow has its own, the destination its client asked for.
 */
export interface FlowMode {
  readonly scheme: Scheme;
  readonly host: string;
  readonly port: number;
  readonly spec: string;
  /** Where the mode listens (a reverse mode's `@HOST:PORT`); absent: the proxy's default. */
  readonly listenHost?: string;
  readonly listenPort?: number;
}

/** A reverse proxy to one upstream, mitmproxy's `reverse:SCHEME://HOST:PORT`. */
export interface ReverseMode extends FlowMode {
  kind: 'reverse';
  scheme: Scheme;
  /** The upstream every client of this mode is relayed to. */
  host: string;
  port: number;
  /** The spec as given, recorded on every Client (`proxyMode`). */
  spec: string;
  /** Where to listen, from `@PORT` or `@HOST:PORT` (mitmproxy's syntax); absent: the proxy's default. */
  listenHost?: string;
  listenPort?: number;
}

/**
 * A SOCKS5 proxy (RFC 1928), mitmproxy's `socks5`, `socks5@PORT`, `socks5@HOST:PORT`: each
 * client names its destination (CONNECT for TCP, UDP ASSOCIATE for datagrams). Listens on port
 * 1080 unless the spec or the proxy's `listenPort` says otherwise.
 */
export interface Socks5Mode {
  kind: 'socks5';
  /** The spec as given, recorded on every Client (`proxyMode`). */
  spec: string;
  listenHost?: string;
  listenPort?: number;
}

/**
 * A transparent proxy, mitmproxy's `transparent`, `transparent@PORT`, `transparent@HOST:PORT`
 * (Linux, CAP_NET_ADMIN): firewall rules bring flows for other hosts here, and each flow's
 * server is the address its client dialed. TCP: TPROXY (the listening socket has
 * IP_TRANSPARENT) or REDIRECT (SO_ORIGINAL_DST). UDP: TPROXY (each datagram's IP_ORIGDSTADDR;
 * replies leave from a transparent socket bound to that address). Both on one port, and each
 * flow then goes through the next-layer decision: TLS, DTLS and QUIC are intercepted or passed
 * through as in reverse mode, anything else relayed raw.
 */
export interface TransparentMode {
  kind: 'transparent';
  /** The spec as given, recorded on every Client (`proxyMode`). */
  spec: string;
  listenHost?: string;
  listenPort?: number;
}

/** A parsed `--mode` spec (mitmproxy's strings). */
export type ProxyMode = ReverseMode | Socks5Mode | TransparentMode;

/** The port a SOCKS5 mode listens on when neither its spec nor the proxy names one (RFC 1928). */
export const SOCKS5_DEFAULT_PORT = 1080;

const HOST = String.raw`(\[[0-9a-fA-F:.%\w]+\]|[^:/[\]@]+)`;
const SPEC = new RegExp(String.raw`^reverse:([a-z]+):\/\/${HOST}:(\d{1,5})\/?(?:@(?:${HOST}:)?(\d{1,5}))?$`);
const SOCKS5 = new RegExp(String.raw`^socks5(?:@(?:${HOST}:)?(\d{1,5}))?$`);
const TRANSPARENT = new RegExp(String.raw`^transparent(?:@(?:${HOST}:)?(\d{1,5}))?$`);

const unbracket = (host: string): string => (host.startsWith('[') ? host.slice(1, -1) : host);

function port(text: string, what: string, min: number): number {
  const n = Number(text);
  if (n < min || n > 65535) throw new ModeError(`${what} out of range: ${text}`);
  return n;
}

/**
 * Parses a mode spec string: `reverse:udp://example.com:53`, `reverse:tcp://[::1]:8080`, and
 * with a listen address as mitmproxy writes it: `reverse:tls://example.com:443@8443`,
 * `reverse:quic://[::1]:443@127.0.0.1:4433`; `socks5`, `socks5@1081`, `socks5@[::1]:1080`;
 * `transparent`, `transparent@0.0.0.0:8080`.
 */
export function parseMode(spec: string): ProxyMode {
  const listening = SOCKS5.exec(spec) ?? TRANSPARENT.exec(spec);
  if (listening) {
    const mode: Socks5Mode | TransparentMode = {
      kind: spec.startsWith('socks5') ? 'socks5' : 'transparent',
      spec,
    };
    if (listening[1] !== undefined) mode.listenHost = unbracket(listening[1]);
    if (listening[2] !== undefined) mode.listenPort = port(listening[2], 'listen port', 0);
    return mode;
  }
  const m = SPEC.exec(spec);
  if (!m)
    throw new ModeError(
      `not a mode spec (reverse:SCHEME://HOST:PORT[@[HOST:]PORT], socks5[@[HOST:]PORT], transparent[@[HOST:]PORT]): ${spec}`,
    );
  const scheme = m[1] as Scheme;
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new ModeError(`unknown scheme "${m[1]}" (one of ${SCHEMES.join(', ')})`);
  }
  const mode: ReverseMode = {
    kind: 'reverse',
    scheme,
    host: unbracket(m[2]!),
    port: port(m[3]!, 'port', 1),
    spec,
  };
  if (m[4] !== undefined) mode.listenHost = unbracket(m[4]);
  if (m[5] !== undefined) mode.listenPort = port(m[5], 'listen port', 0);
  return mode;
}

/**
 * The port a mode listens on: its spec's (`@PORT`), else the proxy's `listenPort`, else 0 (a
 * free one), except `socks5`, whose port is then 1080 (RFC 1928's).
 */
export function modeListenPort(mode: ProxyMode, listenPort: number | undefined): number {
  return mode.listenPort ?? listenPort ?? (mode.kind === 'socks5' ? SOCKS5_DEFAULT_PORT : 0);
}

/** The `host:port` text of an address, IPv6 in brackets (as mode specs and `--ignore-hosts` see it). */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
