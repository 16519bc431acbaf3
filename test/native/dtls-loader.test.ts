/**
 * Loading the addon: a missing build and a Node that does not export OpenSSL are explained,
 * not crashed on. Each case loads a fresh copy of the module with WIRELAYER_DTLS_ADDON set.
 * In the clone, the engine compiled here (build/Release, kept fresh by the test setup) is the one
 * loaded, never a prebuilt one; test/package/pack.test.ts checks the installed package's choice.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

type Engine = typeof import('../../src/transport/dtls/engine.js');
type Loader = typeof import('../../src/transport/dtls/loader.js');

const REPO = resolve(import.meta.dirname, '../..');

async function loadWith(addon: string): Promise<Engine> {
  vi.resetModules();
  process.env.WIRELAYER_DTLS_ADDON = addon;
  return import('../../src/transport/dtls/engine.js');
}

afterEach(() => {
  delete process.env.WIRELAYER_DTLS_ADDON;
  vi.resetModules();
});

describe('DTLS addon loading', () => {
  it('explains a missing build', async () => {
    const engine = await loadWith('/nonexistent/wirelayer_dtls.node');
    expect(engine.dtlsEngineAvailable()).toBe(false);
    expect(() => new engine.DtlsContext({ role: 'client' })).toThrow(
      expect.objectContaining({
        code: 'ERR_DTLS_ADDON_MISSING',
        message: expect.stringMatching(/npm rebuild wirelayer/),
      }),
    );
  });

  it('explains a Node that does not export the OpenSSL symbols (resolved at load, not on first call)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wirelayer-fake-addon-'));
    try {
      // A shared object needing a symbol no Node exports, as the real addon would on a Node
      // built without its OpenSSL symbols exported.
      writeFileSync(
        join(dir, 'fake.c'),
        'extern void *SSL_not_exported_by_this_node(void);\nvoid *probe(void) { return SSL_not_exported_by_this_node(); }\n',
      );
      execFileSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'fake.node'), join(dir, 'fake.c')]);
      const engine = await loadWith(join(dir, 'fake.node'));
      expect(engine.dtlsEngineAvailable()).toBe(false);
      expect(() => new engine.DtlsContext({ role: 'client' })).toThrow(
        expect.objectContaining({
          code: 'ERR_DTLS_OPENSSL_SYMBOLS',
          message: expect.stringMatching(/does not export SSL_not_exported_by_this_node/),
        }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads the file WIRELAYER_DTLS_ADDON names, and says so', async () => {
    vi.resetModules();
    process.env.WIRELAYER_DTLS_ADDON = join(REPO, 'build', 'Release', 'wirelayer_dtls.node');
    const loader: Loader = await import('../../src/transport/dtls/loader.js');
    expect(loader.dtlsAddonPath()).toBe(process.env.WIRELAYER_DTLS_ADDON);
  });

  it('in the clone, loads the engine compiled here (build/Release), not a prebuilt one', async () => {
    vi.resetModules();
    const loader: Loader = await import('../../src/transport/dtls/loader.js');
    expect(loader.dtlsAddonPath()).toBe(join(REPO, 'build', 'Release', 'wirelayer_dtls.node'));
  });

  it('reports the OpenSSL it runs on', async () => {
    vi.resetModules();
    const engine: Engine = await import('../../src/transport/dtls/engine.js');
    expect(engine.dtlsEngineAvailable()).toBe(true);
    const versions = engine.dtlsEngineVersions();
    expect(versions.openssl).toContain(process.versions.openssl!.replace(/\+.*$/, ''));
    expect(versions.headers).toMatch(/^OpenSSL 3\./);
  });
});
