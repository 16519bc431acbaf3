/**
 * Latency percentiles from an HDR histogram (hdr-histogram-js, its pure-JS implementation: no
 * WebAssembly to initialise). Values are recorded in microseconds with 3 significant digits, so
 * every percentile is within 0.1% of the true value, from 1 µs to an hour.
 */
import { build, type Histogram } from 'hdr-histogram-js';

/** The percentiles a load record reports, in milliseconds (null when nothing was measured). */
export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

/** Percentiles with every value null: nothing was measured, or it does not apply. */
export const NO_PERCENTILES: Readonly<Percentiles> = Object.freeze({
  p50: null,
  p90: null,
  p99: null,
  p999: null,
  max: null,
});

const HOUR_US = 3_600_000_000;
/** Microseconds as milliseconds, rounded to the microsecond. */
const ms = (us: number): number => Math.round(us) / 1000;

/** Latencies in milliseconds in, percentiles out. */
export class LatencyHistogram {
  readonly #h: Histogram;
  /** The exact largest value (the histogram's own is rounded to its buckets). */
  #max = 0;

  constructor() {
    this.#h = build({
      bitBucketSize: 32,
      autoResize: true,
      lowestDiscernibleValue: 1,
      highestTrackableValue: HOUR_US,
      numberOfSignificantValueDigits: 3,
      useWebAssembly: false,
    });
  }

  /** Hot path: one latency, in milliseconds (below 1 µs counts as 1 µs). */
  record(latencyMs: number): void {
    const us = Math.max(1, Math.min(Math.round(latencyMs * 1000), HOUR_US));
    if (us > this.#max) this.#max = us;
    this.#h.recordValue(us);
  }

  /** Values recorded. */
  get count(): number {
    return this.#h.totalCount;
  }

  /** p50, p90, p99, p99.9 and max in milliseconds; all null when empty. */
  percentiles(): Percentiles {
    const h = this.#h;
    if (h.totalCount === 0) return { ...NO_PERCENTILES };
    // a bucket's upper edge can pass the largest value in it: no percentile above the max
    const max = this.#max;
    const at = (p: number): number => ms(Math.min(h.getValueAtPercentile(p), max));
    return { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: ms(max) };
  }

  /** Adds every value of `other` to this one. */
  add(other: LatencyHistogram): void {
    this.#h.add(other.#h);
    if (other.#max > this.#max) this.#max = other.#max;
  }

  reset(): void {
    this.#h.reset();
    this.#max = 0;
  }
}
