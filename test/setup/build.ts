import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Before any test: build dist/ once (CLI tests run the built `wirelayer`), and point the CA
 * directory at a temporary one, so tests (and the CLIs they spawn) never touch ~/.wirelayer.
 */
export default function setup(): () => void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  const confdir = mkdtempSync(join(tmpdir(), 'wirelayer-test-ca-'));
  process.env.WIRELAYER_CONFDIR = confdir;
  return () => rmSync(confdir, { recursive: true, force: true });
}
