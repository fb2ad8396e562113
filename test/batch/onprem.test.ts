/**
 * Batches with a `from` column (issue 12): rows from another WABA beside rows from an On-Premises
 * client, through the real CLI against both sandboxes. Each bad row is reported (line, column,
 * fix) with nothing written; the On-Premises secrets come from env/files exactly as
 * `start --from onprem` reads them, never from the file.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ONPREM_FIXTURES } from '../../src/sandbox/index.js';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, tempDir } from '../helpers/env.js';
import { BACKUP_PASSWORD, onpremWorld, type OnPremWorld } from '../onprem/helpers.js';

const S = FIXTURES.sourceWabaId;
const D = FIXTURES.destWabaId;
let w: OnPremWorld;
let files: string;
let base: Record<string, string>;
let secrets: Record<string, string>;

beforeAll(async () => {
  w = await onpremWorld('onprem_happy');
  files = await tempDir('waba-batch-onprem-');
  base = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_GRAPH_URL: w.graphUrl, WABA_MIGRATE_STATE_DIR: w.dir };
  secrets = { WABA_ONPREM_USER: ONPREM_FIXTURES.user, WABA_ONPREM_PASSWORD: ONPREM_FIXTURES.password, WABA_BACKUP_PASSWORD: BACKUP_PASSWORD };
});
afterAll(async () => {
  await w.close();
});

async function file(name: string, text: string): Promise<string> {
  const p = join(files, name);
  await writeFile(p, text);
  return p;
}

const HEAD = 'phone,source_waba,dest_waba,confirm,from,waba,onprem_url,carry_settings';

describe('batch start: rows with from = onprem are validated like the others, nothing written', () => {
  const cases: [string, () => string, RegExp[]][] = [
    [
      'an onprem row without waba and onprem_url names both columns',
      () => `${HEAD}\n${FIXTURES.onpremPhone},,,pin_known,onprem,,,\n`,
      [/line 2, column waba: is required and empty: give the WABA ID the number is in .*from = onprem/, /line 2, column onprem_url: is required and empty: give the On-Premises client base URL/],
    ],
    ['a from that is neither waba nor onprem', () => `${HEAD}\n${FIXTURES.onpremPhone},,,pin_known,cloud,${S},${w.onpremUrl},\n`, [/line 2, column from: "cloud" is not a source: use waba .* or onprem/]],
    [
      'source_waba/dest_waba on an onprem row, and onprem columns on a waba row',
      () => `${HEAD}\n${FIXTURES.onpremPhone},${S},,pin_known,onprem,${S},${w.onpremUrl},\n+16315556101,${S},${D},two_step_disabled,,${S},,\n`,
      [/line 2, column source_waba: is not used when from is onprem .*column waba/, /line 3, column waba: is only for rows with from = onprem/],
    ],
    [
      'a bad waba, a plain-http non-loopback URL and a bad yes/no, all in one pass',
      () => `${HEAD}\n${FIXTURES.onpremPhone},,,pin_known,onprem,abc,http://wa.example.com:9090,maybe\n`,
      [/line 2, column waba: "abc" is not a Graph ID/, /line 2, column onprem_url: .*https/, /line 2, column carry_settings: "maybe" must be yes or no/],
    ],
    ['an onprem row in JSON Lines with a bad PIN confirmation', () => `{"phone":"${FIXTURES.onpremPhone}","from":"onprem","waba":"${S}","onprem_url":"${w.onpremUrl}","confirm":["vibes"]}\n`, [/line 1, column confirm: "vibes" is not a check/]],
  ];
  it.each(cases)('%s', async (_n, text, expected) => {
    const before = await snapshotDir(w.dir);
    const r = await runCli(['batch', 'start', await file(`v${Math.random().toString(36).slice(2)}.${text().startsWith('{') ? 'jsonl' : 'csv'}`, text()), '--id', 'bad'], { ...base, ...secrets });
    expect(r.code, r.stderr).toBe(2);
    for (const re of expected) expect(r.stderr).toMatch(re);
    expect(r.stderr).toMatch(/nothing was written/);
    expect(await snapshotDir(w.dir)).toEqual(before);
  });

  it('onprem rows without On-Premises admin access or backup password: a usage error naming the variables', async () => {
    const f = await file('mixed-nosecrets.csv', `${HEAD}\n+16315556102,${S},${D},two_step_disabled,,,,\n${FIXTURES.onpremPhone},,,pin_known,onprem,${S},${w.onpremUrl},\n`);
    const before = await snapshotDir(w.dir);
    const noAdmin = await runCli(['batch', 'start', f, '--id', 'nos'], { ...base, WABA_BACKUP_PASSWORD: BACKUP_PASSWORD });
    expect(noAdmin.code).toBe(2);
    expect(noAdmin.stderr).toMatch(/1 row has from = onprem: On-Premises admin access missing: set WABA_ONPREM_USER and WABA_ONPREM_PASSWORD .* or WABA_ONPREM_TOKEN/);
    const noBackup = await runCli(['batch', 'start', f, '--id', 'nos'], { ...base, WABA_ONPREM_TOKEN: 'tok' });
    expect(noBackup.code).toBe(2);
    expect(noBackup.stderr).toMatch(/backup password missing: set WABA_BACKUP_PASSWORD or pass --backup-password-file/);
    expect(await snapshotDir(w.dir)).toEqual(before);
    // Secrets are not columns: a password in the file is refused as an unknown column.
    const inFile = await runCli(['batch', 'start', await file('pw.csv', `phone,from,waba,onprem_url,backup_password\n${FIXTURES.onpremPhone},onprem,${S},${w.onpremUrl},hunter2\n`), '--id', 'nos'], { ...base, ...secrets });
    expect(inFile.code).toBe(2);
    expect(inFile.stderr).toMatch(/column backup_password: is not a column of this file/);
    expect(await snapshotDir(w.dir)).toEqual(before);
  });
});

describe('a batch of waba and onprem rows runs to completion on both sandboxes', () => {
  it('the onprem row takes the On-Premises path (no create, no code), the waba row the WABA path; both complete', async () => {
    const phoneNumberId = w.graph.findByPhone(FIXTURES.onpremPhone)!.id;
    const f = await file('mixed.csv', `${HEAD}\n+16315556201,${S},${D},two_step_disabled,waba,,,\n${FIXTURES.onpremPhone},,,pin_known,onprem,${S},${w.onpremUrl},yes\n`);
    const env = { ...base, ...secrets, WABA_REGISTER_PIN: FIXTURES.onpremPin };
    const started = await runCli(['batch', 'start', f, '--id', 'mix', '--json'], env);
    expect(started.code, started.stderr).toBe(0);
    const s1 = JSON.parse(started.stdout) as { counts: Record<string, number>; rows: { line: number; state: string; migrationId: string }[] };
    expect(s1.counts).toEqual({ awaiting_code: 1, completed: 1 });
    expect(s1.rows.find((r) => r.line === 3)).toMatchObject({ state: 'completed', migrationId: 'mix-2' });
    // On-Premises path: same phone_number_id, registered once with the backup, settings carried.
    expect(w.graph.registered.get('16315551019')).toBe(1);
    expect(w.onprem.disconnected).toBe(true);
    const n = w.graph.numbers.get(phoneNumberId)!;
    expect(n.platform_type).toBe('CLOUD_API');
    expect(n.apiData).toEqual({ show_security_notifications: true, notify_user_change_number: false });
    const doc = JSON.parse(await readFile(join(w.dir, 'migrations', 'mix-2.json'), 'utf8')) as { input: { from: string; sourceWabaId: string; destWabaId: string; onpremUrl: string; carrySettings?: boolean } };
    expect(doc.input).toMatchObject({ from: 'onprem', sourceWabaId: S, destWabaId: S, onpremUrl: w.onpremUrl, carrySettings: true });
    expect(w.graph.counters['POST phone_numbers']!.calls).toBe(1); // only the waba row was created
    // The waba row's code, then the whole batch is complete.
    const pnid = JSON.parse((await runCli(['status', 'mix-1', '--json'], env)).stdout).phoneNumberId as string;
    const codes = await file('codes.csv', `phone,code\n+16315556201,${w.graph.lastCodeFor(pnid)!.code}\n`);
    const c = await runCli(['batch', 'codes', 'mix', codes], env);
    expect(c.code, c.stderr).toBe(0);
    const status = JSON.parse((await runCli(['batch', 'status', 'mix', '--json'], base)).stdout) as { counts: Record<string, number> };
    expect(status.counts).toEqual({ completed: 2 });
    // batch resume of a finished onprem row needs no On-Premises secrets.
    const resumed = await runCli(['batch', 'resume', 'mix'], { ...base, WABA_REGISTER_PIN: FIXTURES.onpremPin });
    expect(resumed.code, resumed.stderr).toBe(0);
    // No secret on disk (the batch record and every migration).
    let disk = '';
    for (const e of await readdir(w.dir, { withFileTypes: true, recursive: true })) if (e.isFile()) disk += await readFile(join(e.parentPath, e.name), 'utf8');
    for (const secret of [BACKUP_PASSWORD, ONPREM_FIXTURES.password, 'shared-secret-123', FIXTURES.onpremPin]) expect(disk).not.toContain(secret);
  });
});

describe('work continues an onprem row with the On-Premises secrets', () => {
  it('a row left in waiting_retry (register answered 503, past --max-wait) is completed by work --once', async () => {
    const o = await onpremWorld('onprem_happy');
    try {
      const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_GRAPH_URL: o.graphUrl, WABA_MIGRATE_STATE_DIR: o.dir, ...secrets, WABA_REGISTER_PIN: FIXTURES.onpremPin };
      o.graph.failNext('POST register', 503, { retryAfterSec: 2 });
      const f = await file('one-onprem.csv', `phone,from,waba,onprem_url,confirm\n${FIXTURES.onpremPhone},onprem,${S},${o.onpremUrl},pin_known\n`);
      const s = await runCli(['batch', 'start', f, '--id', 'wk', '--retry-base-ms', '1', '--max-wait', '500', '--json'], env);
      expect(s.code, s.stderr).toBe(0);
      expect(JSON.parse(s.stdout).counts).toEqual({ waiting_retry: 1 });
      await new Promise((r) => setTimeout(r, 2_200));
      // The worker reads the On-Premises secrets from env: register needs a new backup (none is stored).
      const r = await runCli(['work', '--once', '--batch', 'wk'], env);
      expect(r.code, r.stderr).toBe(0);
      const st = JSON.parse((await runCli(['batch', 'status', 'wk', '--json'], env)).stdout);
      expect(st.counts).toEqual({ completed: 1 });
      expect(o.graph.registered.get('16315551019')).toBe(1);
    } finally {
      await o.close();
    }
  });
});
