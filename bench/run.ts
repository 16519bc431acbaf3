/** `npm run bench`: every benchmark in turn, each printed as a table with its ratios. */
import { BENCHMARKS } from './index.js';
import { formatTable } from './report.js';

const only = process.argv.slice(2);
for (const [name, bench] of Object.entries(BENCHMARKS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`${formatTable(bench.title, await bench.run())}\n`);
}
