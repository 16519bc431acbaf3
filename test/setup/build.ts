import { execFileSync } from 'node:child_process';

/** CLI tests run the built `wirelayer`: build once, before any test, so dist/ matches src/. */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
