import type { EventEmitter } from 'node:events';
import { formatAddress } from '../connection/index.js';
import type { WorkerGroup, WorkerInfo } from '../workers/index.js';
import { workerRecordLine } from './output.js';

/** Resolves once `target` emits `close`; SIGINT or SIGTERM meanwhile aborts `stop` (which closes it). */
export async function untilSignal(target: EventEmitter, stop: AbortController): Promise<void> {
  const closed = new Promise<void>((resolve) => target.once('close', () => resolve()));
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await closed;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

/**
 * The primary of `--workers`: says where it listens (stderr), prints the workers' records (JSON
 * as they come, or readable lines), reports each worker that exits, and closes the group on
 * SIGINT/SIGTERM. Exit status 0, or 1 when the group ended by itself (every worker gone).
 */
export async function runPrimary(
  group: WorkerGroup,
  json: boolean,
  stop: AbortController,
  line?: (record: Readonly<Record<string, unknown>>) => string | null,
): Promise<number> {
  group.on('record', (record: Record<string, unknown>) => {
    const text = json ? JSON.stringify(record) : (line?.(record) ?? workerRecordLine(record));
    if (text !== null) process.stdout.write(`${text}\n`);
  });
  group.on(
    'exit',
    (info: WorkerInfo, code: number | null, signal: NodeJS.Signals | null, respawn: boolean) => {
      if (stop.signal.aborted) return;
      process.stderr.write(
        `wirelayer: worker ${info.index} exited (${signal ?? `code ${code}`})${respawn ? ', starting another' : ''}\n`,
      );
    },
  );
  group.on('online', (info: WorkerInfo) => {
    if (info.starts > 1) process.stderr.write(`wirelayer: worker ${info.index} is back (pid ${info.pid})\n`);
  });
  const pids = group.workers.map((w) => w.pid).join(', ');
  for (const l of group.listening) {
    process.stderr.write(
      `wirelayer: listening on ${l.scheme}://${formatAddress(l.address)}${l.mode === null ? '' : ` (${l.mode})`} with ${group.count} workers (pids ${pids})\n`,
    );
  }
  stop.signal.addEventListener('abort', () => void group.close(), { once: true });
  await untilSignal(group, stop);
  return stop.signal.aborted ? 0 : 1;
}
