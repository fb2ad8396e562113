/**
 * The README's library example, run as written: the ```ts block under "## Library" is extracted,
 * its import pointed at this checkout and its state directory at a temp dir, then imported.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it, vi } from 'vitest';

it('the README library example runs and completes a migration', async () => {
  const readme = await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(code, 'README has a ```ts block under ## Library').toBeDefined();
  const dir = await mkdtemp(join(tmpdir(), 'waba-readme-'));
  const file = resolve(import.meta.dirname, `.readme-example-${process.pid}.ts`);
  const source = code!
    .replace("from 'waba-migrate'", `from ${JSON.stringify(resolve(import.meta.dirname, '../../src/index.ts'))}`)
    .replace("new FileStore('./state')", `new FileStore(${JSON.stringify(dir)})`);
  expect(source).not.toContain("'waba-migrate'");
  await writeFile(file, source);
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file);
    const lines = log.mock.calls.map((c) => c.join(' '));
    expect(lines.some((l) => l.startsWith('awaiting_code enter the code sent by SMS'))).toBe(true);
    expect(lines.some((l) => /^completed \d+$/.test(l))).toBe(true);
  } finally {
    log.mockRestore();
    await rm(file, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
