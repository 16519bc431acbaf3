/** One benchmark measurement beside its baseline, measured in the same run. */
export interface Row {
  name: string;
  /** Ours. */
  value: number;
  unit: string;
  /** The baseline's figure in the same unit (undefined when there is none). */
  baseline?: number;
  /** What the baseline is, e.g. "node:net". */
  baselineName?: string;
  /** value / baseline (for rates: higher is better). */
  ratio?: number;
}

const fmt = (n: number | undefined): string => {
  if (n === undefined) return '';
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(3);
};

/** A Markdown table, as the README carries it. */
export function formatTable(title: string, rows: readonly Row[]): string {
  const lines = [
    `### ${title}`,
    '',
    '| benchmark | wirelayer | baseline | ratio |',
    '|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline === undefined ? '' : `${fmt(r.baseline)} ${r.unit} (${r.baselineName ?? 'baseline'})`} | ${r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`} |`,
    ),
  ];
  return lines.join('\n');
}

/** A benchmark's result as Markdown: rows as a table, or the text of a table of its own shape. */
export function renderResult(title: string, result: readonly Row[] | string): string {
  return typeof result === 'string' ? `### ${title}\n\n${result}` : formatTable(title, result);
}

/** The median of repeated measurements (the machines are shared and noisy). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The median of per-round ratios of two sides measured round by round: the sides of one round ran
 * back to back, so each ratio cancels the drift of a shared machine that the medians alone keep.
 */
export function pairedRatio(ours: readonly number[], base: readonly number[]): number {
  return median(ours.map((v, i) => v / base[i]!));
}

/** Progress on stderr, so stdout keeps only the table. */
export const progress = (text: string): void => {
  process.stderr.write(`bench: ${text}\n`);
};

/** Operations per second of `op` over about `ms` milliseconds. */
export function rate(op: () => unknown, ms: number): number {
  let count = 0;
  const start = performance.now();
  const deadline = start + ms;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 64; i++) op();
    count += 64;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}
