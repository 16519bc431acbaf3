/**
 * `wirelayer listen|proxy ... --workers N --json` run for a test: its bound port and worker pids
 * (from stderr), its JSON records as they come, and a stop by the primary's pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI } from '../cli/run.js';

export interface WorkersCli {
  readonly child: ChildProcess;
  /** The shared port (the first `listening on` line's). */
  readonly port: number;
  /** Every `listening on` line's port, in order (a proxy's modes). */
  readonly ports: readonly number[];
  /** The workers' pids, by index, as the primary printed them. */
  readonly pids: readonly number[];
  /** The records so far. */
  records(): Record<string, unknown>[];
  stderr(): string;
  /** Resolves once `count` records satisfy `match` (bounded). */
  waitForRecords(
    match: (r: Record<string, unknown>) => boolean,
    count: number,
    timeoutMs?: number,
  ): Promise<void>;
  /** Resolves once stderr matches (bounded). */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM to the primary's pid; resolves with its exit code once it and its workers are gone. */
  stop(): Promise<number | null>;
}

/** Starts the CLI with `args` and waits for its `listening on` lines (one per mode for a proxy). */
export async function startWorkersCli(
  args: readonly string[],
  modes = 1,
  timeoutMs = 30_000,
): Promise<WorkersCli> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const records: Record<string, unknown>[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    let nl = stdout.indexOf('\n');
    while (nl !== -1) {
      const line = stdout.slice(0, nl);
      stdout = stdout.slice(nl + 1);
      if (line.length > 0) records.push(JSON.parse(line) as Record<string, unknown>);
      nl = stdout.indexOf('\n');
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const poll = async <T>(get: () => T | null, what: string, ms: number): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = get();
      if (value !== null) return value;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `wirelayer ${args.join(' ')}: no ${what} (exit ${child.exitCode}):\n${stderr.slice(-3000)}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const lines = await poll(
    () => {
      const found = [...stderr.matchAll(/listening on \S+:\/\/\S+:(\d+).* workers \(pids ([\d, ]+)\)/g)];
      return found.length >= modes ? found : null;
    },
    '"listening on" line',
    timeoutMs,
  );
  const ports = lines.map((m) => Number(m[1]));
  const pids = lines[0]![2]!.split(', ').map(Number);
  return {
    child,
    port: ports[0]!,
    ports,
    pids,
    records: () => records,
    stderr: () => stderr,
    waitForRecords: (match, count, ms = 20_000) =>
      poll(() => (records.filter(match).length >= count ? true : null), `${count} matching records`, ms).then(
        () => undefined,
      ),
    waitForStderr: (pattern, ms = 20_000) => poll(() => stderr.match(pattern), `stderr ${pattern}`, ms),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit') as Promise<[number | null]>;
      process.kill(child.pid!, 'SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}

/** Whether a process is still there (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Groups model records by a key (a session's `id`, a flow's peer) and gives each group's workers. */
export function workersBy(
  records: readonly Record<string, unknown>[],
  key: (r: Record<string, unknown>) => string | null,
): Map<string, Set<unknown>> {
  const by = new Map<string, Set<unknown>>();
  for (const r of records) {
    const k = key(r);
    if (k === null) continue;
    const set = by.get(k) ?? new Set<unknown>();
    by.set(k, set);
    set.add(r.worker);
  }
  return by;
}

export interface WorkersScript {
  readonly child: ChildProcess;
  readonly port: number;
  /** The workers as the primary listed them once started. */
  readonly workers: readonly { index: number; pid: number; state: string }[];
  /** Every JSON line the primary printed so far. */
  lines(): Record<string, unknown>[];
  /** SIGTERM to the primary; its exit code once gone. */
  stop(): Promise<number | null>;
}

/** Runs test/fixtures/workers/server.mjs (the cluster model through the API) with `args`. */
export async function startWorkersScript(
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<WorkersScript> {
  const script = new URL('../fixtures/workers/server.mjs', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const p of parts) if (p) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + timeoutMs;
  let start = lines.find((l) => 'listening' in l);
  for (; start === undefined; start = lines.find((l) => 'listening' in l)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `server.mjs ${args.join(' ')} did not start (exit ${child.exitCode}):\n${stderr.slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    port: (start.listening as [string, number])[1],
    workers: start.workers as { index: number; pid: number; state: string }[],
    lines: () => lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit') as Promise<[number | null]>;
      process.kill(child.pid!, 'SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}
