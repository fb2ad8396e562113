/** Issue 12: `from` is new in MigrationInput. A document written before it existed (no `from` in
 *  its input nor in the machine's copy) must read, show and resume as WABA → WABA. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World;
afterEach(async () => {
  await w?.close();
});

describe('documents from before the On-Premises path', () => {
  it('a document without `from` shows as waba and resumes to completed on the WABA → WABA path', async () => {
    w = await world();
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const s = await runCli(['start', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', 'old', '--confirm', 'two_step_disabled', '--json'], env);
    expect(s.code, s.stderr).toBe(0);
    const started = JSON.parse(s.stdout);
    expect(started.state).toBe('awaiting_code');

    // Make it an old document: no `from` anywhere.
    const file = join(w.dir, 'migrations', 'old.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    delete doc.input.from;
    delete doc.snapshot.context.input.from;
    await writeFile(file, JSON.stringify(doc, null, 2));

    const st = await runCli(['status', 'old', '--json'], env);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ state: 'awaiting_code', from: 'waba' });

    const code = w.sandbox.lastCodeFor(started.phoneNumberId)!.code;
    const r = await runCli(['resume', 'old', '--code', code, '--json'], { ...env, WABA_REGISTER_PIN: '123456' });
    expect(r.code, r.stderr).toBe(0);
    const done = JSON.parse(r.stdout);
    expect(done).toMatchObject({ state: 'completed', from: 'waba', phoneNumberId: started.phoneNumberId });
    // The WABA → WABA steps ran, none of the On-Premises ones.
    const audit = JSON.parse((await runCli(['audit', 'old', '--json'], env)).stdout);
    const states = audit.history.map((h: { to: string }) => h.to);
    expect(states).toContain('verifying_code');
    for (const s of ['snapshotting', 'backing_up', 'carrying_settings']) expect(states).not.toContain(s);
  });
});
