import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { provisionPeers, which } from './peers.js';

/** The addons binding.gyp builds: the DTLS engine and the datagram sockets. */
const ADDONS = ['wirelayer_dtls.node', 'wirelayer_udp.node'].map((f) => join('build', 'Release', f));

/** Newest modification time of the addons' sources (native/dtls, native/udp and binding.gyp). */
function newestSource(): number {
  const files = [
    'binding.gyp',
    ...['dtls', 'udp'].flatMap((dir) => readdirSync(join('native', dir)).map((f) => join('native', dir, f))),
  ];
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
 * The tests run the addons compiled from this clone's native/ (the loaders prefer build/Release
 * over a prebuilt one): compile them when one is missing (`npm pack` moves them to prebuilds/) or
 * older than the sources. Against this Node's own headers where it has them.
 */
function buildEngine(): void {
  const newest = newestSource();
  if (ADDONS.every((addon) => existsSync(addon) && statSync(addon).mtimeMs >= newest)) return;
  process.stderr.write(
    `wirelayer tests: compiling the native addons (${ADDONS.join(', ')}: missing or older than native/)\n`,
  );
  const prefix = dirname(dirname(process.execPath));
  const nodedir = existsSync(join(prefix, 'include', 'node', 'node_version.h'))
    ? [`--nodedir=${prefix}`]
    : [];
  execFileSync(process.execPath, [nodeGyp(), 'rebuild', ...nodedir], { stdio: ['ignore', 2, 2] });
}

/**
 * Before any test: the peers the tests run (installed, or the run stops: peers.ts), dist/ built
 * once (CLI tests run the built `wirelayer`), the native addons compiled if stale, and the CA
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
