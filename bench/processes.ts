/** Child processes of the benchmarks: peers found on PATH, started until ready, stopped by their id. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The executable `binary` on PATH, or null. */
export function onPath(binary: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, binary);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Runs a program to its end; its stdout. */
export function output(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`))
        : resolve(stdout),
    );
  });
}

/**
 * A long-running peer, resolved once its output matches `ready` (at once when null). Its output
 * is read (and dropped) for as long as it runs, unless `detach`: then our end of its pipes is
 * closed once it is ready, since socat's per-peer children outlive it holding them.
 */
export async function start(
  file: string,
  args: readonly string[],
  ready: RegExp | null,
  detach = false,
  env?: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(file, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  let text = '';
  let started = ready === null;
  const look = (chunk: Buffer): RegExpMatchArray | null => {
    if (started) return null;
    text += chunk.toString();
    return text.match(ready!);
  };
  if (started) {
    child.stdout!.resume();
    child.stderr!.resume();
    return { child, match: [''] as RegExpMatchArray };
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start:\n${text}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      const match = look(chunk);
      if (!match) return;
      started = true;
      clearTimeout(timer);
      if (detach) {
        child.stdout!.destroy();
        child.stderr!.destroy();
      }
      resolve({ child, match });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () => reject(new Error(`${file} exited:\n${text}`)));
  });
}

/** Stops a peer (SIGTERM) and waits for it to exit. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}
