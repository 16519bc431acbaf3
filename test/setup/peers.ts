/**
 * The programs the tests run as real peers, and what `npm test` does when some are missing:
 * as root with apt-get, install their Debian packages (and say so on stderr); otherwise stop
 * before any test with one line naming them and the command that installs them. No test skips
 * itself for a missing peer.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A program some test spawns, and the Debian package that has it. */
export interface Peer {
  readonly binary: string;
  readonly debian: string;
}

/** Every program a test spawns by name (grep test/ for spawn, spawnPeer, execFileSync). */
export const PEERS: readonly Peer[] = [
  { binary: 'openssl', debian: 'openssl' },
  { binary: 'gnutls-cli', debian: 'gnutls-bin' },
  { binary: 'gnutls-serv', debian: 'gnutls-bin' },
  { binary: 'gtlsclient', debian: 'ngtcp2-client' },
  { binary: 'gtlsserver', debian: 'ngtcp2-server' },
  { binary: 'tshark', debian: 'tshark' },
  { binary: 'socat', debian: 'socat' },
  // the SOCKS5 CONNECT tests' client and the interception matrix's TLS and TCP client
  { binary: 'curl', debian: 'curl' },
  // the load benchmark's baseline (test/load/bench.test.ts runs it)
  { binary: 'iperf3', debian: 'iperf3' },
  { binary: 'ss', debian: 'iproute2' },
  // the transparent-proxy test's namespaces, veth pair and TPROXY rule (test/native/transparent.test.ts)
  { binary: 'ip', debian: 'iproute2' },
  { binary: 'nft', debian: 'nftables' },
  { binary: 'ps', debian: 'procps' },
  { binary: 'python3', debian: 'python3' },
  // the loader test links a stand-in addon
  { binary: 'cc', debian: 'gcc' },
];

/** What to do about the peers. */
export type PeerPlan =
  | { readonly action: 'none' }
  | { readonly action: 'install'; readonly missing: readonly string[]; readonly packages: readonly string[] }
  | { readonly action: 'stop'; readonly missing: readonly string[]; readonly message: string };

export interface PeerEnvironment {
  /** The PATH the tests will spawn with. */
  readonly path: string;
  /** The effective user id (undefined where there is none). */
  readonly uid: number | undefined;
  /** Whether a file is an executable regular file (injected by tests). */
  readonly isExecutable?: (file: string) => boolean;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The first executable named `binary` along `path`, or null. */
export function which(binary: string, path: string, isExecutable = executable): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir.length > 0 && isExecutable(join(dir, binary))) return join(dir, binary);
  }
  return null;
}

/** The apt-get command line that installs `packages` (with sudo when not root). */
export function installCommand(packages: readonly string[], root: boolean): string {
  const sudo = root ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

/** Decides, from the PATH and the user, whether the peers are there, can be installed, or not. */
export function planPeers(env: PeerEnvironment, peers: readonly Peer[] = PEERS): PeerPlan {
  const missingPeers = peers.filter((p) => which(p.binary, env.path, env.isExecutable) === null);
  if (missingPeers.length === 0) return { action: 'none' };
  const missing = missingPeers.map((p) => p.binary);
  const packages = [...new Set(missingPeers.map((p) => p.debian))];
  const root = env.uid === 0;
  const apt = which('apt-get', env.path, env.isExecutable) !== null;
  if (root && apt) return { action: 'install', missing, packages };
  const message =
    `wirelayer tests: missing ${missing.join(', ')} (the tests run them as real peers); ` +
    `install them with: ${apt ? '' : '(Debian or Ubuntu) '}${installCommand(packages, root)}`;
  return { action: 'stop', missing, message };
}

/**
 * Before any test: installs missing peers when it can (root, apt-get), else prints the one line
 * of `planPeers` and ends the run with exit status 1.
 */
export function provisionPeers(
  env: PeerEnvironment = { path: process.env.PATH ?? '', uid: process.getuid?.() },
): void {
  const plan = planPeers(env);
  if (plan.action === 'none') return;
  if (plan.action === 'stop') {
    process.stderr.write(`${plan.message}\n`);
    process.exit(1);
  }
  process.stderr.write(
    `wirelayer tests: installing ${plan.packages.join(' ')} with apt-get (for ${plan.missing.join(', ')})\n`,
  );
  // noninteractive: tshark's debconf question (may non-root users capture?) takes its default
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const options = { env: aptEnv, stdio: ['ignore', 2, 2] as ['ignore', number, number], timeout: 600_000 };
  execFileSync('apt-get', ['update', '-qq'], options);
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...plan.packages], options);
  const after = planPeers(env);
  if (after.action !== 'none') {
    process.stderr.write(
      `wirelayer tests: apt-get installed ${plan.packages.join(' ')}, but ${after.missing.join(', ')} ` +
        `still is not on PATH (${env.path})\n`,
    );
    process.exit(1);
  }
}
