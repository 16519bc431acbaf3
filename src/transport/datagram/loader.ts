/**
 * Finds and loads the datagram socket addon (`native/udp/`, the `wirelayer_udp` target of
 * `binding.gyp`). Which file, in this order:
 * 1. the file `WIRELAYER_UDP_ADDON` names, if set;
 * 2. `build/Release/wirelayer_udp.node` (then `build/Debug`) of the package: compiled here, by
 *    `npm install` in a clone, or by the install script when no prebuilt engine matched;
 * 3. `prebuilds/<platform>-<arch>/udp/wirelayer_udp.<libc>.node`, which `npm pack` puts in the
 *    package beside the DTLS engine's prebuild (in a folder of its own: node-gyp-build picks the
 *    DTLS engine from the files directly in `prebuilds/<platform>-<arch>/`).
 *
 * Unlike the DTLS engine, a missing or failing addon is no error: the drivers then use
 * `node:dgram`. {@link datagramAddonPath} tells which file was loaded.
 */
import { existsSync } from 'node:fs';
import { arch, constants as osConstants, platform } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';

/** The outcome of loading the addon, computed once per process. */
export type DatagramAddonLoad =
  | { readonly ok: true; readonly exports: unknown; readonly path: string }
  | { readonly ok: false; readonly reason: string };

const FILE = 'wirelayer_udp.node';

/** The libc tag of a prebuild, as prebuildify's `--tag-libc` and node-gyp-build name it. */
function libc(): 'glibc' | 'musl' {
  return platform() === 'linux' && existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
}

/** The files to try, in order. */
export function datagramAddonCandidates(): string[] {
  const override = process.env.WIRELAYER_UDP_ADDON;
  if (override) return [override];
  const root = packageRoot(import.meta.url);
  if (root === null) return [];
  return [
    join(root, 'build', 'Release', FILE),
    join(root, 'build', 'Debug', FILE),
    join(root, 'prebuilds', `${platform()}-${arch()}`, 'udp', `wirelayer_udp.${libc()}.node`),
  ];
}

let loaded: DatagramAddonLoad | undefined;

/** Loads the addon once (later calls return the first outcome, success or failure). */
export function loadDatagramAddon(): DatagramAddonLoad {
  if (loaded) return loaded;
  const candidates = datagramAddonCandidates();
  const path = candidates.find((file) => existsSync(file));
  if (path === undefined) {
    loaded = {
      ok: false,
      reason:
        candidates.length === 0
          ? 'no package.json of wirelayer above this module'
          : `not built (looked for ${candidates.join(', ')})`,
    };
    return loaded;
  }
  try {
    const module: { exports: unknown } = { exports: {} };
    process.dlopen(module, path, osConstants.dlopen.RTLD_NOW ?? 0);
    const supported = (module.exports as { supported?: unknown }).supported === true;
    loaded = supported
      ? { ok: true, exports: module.exports, path }
      : { ok: false, reason: `${path} has no native datagram sockets on ${platform()}` };
  } catch (err) {
    loaded = {
      ok: false,
      reason: `cannot load ${path}: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  return loaded;
}

/** The file the addon was loaded from (loading it if not yet done), or null if it did not load. */
export function datagramAddonPath(): string | null {
  const result = loadDatagramAddon();
  return result.ok ? result.path : null;
}
