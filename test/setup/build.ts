import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { provisionPeers, which } from './peers.js';

const ADDON = join('build', 'Release', 'wirelayer_dtls.node');

/** Newest modification time of the engine's sources (native/dtls and binding.gyp). */
function newestSource(): number {
  const files = ['binding.gyp', ...readdirSync(join('native', 'dtls')).map((f) => join('native', 'dtls', f))];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** npm's own node-gyp: the one `npm test` names, else the one of the npm on PATH. */
function nodeGyp(): string {
  const named = process.env.npm_config_node_gyp;
  if (named && existsSync(named)) return named;
  const npm = which('npm', process.env.PATH ?? '');
  if (npm === null)
    throw new Error('wirelayer tests: no npm on PATH, whose node-gyp compiles the DTLS engine');
  return join(dirname(realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

/**
 * The tests run the DTLS engine compiled from this clone's native/dtls (the loader prefers
 * build/Release over a prebuilt one): compile it when it is missing (`npm pack` moves it to
 * prebuilds/) or older than its sources. Against this Node's own headers where it has them.
 */
function buildEngine(): void {
  if (existsSync(ADDON) && statSync(ADDON).mtimeMs >= newestSource()) return;
  process.stderr.write(
    `wirelayer tests: compiling the DTLS engine (${ADDON} is missing or older than native/dtls)\n`,
  );
  const prefix = dirname(dirname(process.execPath));
  const nodedir = existsSync(join(prefix, 'include', 'node', 'node_version.h'))
    ? [`--nodedir=${prefix}`]
    : [];
  execFileSync(process.execPath, [nodeGyp(), 'rebuild', ...nodedir], { stdio: ['ignore', 2, 2] });
}

/**
 * Before any test: the peers the tests run (installed, or the run stops: peers.ts), dist/ built
 * once (CLI tests run the built `wirelayer`), the DTLS engine compiled if stale, and the CA
 * directory pointed at a temporary one, so tests (and the CLIs they spawn) never touch ~/.wirelayer.
 */
export default function setup(): () => void {
  provisionPeers();
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  buildEngine();
  const confdir = mkdtempSync(join(tmpdir(), 'wirelayer-test-ca-'));
  process.env.WIRELAYER_CONFDIR = confdir;
  return () => rmSync(confdir, { recursive: true, force: true });
}
