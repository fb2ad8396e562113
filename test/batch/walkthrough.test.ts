/**
 * The README walkthrough ("Migrate 50 numbers") run as written, in bash, with `waba-migrate` being
 * the compiled CLI and the sandbox's port a free one: if the text drifts from the tool, this fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';

const MARK = '<!-- fleet-walkthrough';

/** The shell block after the marker: from README.md once merged there, else docs/readme/fleet.md. */
function walkthrough(): string {
  const root = resolve(import.meta.dirname, '../..');
  const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
  const text = readme.includes(MARK) ? readme : readFileSync(resolve(root, 'docs/readme/fleet.md'), 'utf8');
  const after = text.slice(text.indexOf(MARK));
  const m = /```sh\n([\s\S]*?)```/.exec(after);
  if (!m) throw new Error('walkthrough block not found');
  return m[1]!;
}

const freePort = () =>
  new Promise<number>((r) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => r(port));
    });
  });

it('a new user migrates 50 numbers with batch start, batch codes and work, as the README says', async () => {
  const block = walkthrough();
  expect(block).toMatch(/batch start/);
  expect(block).toMatch(/batch codes/);
  expect(block).toMatch(/work/);
  const port = await freePort();
  const cwd = await tempDir('waba-walkthrough-');
  // `waba-migrate` on PATH, as `npm install -g` would put it (exec: `kill %1` stops the sandbox itself).
  await mkdir(join(cwd, 'bin'));
  await writeFile(join(cwd, 'bin/waba-migrate'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
  const script = `set -euo pipefail\n${block.replaceAll('8999', String(port))}`;
  const env: Record<string, string> = { PATH: `${join(cwd, 'bin')}:${process.env.PATH ?? ''}`, NO_COLOR: '1', HOME: cwd };
  const r = await new Promise<{ code: number | null; out: string; err: string }>((done) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const guard = setTimeout(() => child.kill('SIGKILL'), 80_000);
    child.on('exit', () => clearTimeout(guard));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => done({ code, out, err }));
  });
  try {
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    // batch start: all 50 wait for their code; the final status: all 50 completed.
    expect(r.out).toMatch(/Batch spring: 50 rows[\s\S]*awaiting_code 50/);
    expect(r.out).toMatch(/Codes: submitted 50/);
    expect(r.out).toMatch(/work: 50 runs, 50 completed, 0 errors/);
    expect(r.out.trimEnd()).toMatch(/Batch spring: 50 rows.*\n {2}completed 50$/);
    expect(existsSync(resolve(cwd, 'fleet-demo/state/batches/spring.json'))).toBe(true);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}, 90_000);
