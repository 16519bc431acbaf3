/**
 * The package as users get it: `npm pack` (prepack builds the N-API prebuild), the tarball
 * installed into an empty folder outside the repository with no compiler on PATH and a node-gyp
 * that fails, then the installed `wirelayer` run from there: --help, demo, inspect, listen +
 * connect (DTLS, so the prebuilt engine does the handshake), bench tcp. A second install forces
 * the build from source, the fallback when no prebuilt matches.
 *
 * The tarball is packed from a copy of the repository, so the prepack step (which rebuilds
 * build/ and dist/) never touches the clone the other tests run on.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/main.js';
import { jsonLines } from '../cli/run.js';
import { which } from '../setup/peers.js';

const REPO = resolve(import.meta.dirname, '../..');
/** Top-level entries of the clone that packing does not need (or that it would rebuild anyway). */
const NOT_COPIED = new Set(['.git', 'node_modules', 'dist', 'build', 'prebuilds', 'test', '.ci']);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, bounded in time (killed past it, and the test fails). */
function run(
  file: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: options.env,
        timeout: options.timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (err && (err as { killed?: boolean }).killed) {
          reject(
            new Error(
              `${file} ${args.join(' ')}: timed out after ${options.timeoutMs} ms\n${stdout}\n${stderr}`,
            ),
          );
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

/**
 * The headers of the Node running this test (its install prefix has include/node when it comes
 * from a Node package), so node-gyp compiles offline for exactly this Node.
 */
function nodeDir(): NodeJS.ProcessEnv {
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_version.h')) ? { npm_config_nodedir: prefix } : {};
}

/** The environment less what the `npm test` around us set (npm_config_*, npm_lifecycle_*, ...). */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key === 'NODE_OPTIONS' || key === 'WIRELAYER_DTLS_ADDON')
      continue;
    env[key] = value;
  }
  return { ...env, ...nodeDir(), ...extra };
}

let root: string;
let tarball: string;
/** The consumer folder whose install had no compiler. */
let app: string;
/** PATH holding node, npm, npx and sh only. */
let tools: string;
/** Marks a node-gyp run: npm calls `node $npm_config_node_gyp`, which here writes it and fails. */
let gypMarker: string;
let env: NodeJS.ProcessEnv;

const installed = (...parts: string[]): string => join(app, 'node_modules', 'wirelayer', ...parts);
const wirelayer = (): string => join(app, 'node_modules', '.bin', 'wirelayer');

