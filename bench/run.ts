/** `npm run bench [NAME...]`: every benchmark (or those named) in turn, each as a table with its ratios. */
import { BENCHMARKS } from './index.js';
import { renderResult } from './report.js';

const only = process.argv.slice(2);
for (const [name, bench] of Object.entries(BENCHMARKS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`${renderResult(bench.title, await bench.run())}\n`);
}
