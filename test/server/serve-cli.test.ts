/** `waba-migrate serve` through the real CLI: refusals (exit 2, nothing started), token printing, shutdown. */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { world, type World } from '../helpers/env.js';

let w: World;
beforeAll(async () => {
  w = await world();
  await w.engine().start(w.startRequest({ id: 'cli-1' }));
});
afterAll(async () => {
  await w?.close();
});

/** Starts `serve` and resolves once it has printed its address, with everything it printed. */
function startServe(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; stderr: () => string; stdout: () => string; url: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WABA_')) clean[k] = v;
  const child = spawn(process.execPath, [CLI, '--state-dir', w.dir, 'serve', '--port', '0', ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 15_000);
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /dashboard on (http:\/\/[^/\s]+)\//.exec(err);
      if (m && /\n/.test(err.slice(m.index))) {
        clearTimeout(timer);
        setTimeout(() => resolve({ child, stderr: () => err, stdout: () => out, url: m[1]! }), 50);
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

const stop = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.on('exit', (code) => resolve(code)), child.kill('SIGTERM')));

describe('serve refuses, exit 2, starts nothing', () => {
  it.each([
    [['--host', '0.0.0.0'], {}, /--host 0\.0\.0\.0 is reachable from other machines: set WABA_DASHBOARD_TOKEN/],
    [['--host', '192.168.1.10'], {}, /set WABA_DASHBOARD_TOKEN/],
    [['--port', 'http'], {}, /--port: http is not a port/],
    [['--port', '70000'], {}, /--port: 70000 is not a port/],
    [[], { WABA_DASHBOARD_TOKEN: 'short' }, /WABA_DASHBOARD_TOKEN: use at least 16 characters/],
  ] as const)('%j %j', async (args, env, message) => {
    const r = await runCli(['--state-dir', w.dir, 'serve', '--port', '0', ...args], env as Record<string, string>, { timeoutMs: 15_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});

describe('serve', () => {
  it('generates a token, prints it once on stderr, serves with it, and stops cleanly on SIGTERM', async () => {
    const s = await startServe([]);
    const token = /\?token=([A-Za-z0-9_-]+)/.exec(s.stderr())![1]!;
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(s.stderr().split(token).length - 1).toBe(1);
    expect(s.stdout()).toBe('');
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${s.url}/api/migrations`)).status).toBe(401);
    const list = (await (await fetch(`${s.url}/api/migrations`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: { id: string; state: string }[] };
    expect(list.items).toEqual([expect.objectContaining({ id: 'cli-1', state: 'awaiting_code' })]);
    const page = await fetch(`${s.url}/`, { headers: { authorization: `Bearer ${token}` } });
    expect(await page.text()).not.toContain(token);
    expect(await stop(s.child)).toBe(0);
  });

  it('refuses a port already in use, exit 2', async () => {
    const s = await startServe([]);
    const port = new URL(s.url).port;
    const r = await runCli(['--state-dir', w.dir, 'serve', '--port', port], {}, { timeoutMs: 15_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`--port ${port}: already in use`));
    expect(await stop(s.child)).toBe(0);
  });

  it('with WABA_DASHBOARD_TOKEN, never prints the token', async () => {
    const secret = 'operator-chosen-dashboard-secret-42';
    const s = await startServe([], { WABA_DASHBOARD_TOKEN: secret });
    expect(s.stderr()).not.toContain(secret);
    expect((await fetch(`${s.url}/healthz`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
    expect(await stop(s.child)).toBe(0);
    expect(s.stderr() + s.stdout()).not.toContain(secret);
  });
});
