/**
 * What a load run reports: counters per span (an interval, or the whole run), the record made of
 * them (the JSON keys of `wirelayer load --json`), and its Markdown row and progress line. Pure.
 */
import type { Scheme } from '../transport/types.js';
import { LatencyHistogram, NO_PERCENTILES, type Percentiles } from './histogram.js';
import type { LoadPlan } from './spec.js';

/**
 * One interval's or the whole run's figures (`--json` prints one per line). Keys that do not
 * apply to the run are null: `sent` when only receiving from a stream source, `received` when
 * sending to a discard, `loss` except over datagrams (echo, receive), latency percentiles when
 * nothing comes back to time.
 */
export interface LoadRecord {
  event: 'interval' | 'summary';
  scheme: Scheme;
  /** Seconds since sending started, at the end of this span (the summary: the run's length). */
  seconds: number;
  /** Messages done: round trips (echo), messages sent (send) or received (receive). */
  messages: number;
  messages_per_s: number;
  /** Payload bytes of those messages per second, one direction. */
  bytes_per_s: number;
  /** Messages (or, receiving datagrams, requests) sent. */
  sent: number | null;
  /** Replies (echo) or messages (receive) received. */
  received: number | null;
  /** Datagrams: the fraction lost, of those answered or given up in the span. */
  loss: number | null;
  /** Round trip of a message, from its scheduled send time (open loop) or its send (closed loop). */
  latency_ms: Percentiles;
  /** Sessions set up (connected, and handshaken where there is a handshake). */
  handshakes: number;
  /** From the start of a connect (open loop: its scheduled time) until the session is up. */
  handshake_ms: Percentiles;
  /** Failures by code: connects (ConnectError codes), sessions that ended, late or stray replies. */
  errors: Record<string, number>;
  /** The generator's own CPU use (user + system) as a share of one core: near 100 it is the bottleneck. */
  cpu_percent: number;
}

/** Error codes of replies that match no datagram in flight. */
export const ERR_LATE_REPLY = 'ERR_LOAD_LATE_REPLY';
export const ERR_DUPLICATE_REPLY = 'ERR_LOAD_DUPLICATE_REPLY';
export const ERR_UNMATCHED_REPLY = 'ERR_LOAD_UNMATCHED_REPLY';
/** An answer whose size is not the datagram's (echo) or the one asked for (receive). */
export const ERR_REPLY_SIZE = 'ERR_LOAD_REPLY_SIZE';

/** The counts of one span. */
export class LoadCounters {
  messages = 0;
  bytes = 0;
  sent = 0;
  received = 0;
  lost = 0;
  handshakes = 0;
  readonly latency = new LatencyHistogram();
  readonly handshake = new LatencyHistogram();
  readonly errors = new Map<string, number>();

  error(code: string, n = 1): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + n);
  }

  /** Adds this span's counts to `total`. */
  addTo(total: LoadCounters): void {
    total.messages += this.messages;
    total.bytes += this.bytes;
    total.sent += this.sent;
    total.received += this.received;
    total.lost += this.lost;
    total.handshakes += this.handshakes;
    total.latency.add(this.latency);
    total.handshake.add(this.handshake);
    for (const [code, n] of this.errors) total.error(code, n);
  }

  reset(): void {
    this.messages = 0;
    this.bytes = 0;
    this.sent = 0;
    this.received = 0;
    this.lost = 0;
    this.handshakes = 0;
    this.latency.reset();
    this.handshake.reset();
    this.errors.clear();
  }
}

/** Which keys of a record apply to a run. */
export interface RecordShape {
  sent: boolean;
  received: boolean;
  loss: boolean;
  latency: boolean;
}

/** What a plan measures. */
export function recordShape(plan: Pick<LoadPlan, 'mode' | 'datagram'>): RecordShape {
  const { mode, datagram } = plan;
  return {
    // a stream source needs no requests; datagram sources answer one each
    sent: mode !== 'receive' || datagram,
    received: mode !== 'send',
    loss: datagram && mode !== 'send',
    latency: mode === 'echo' || (mode === 'receive' && datagram),
  };
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/** The record of a span `spanSeconds` long that ends `seconds` after the start. */
export function makeRecord(
  event: LoadRecord['event'],
  scheme: Scheme,
  shape: RecordShape,
  c: LoadCounters,
  seconds: number,
  spanSeconds: number,
  cpuPercent: number,
): LoadRecord {
  const span = spanSeconds > 0 ? spanSeconds : Number.POSITIVE_INFINITY;
  const resolved = c.received + c.lost;
  return {
    event,
    scheme,
    seconds: round(seconds, 3),
    messages: c.messages,
    messages_per_s: round(c.messages / span, 1),
    bytes_per_s: Math.round(c.bytes / span),
    sent: shape.sent ? c.sent : null,
    received: shape.received ? c.received : null,
    loss: shape.loss && resolved > 0 ? round(c.lost / resolved, 6) : null,
    latency_ms: shape.latency ? c.latency.percentiles() : { ...NO_PERCENTILES },
    handshakes: c.handshakes,
    handshake_ms: c.handshake.percentiles(),
    errors: Object.fromEntries([...c.errors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    cpu_percent: round(cpuPercent, 1),
  };
}

const dash = (v: number | null, digits = 3): string => (v === null ? '-' : String(round(v, digits)));
const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');
const errorText = (errors: Record<string, number>): string => {
  const parts = Object.entries(errors).map(([code, n]) => `${code}=${n}`);
  return parts.length > 0 ? parts.join(' ') : '-';
};

/** The Markdown table's head (two lines). */
export function tableHead(): string {
  return [
    '| event | s | messages | msg/s | MB/s | sent | received | loss | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | handshakes | hs p50 ms | hs p99 ms | errors | cpu % |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ].join('\n');
}

/** One record as a row of the Markdown table. */
export function tableRow(r: LoadRecord): string {
  const l = r.latency_ms;
  const h = r.handshake_ms;
  const cells = [
    r.event,
    r.seconds.toFixed(1),
    thousands(r.messages),
    thousands(r.messages_per_s),
    (r.bytes_per_s / 1e6).toFixed(2),
    r.sent === null ? '-' : thousands(r.sent),
    r.received === null ? '-' : thousands(r.received),
    r.loss === null ? '-' : `${(r.loss * 100).toFixed(2)}%`,
    dash(l.p50),
    dash(l.p90),
    dash(l.p99),
    dash(l.p999),
    dash(l.max),
    thousands(r.handshakes),
    dash(h.p50),
    dash(h.p99),
    errorText(r.errors),
    r.cpu_percent.toFixed(0),
  ];
  return `| ${cells.join(' | ')} |`;
}

/** A one-line summary of an interval for a terminal (stderr), without a newline. */
export function progressLine(r: LoadRecord): string {
  const parts = [
    `${r.seconds.toFixed(1)} s`,
    `${thousands(r.messages_per_s)} msg/s`,
    `${(r.bytes_per_s / 1e6).toFixed(2)} MB/s`,
  ];
  if (r.latency_ms.p99 !== null) parts.push(`p99 ${dash(r.latency_ms.p99)} ms`);
  if (r.loss !== null) parts.push(`loss ${(r.loss * 100).toFixed(2)}%`);
  if (r.handshakes > 0) parts.push(`${thousands(r.handshakes)} hs`);
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  if (errors > 0) parts.push(`${errors} errors`);
  parts.push(`cpu ${r.cpu_percent.toFixed(0)}%`);
  return `wirelayer load: ${parts.join('  ')}`;
}
