/**
 * The CLI's command table: `--help` is built from it without loading any command module, so its
 * lines must match each module's own usage; bench/ is imported only when a benchmark runs; and
 * the built `wirelayer` runs when started through a symlink, as npm's bin link starts it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BENCHMARKS } from '../../bench/index.js';
import { RELAYS } from '../../bench/udp.js';
import { BENCH_NAMES, RELAY_NAMES } from '../../src/cli/commands/bench.js';
import { COMMANDS } from '../../src/cli/main.js';
import { CLI, runCli } from '../cli/run.js';

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the command table', () => {
  it.each(Object.entries(COMMANDS))(
    '%s: the --help line is the first line of its usage',
    async (_name, entry) => {
      const command = await entry.load();
      expect(command.usage.split('\n')[0]).toBe(entry.synopsis);
    },
  );

  it('names every benchmark and relay bench/ has', () => {
    expect([...BENCH_NAMES]).toEqual(Object.keys(BENCHMARKS));
    expect([...RELAY_NAMES]).toEqual([...RELAYS]);
  });

  it('nothing in src/ imports bench/ at load time (type imports aside)', () => {
    const offenders = sourceFiles(SRC).filter((file) =>
      /^\s*(import|export)\s+(?!type\b)[^;]*?from\s+['"][^'"]*\/bench\//m.test(readFileSync(file, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });
});

describe('the built wirelayer', () => {
  it('runs when started through a symlink (node_modules/.bin/wirelayer)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wirelayer-bin-'));
    try {
      const link = join(dir, 'wirelayer');
      symlinkSync(CLI, link);
      const stdout = await new Promise<string>((done, fail) => {
        execFile(process.execPath, [link, '--help'], { timeout: 20_000 }, (err, out, errText) =>
          err ? fail(new Error(`${err.message}\n${errText}`)) : done(out),
        );
      });
      for (const { synopsis } of Object.values(COMMANDS)) expect(stdout).toContain(synopsis);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says which command is unknown, without loading any', async () => {
    const r = await runCli(['toString']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "toString"');
  });
});