/** An empty project folder (its own package.json) with the tarball installed. */
async function install(dir: string, installEnv: NodeJS.ProcessEnv): Promise<Run> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true })}\n`,
  );
  return run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball],
    {
      cwd: dir,
      env: installEnv,
      timeoutMs: 120_000,
    },
  );
}

/**
 * The addon file the installed package loads, as its loader reports it: the DTLS engine's
 * (`dtls/loader.js`, `dtlsAddonPath`), or the datagram sockets' (`datagram/loader.js`).
 */
async function loadedAddon(
  dir: string,
  runEnv: NodeJS.ProcessEnv,
  which: 'dtls' | 'datagram' = 'dtls',
): Promise<string> {
  const loader = join(dir, 'node_modules', 'wirelayer', 'dist', 'src', 'transport', which, 'loader.js');
  const fn = which === 'dtls' ? 'dtlsAddonPath' : 'datagramAddonPath';
  const r = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(loader)}); console.log(m.${fn}());`,
    ],
    {
      cwd: dir,
      env: runEnv,
      timeoutMs: 10_000,
    },
  );
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wirelayer-pack-'));
  // 1. npm pack from a copy of the clone (node_modules linked: tsc, prebuildify, node-gyp-build)
  const stage = join(root, 'stage');
  mkdirSync(stage);
  for (const entry of readdirSync(REPO)) {
    if (!NOT_COPIED.has(entry)) cpSync(join(REPO, entry), join(stage, entry), { recursive: true });
  }
  symlinkSync(join(REPO, 'node_modules'), join(stage, 'node_modules'));
  const out = join(root, 'out');
  mkdirSync(out);
  const packed = await run('npm', ['pack', '--pack-destination', out], {
    cwd: stage,
    env: cleanEnv({}),
    timeoutMs: 240_000,
  });
  expect(packed.code, `${packed.stdout}\n${packed.stderr}`).toBe(0);
  const files = readdirSync(out).filter((f) => f.endsWith('.tgz'));
  expect(files).toHaveLength(1);
  tarball = join(out, files[0]!);

  // 2. PATH with node, npm, npx and sh (npm runs scripts with it) only: no cc, c++, g++, gcc,
  // make or python3; and a node-gyp that fails
  tools = join(root, 'tools');
  mkdirSync(tools);
  // npm and npx as found on PATH (a Node package may come without them), run by this node
  symlinkSync(process.execPath, join(tools, 'node'));
  for (const name of ['npm', 'npx']) {
    const found = which(name, process.env.PATH ?? '');
    expect(found, `${name} on PATH`).not.toBeNull();
    symlinkSync(found!, join(tools, name));
  }
  symlinkSync('/bin/sh', join(tools, 'sh'));
  gypMarker = join(root, 'node-gyp-ran');
  const failingGyp = join(root, 'no-node-gyp.js');
  writeFileSync(
    failingGyp,
    `require('node:fs').writeFileSync(${JSON.stringify(gypMarker)}, process.argv.slice(2).join(' '));\n` +
      `console.error('node-gyp is not available here'); process.exit(1);\n`,
  );
  env = cleanEnv({ PATH: tools, npm_config_node_gyp: failingGyp });
  app = join(root, 'app');
  const r = await install(app, env);
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
}, 360_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the packed package, installed with no compiler', () => {
  it('had none: no compiler on PATH, and node-gyp, which would fail, never ran', async () => {
    const probe = await run('/bin/sh', ['-c', 'command -v cc c++ g++ gcc make'], {
      cwd: app,
      env,
      timeoutMs: 5000,
    });
    expect(probe.stdout).toBe('');
    expect(probe.code).not.toBe(0);
    expect(existsSync(gypMarker)).toBe(false);
  });

  it('ships the built CLI, the benchmarks, the example captures and the prebuilt engine, and compiled nothing', async () => {
    for (const file of [
      'dist/src/cli/main.js',
      'dist/src/index.d.ts',
      'dist/bench/tcp.js',
      'examples/quic-v1.pcap',
      'binding.gyp',
    ]) {
      expect(existsSync(installed(file)), file).toBe(true);
    }
    expect(readdirSync(installed('prebuilds', 'linux-x64')).filter((f) => f.endsWith('.node'))).toHaveLength(
      1,
    );
    expect(existsSync(installed('build'))).toBe(false);
    expect(existsSync(installed('test'))).toBe(false);
    const addon = await loadedAddon(app, env);
    expect(addon.startsWith(`${installed('prebuilds', 'linux-x64')}/`), addon).toBe(true);
    // the datagram socket addon, prebuilt beside it (in a folder of its own)
    expect(await loadedAddon(app, env, 'datagram')).toBe(
      installed('prebuilds', 'linux-x64', 'udp', 'wirelayer_udp.glibc.node'),
    );
  });

  it('npx wirelayer --help lists every command', async () => {
    const r = await run('npx', ['--no-install', 'wirelayer', '--help'], { cwd: app, env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    for (const { synopsis } of Object.values(COMMANDS)) expect(r.stdout).toContain(synopsis);
  });

  it('wirelayer demo --json: every driver comes up at both ends', async () => {
    const r = await run(wirelayer(), ['demo', '--json'], { cwd: app, env, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const ups = jsonLines(r.stdout).filter((rec) => rec.event === 'up');
    const seen = new Set(ups.map((rec) => `${rec.driver}/${rec.role}`));
    for (const driver of ['tcp', 'tls', 'udp', 'dtls', 'quic']) {
      expect(seen.has(`${driver}/client`), `${driver} client up`).toBe(true);
      expect(seen.has(`${driver}/server`), `${driver} server up`).toBe(true);
    }
  });

  it('wirelayer inspect reads the shipped example capture', async () => {
    const r = await run(wirelayer(), ['inspect', installed('examples', 'quic-v1.pcap'), '--json'], {
      cwd: app,
      env,
      timeoutMs: 30_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const records = jsonLines(r.stdout);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      protocol: 'quic',
      sni: 'localhost',
      tls_version: 'QUICv1',
      cipher: 'TLS_AES_128_GCM_SHA256',
    });
  });

  it('wirelayer listen dtls:// and connect dtls://: a handshake on the prebuilt engine', async () => {
    const listen: ChildProcess = spawn(wirelayer(), ['listen', 'dtls://127.0.0.1:0', '--json'], {
      cwd: app,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    listen.stderr?.on('data', (d: Buffer) => {
      stderr += d;
    });
    try {
      const deadline = Date.now() + 20_000;
      let port: number | null = null;
      while (port === null && Date.now() < deadline && listen.exitCode === null) {
        const m = /listening on dtls:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(port, stderr).not.toBeNull();
      const r = await run(
        wirelayer(),
        ['connect', `dtls://127.0.0.1:${port}`, '--json', '--insecure', '--sni', 'localhost'],
        {
          cwd: app,
          env,
          timeoutMs: 30_000,
        },
      );
      expect(r.code, r.stderr).toBe(0);
      const records = jsonLines(r.stdout);
      expect(records.map((rec) => rec.event)).toEqual(['start', 'up', 'closed']);
      expect(records[1]).toMatchObject({
        driver: 'dtls',
        tls: true,
        tls_version: 'DTLSv1.2',
        sni: 'localhost',
      });
      // the listening CLI mapped the prebuilt files, nothing else: the engine and the datagram sockets
      const maps = readFileSync(`/proc/${listen.pid}/maps`, 'utf8');
      expect(maps).toContain(installed('prebuilds', 'linux-x64'));
      expect(maps).toContain(installed('prebuilds', 'linux-x64', 'udp', 'wirelayer_udp.glibc.node'));
    } finally {
      if (listen.exitCode === null && listen.pid !== undefined) {
        const exited = once(listen, 'exit');
        process.kill(listen.pid, 'SIGTERM');
        await exited;
      }
    }
  });

  it('wirelayer load against wirelayer listen: the HDR histogram (a dependency) installed with it', async () => {
    const listen: ChildProcess = spawn(wirelayer(), ['listen', 'udp://127.0.0.1:0', '--echo'], {
      cwd: app,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    listen.stderr?.on('data', (d: Buffer) => {
      stderr += d;
    });
    try {
      const deadline = Date.now() + 20_000;
      let port: number | null = null;
      while (port === null && Date.now() < deadline && listen.exitCode === null) {
        const m = /listening on udp:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(port, stderr).not.toBeNull();
      const r = await run(wirelayer(), ['load', `udp://127.0.0.1:${port}`, '--count', '200', '--json'], {
        cwd: app,
        env,
        timeoutMs: 30_000,
      });
      expect(r.code, r.stderr).toBe(0);
      const summary = jsonLines(r.stdout).at(-1) ?? {};
      expect(summary).toMatchObject({ event: 'summary', sent: 200, received: 200, loss: 0 });
      expect((summary.latency_ms as { p99: number }).p99).toBeGreaterThan(0);
    } finally {
      if (listen.exitCode === null && listen.pid !== undefined) {
        const exited = once(listen, 'exit');
        process.kill(listen.pid, 'SIGTERM');
        await exited;
      }
    }
  });

  it('wirelayer bench tcp prints its table beside node:net', async () => {
    const r = await run(wirelayer(), ['bench', 'tcp'], { cwd: app, env, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| connect\+close .*\(node:net\) \| \d+\.\d+x \|/);
    expect(r.stdout).toMatch(/\| bulk, one connection.*\(node:net\) \| \d+\.\d+x \|/);
  });
});

describe('the packed package, built from source', () => {
  it('compiles the engine with node-gyp when asked to (the fallback where no prebuilt matches) and loads that build', async () => {
    const dir = join(root, 'from-source');
    // the full PATH (a compiler) and npm's own node-gyp; node-gyp-build's switch skips the prebuilt
    const fullEnv = cleanEnv({ npm_config_build_from_source: 'true' });
    const r = await install(dir, fullEnv);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const built = join(dir, 'node_modules', 'wirelayer', 'build', 'Release', 'wirelayer_dtls.node');
    expect(existsSync(built), r.stdout).toBe(true);
    expect(await loadedAddon(dir, cleanEnv({}))).toBe(built);
    expect(await loadedAddon(dir, cleanEnv({}), 'datagram')).toBe(
      join(dir, 'node_modules', 'wirelayer', 'build', 'Release', 'wirelayer_udp.node'),
    );
  }, 240_000);
});
