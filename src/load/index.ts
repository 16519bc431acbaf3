/**
 * The load generator (`wirelayer load`, `load()`) and the server behaviours it runs against
 * (`wirelayer listen --echo | --discard | --source`, `serve()`).
 */
import type { LoadRecord } from './report.js';
import { LoadRun } from './run.js';
import { type LoadOptions, planLoad } from './spec.js';

export type { Percentiles } from './histogram.js';
export { type LoadRecord, progressLine, tableHead, tableRow } from './report.js';
export { SERVE_BEHAVIOURS, type ServeBehaviour, serve } from './serve.js';
export { LOAD_MODES, type LoadMode, LoadOptionError, type LoadOptions, planLoad } from './spec.js';

/**
 * Runs a load against `scheme://host:port` and resolves to the summary record (each interval's
 * record goes to `onInterval` as it is made). Options are checked first: a bad one rejects with
 * a `LoadOptionError` naming it. Failures while running (connects refused or timed out, sessions
 * that end, late or stray replies) are counted in `errors` by code, never thrown; a target that
 * does not answer ends the run at its deadline (connect timeout, duration, reply timeout).
 */
export function load(options: LoadOptions): Promise<LoadRecord> {
  try {
    const plan = planLoad(options);
    return new LoadRun(plan, options.onInterval, options.signal).run();
  } catch (e) {
    return Promise.reject(e);
  }
}
