import { BENCHMARKS } from '../../../bench/index.js';
import { formatTable } from '../../../bench/report.js';
import { parse, UsageError } from '../args.js';

export const usage = `wirelayer bench NAME [NAME...]
  Loopback benchmarks of a driver beside its baseline, measured in the same run, printed as a
  Markdown table with ratios; progress on stderr. NAME: ${Object.keys(BENCHMARKS).join(', ')}, or all.`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('which benchmark?');
  const names = positionals.includes('all') ? Object.keys(BENCHMARKS) : positionals;
  for (const name of names) {
    if (!BENCHMARKS[name]) throw new UsageError(`unknown benchmark "${name}"`);
  }
  for (const name of names) {
    const bench = BENCHMARKS[name]!;
    console.log(`${formatTable(bench.title, await bench.run())}\n`);
  }
  return 0;
}
