import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/** A peer binary (openssl, gnutls, ngtcp2, socat) run for a test, with its output collected. */
export interface PeerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output matches (bounded by `timeoutMs`). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Kills it by its pid (if still running) and waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Spawns a peer. stdin stays an open pipe: `openssl s_server`/`s_client` quit at once on stdin
 * EOF (docs/ARCHITECTURE.md, wire facts).
 */
export function spawnPeer(command: string, args: readonly string[]): PeerProcess {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  const append = (chunk: Buffer): void => {
    text += chunk.toString('latin1');
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.on('error', (err) => {
    text += `\nspawn error: ${err.message}`;
  });
  return {
    child,
    output: () => text,
    async waitFor(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = text.match(pattern);
        if (m) return m;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(
            `${command} did not print ${pattern} (exit ${child.exitCode}):\n${text.slice(-2000)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
        await exited;
      }
    },
  };
}
