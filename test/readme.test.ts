import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = new URL('../', import.meta.url).pathname;

it('the README API example runs as written against the built package', async () => {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const code = /## API\n\n```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toBeDefined();
  const file = `${root}dist/readme-example.mjs`; // inside the package, so `import 'wirelayer'` resolves to itself
  writeFileSync(file, code!);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 15_000 });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Server\(127\.0\.0\.1:\d+, state=open, src_port=\d+\)$/);
    expect(lines[1]).toBe('ping');
    expect(lines[2]).toBe('0 true');
    expect(lines[3]).toBe(
      `{"peername":["127.0.0.1",${lines[0]!.match(/:(\d+),/)![1]}],"sockname":[`.slice(0, 40),
    );
  } finally {
    rmSync(file, { force: true });
  }
});
