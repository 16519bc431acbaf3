/**
 * Finds and loads the DTLS engine's native addon (`native/dtls/`, `binding.gyp`).
 *
 * Which file, in this order (node-gyp-build's order, so the install step and the loader agree):
 * 1. the file `WIRELAYER_DTLS_ADDON` names, if set (e.g. one built for another Node);
 * 2. `build/Release/*.node` (then `build/Debug`) of the package: compiled here, by `npm install`
 *    in a clone, or by the install script when no prebuilt one matched;
 * 3. `prebuilds/<platform>-<arch>/` of the package: the N-API build that `npm pack` puts in the
 *    package (`prebuildify --napi`), one file for every Node with N-API 8.
 *
 * A clone that has compiled the engine thus always runs the compiled one; an installed package
 * runs the prebuilt one unless it had to compile. {@link dtlsAddonPath} tells which was loaded.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, constants as osConstants, platform } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../package-root.js';

/** Why the addon could not be loaded (engine.ts turns these into `DtlsError`s with the same code). */
export type DtlsAddonFailureCode =
  | 'ERR_DTLS_ADDON_MISSING'
  | 'ERR_DTLS_OPENSSL_SYMBOLS'
  | 'ERR_DTLS_ADDON_LOAD';

/** The outcome of loading the addon, computed once per process. */
export type DtlsAddonLoad =
  | { readonly ok: true; readonly exports: unknown; readonly path: string }
  | {
      readonly ok: false;
      readonly code: DtlsAddonFailureCode;
      readonly message: string;
      readonly cause?: unknown;
    };

/** node-gyp-build's path resolver; it throws when neither a build nor a matching prebuild exists. */
function resolveWithGypBuild(root: string): string {
  // the resolver itself (not the package main, which may pick a runtime's own loader): we load the
  // file ourselves, with RTLD_NOW
  const require = createRequire(import.meta.url);
  const gypBuild = require('node-gyp-build/node-gyp-build.js') as { resolve(dir: string): string };
  return gypBuild.resolve(root);
}

const MISSING_HINT =
  'Run `npm rebuild wirelayer` to compile it from native/dtls (needs python3, make and a C++ compiler).';

function findAddon(): { path: string } | { message: string } {
  const override = process.env.WIRELAYER_DTLS_ADDON;
  if (override) {
    if (existsSync(override)) return { path: override };
    return {
      message: `wirelayer's DTLS engine is not built (WIRELAYER_DTLS_ADDON names ${override}, which does not exist). ${MISSING_HINT}`,
    };
  }
  const root = packageRoot(import.meta.url);
  if (root === null) {
    return {
      message: `wirelayer's DTLS engine: no package.json of wirelayer above ${fileURLToPath(import.meta.url)}. ${MISSING_HINT}`,
    };
  }
  try {
    return { path: resolveWithGypBuild(root) };
  } catch (err) {
    const detail = err instanceof Error ? err.message.trim().replace(/\s+/g, ' ') : String(err);
    return {
      message:
        `wirelayer's DTLS engine is not built and no prebuilt one matches this machine (looked in ` +
        `${join(root, 'build', 'Release')} and ${join(root, 'prebuilds', `${platform()}-${arch()}`)}: ${detail}). ${MISSING_HINT}`,
    };
  }
}

/** A dlopen failure explained: a Node without OpenSSL's symbols is the one users can act on. */
function explainLoadFailure(path: string, err: unknown): DtlsAddonLoad {
  const text = err instanceof Error ? err.message : String(err);
  const symbol = /undefined symbol:?\s*(\S+)/.exec(text) ?? /symbol not found[^']*'?_?(\w+)/i.exec(text);
  if (symbol) {
    return {
      ok: false,
      code: 'ERR_DTLS_OPENSSL_SYMBOLS',
      message:
        `wirelayer's DTLS engine needs the OpenSSL symbols that Node exports, and this Node ` +
        `(${process.version}, OpenSSL ${process.versions.openssl ?? 'none'}) does not export ` +
        `${symbol[1]}. Use an official Node.js build (or one built with its bundled OpenSSL, ` +
        `or linked to a shared libssl 3). Loading ${path} failed: ${text}`,
      cause: err,
    };
  }
  return {
    ok: false,
    code: 'ERR_DTLS_ADDON_LOAD',
    message: `cannot load wirelayer's DTLS engine from ${path}: ${text}`,
    cause: err,
  };
}

let loaded: DtlsAddonLoad | undefined;

/** Loads the addon once (later calls return the first outcome, success or failure). */
export function loadDtlsAddon(): DtlsAddonLoad {
  if (loaded) return loaded;
  const found = findAddon();
  if (!('path' in found)) {
    loaded = { ok: false, code: 'ERR_DTLS_ADDON_MISSING', message: found.message };
    return loaded;
  }
  try {
    // RTLD_NOW: resolve every OpenSSL symbol at load. Node loads addons lazily by default,
    // which on a Node that does not export OpenSSL would load fine and abort on first use.
    const module: { exports: unknown } = { exports: {} };
    process.dlopen(module, found.path, osConstants.dlopen.RTLD_NOW ?? 0);
    loaded = { ok: true, exports: module.exports, path: found.path };
  } catch (err) {
    loaded = explainLoadFailure(found.path, err);
  }
  return loaded;
}

/** The file the addon was loaded from (loading it if not yet done), or null if it cannot load. */
export function dtlsAddonPath(): string | null {
  const result = loadDtlsAddon();
  return result.ok ? result.path : null;
}
