/**
 * What a load run is asked to do (`LoadOptions`, the API's and the CLI's terms) and the plan it
 * runs (`LoadPlan`: every default filled, every term checked). Pure: no sockets, no clock.
 */
import { SCHEMES, type Scheme, type SecurityOptions } from '../transport/types.js';
import type { LoadRecord } from './report.js';

/** What the generator measures: round trips, one way out, or one way in. */
export type LoadMode = 'echo' | 'send' | 'receive';
/** Every `LoadMode`, for parsers. */
export const LOAD_MODES: readonly LoadMode[] = ['echo', 'send', 'receive'];

/** Options of `load()`, named as the `wirelayer load` flags (camelCase). */
export interface LoadOptions extends SecurityOptions {
  scheme: Scheme;
  host: string;
  port: number;
  /**
   * `echo` (default): each message comes back, round trips are timed; `send`: messages go out
   * to a discard server; `receive`: a source sends (stream transports: as fast as the stream
   * lets it; datagram transports: one datagram of `size` bytes for each small request).
   */
  mode?: LoadMode;
  /** Sessions in parallel (default 1); with `handshakes`, sessions set up at once at most. */
  connections?: number;
  /** QUIC: bidirectional streams per session, each its own message channel (default 1). */
  streams?: number;
  /** QUIC: DATAGRAM frames instead of streams. */
  datagrams?: boolean;
  /** Message (datagram) size in bytes (default 64; datagrams carry a 16-byte header, so >= 16). */
  size?: number;
  /**
   * Open loop: messages per second in total, sent at their scheduled times whatever the replies
   * do; latency is measured from the scheduled time, so a slow server cannot hide its queue
   * (no coordinated omission).
   */
  rate?: number;
  /**
   * Closed loop: messages in flight per channel (a session, or a QUIC stream); default 1. Echo
   * and receive only: sending without a rate goes as fast as the transport takes.
   */
  window?: number;
  /** Seconds to send for (default 10, unless `count`). */
  duration?: number;
  /** Messages (with `handshakes`: sessions) in total, instead of a duration. */
  count?: number;
  /** A new session per request: handshakes/s and handshake latency. */
  handshakes?: boolean;
  /**
   * Milliseconds a reply may take (default 2000): a datagram not answered by then is lost (and
   * an answer after it is late); at the end, how long outstanding replies are waited for.
   */
  timeout?: number;
  /** Milliseconds for each connect and handshake (default 5000). */
  connectTimeout?: number;
  /** Milliseconds between interval records (default 1000). */
  interval?: number;
  /** Aborting stops sending; the run then ends as at its deadline (replies waited for, summary). */
  signal?: AbortSignal;
  /** Called with each interval record as it is made. */
  onInterval?: (record: LoadRecord) => void;
}

/** A bad load option: `option` names it (as in `LoadOptions`); `code` is ERR_LOAD_OPTION. */
export class LoadOptionError extends Error {
  override readonly name = 'LoadOptionError';
  readonly code = 'ERR_LOAD_OPTION';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
  }
}

/** Bytes at the start of every datagram: sequence number, requested reply size, send time. */
export const DATAGRAM_HEADER_BYTES = 16;

/** Largest datagram each datagram transport carries here (QUIC: what fits one DATAGRAM frame). */
const MAX_DATAGRAM: Record<'udp' | 'dtls' | 'quic', number> = { udp: 65_507, dtls: 16_384, quic: 1200 };
const MAX_STREAM_MESSAGE = 16 * 1024 * 1024;
/** quiche's initial_max_streams_bidi as the drivers configure it. */
const MAX_QUIC_STREAMS = 128;

/** A load run with every default filled in. */
export interface LoadPlan {
  readonly scheme: Scheme;
  readonly host: string;
  readonly port: number;
  readonly security: SecurityOptions;
  readonly mode: LoadMode;
  readonly connections: number;
  readonly streams: number;
  /** Messages are datagrams (UDP, DTLS, QUIC with `datagrams`), else bytes on streams. */
  readonly datagram: boolean;
  readonly size: number;
  /** Messages per second in total (open loop), or null (closed loop). */
  readonly rate: number | null;
  /** In flight per channel (closed loop); with `handshakes`, sessions per connection slot. */
  readonly window: number;
  /** Milliseconds of sending, or null with `count`. */
  readonly durationMs: number | null;
  readonly count: number | null;
  readonly handshakes: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly intervalMs: number;
}

