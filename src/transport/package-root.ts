import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'wirelayer';

/**
 * The package's root, where its native addons are built (`build/`) or shipped (`prebuilds/`):
 * the nearest folder above `from` (a module's `import.meta.url`) whose package.json is
 * wirelayer's; null if there is none.
 */
export function packageRoot(from: string): string | null {
  // src/transport/... in a clone run through a TS loader, dist/src/transport/... when built
  let dir = dirname(fileURLToPath(from));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === PACKAGE_NAME) return dir;
    } catch {
      // no package.json here (or not JSON): keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
}