function integer(
  option: string,
  value: number | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max)
    throw new LoadOptionError(option, `an integer in ${min}..${max}, not ${value}`);
  return value;
}

function positive(option: string, value: number | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0 || value > max)
    throw new LoadOptionError(option, `a number above 0 and at most ${max}, not ${value}`);
  return value;
}

/** Checks every option and fills the defaults; throws LoadOptionError naming the bad one. */
export function planLoad(o: LoadOptions): LoadPlan {
  if (!(SCHEMES as readonly string[]).includes(o.scheme))
    throw new LoadOptionError('scheme', `one of ${SCHEMES.join(', ')}, not ${String(o.scheme)}`);
  if (typeof o.host !== 'string' || o.host.length === 0) throw new LoadOptionError('host', 'missing');
  integer('port', o.port, 1, 65_535, 0);
  const mode = o.mode ?? 'echo';
  if (!LOAD_MODES.includes(mode))
    throw new LoadOptionError('mode', `one of ${LOAD_MODES.join(', ')}, not ${mode}`);
  const quic = o.scheme === 'quic';
  if (o.datagrams && !quic)
    throw new LoadOptionError('datagrams', `QUIC only (DATAGRAM frames), not ${o.scheme}`);
  if (o.streams !== undefined && !quic) throw new LoadOptionError('streams', `QUIC only, not ${o.scheme}`);
  if (o.streams !== undefined && o.datagrams)
    throw new LoadOptionError('streams', 'not with datagrams (DATAGRAM frames belong to no stream)');
  const datagram = o.scheme === 'udp' || o.scheme === 'dtls' || (quic && o.datagrams === true);
  const connections = integer('connections', o.connections, 1, 10_000, 1);
  const streams = integer('streams', o.streams, 1, MAX_QUIC_STREAMS, 1);
  const maxSize = datagram ? MAX_DATAGRAM[o.scheme as 'udp' | 'dtls' | 'quic'] : MAX_STREAM_MESSAGE;
  const minSize = datagram ? DATAGRAM_HEADER_BYTES : 1;
  const size = integer('size', o.size, minSize, maxSize, Math.max(64, minSize));
  const rate = positive('rate', o.rate, 10_000_000);
  if (rate !== undefined && o.window !== undefined)
    throw new LoadOptionError('window', 'closed loop; rate is open loop: one or the other');
  const window = integer('window', o.window, 1, 65_536, 1);
  if (o.duration !== undefined && o.count !== undefined)
    throw new LoadOptionError('count', 'a count or a duration, not both');
  const duration = positive('duration', o.duration, 86_400);
  const count = o.count === undefined ? null : integer('count', o.count, 1, Number.MAX_SAFE_INTEGER, 1);
  if (mode === 'receive' && !datagram && !o.handshakes && (rate !== undefined || o.window !== undefined)) {
    throw new LoadOptionError(
      rate !== undefined ? 'rate' : 'window',
      `does not apply to receive over a stream (the source sends as fast as ${o.scheme} lets it)`,
    );
  }
  const timeoutMs = positive('timeout', o.timeout, 3_600_000) ?? 2000;
  const connectTimeoutMs = positive('connectTimeout', o.connectTimeout, 3_600_000) ?? 5000;
  const intervalMs = integer('interval', o.interval, 10, 3_600_000, 1000);
  const security: SecurityOptions = {
    servername: o.servername,
    ALPNProtocols: o.ALPNProtocols,
    rejectUnauthorized: o.rejectUnauthorized,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ciphers: o.ciphers,
    keylog: o.keylog,
  };
  for (const k of Object.keys(security) as (keyof SecurityOptions)[]) {
    if (security[k] === undefined) delete security[k];
  }
  return {
    scheme: o.scheme,
    host: o.host,
    port: o.port,
    security,
    mode,
    connections,
    streams,
    datagram,
    size,
    rate: rate ?? null,
    window,
    durationMs: count !== null ? null : (duration ?? 10) * 1000,
    count,
    handshakes: o.handshakes === true,
    timeoutMs,
    connectTimeoutMs,
    intervalMs,
  };
}
