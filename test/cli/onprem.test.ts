/** The On-Premises → Cloud API path through the real CLI (spawned), on both sandboxes. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, ONPREM_FIXTURES } from '../../src/sandbox/index.js';
import { runCli } from '../helpers/cli.js';
import { snapshotDir, tempDir } from '../helpers/env.js';
import { BACKUP_PASSWORD, onpremWorld, VERIFY_TOKEN, type OnPremWorld } from '../onprem/helpers.js';

let w: OnPremWorld | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const secretsEnv = {
  WABA_ACCESS_TOKEN: FIXTURES.token,
  WABA_ONPREM_USER: ONPREM_FIXTURES.user,
  WABA_ONPREM_PASSWORD: ONPREM_FIXTURES.password,
  WABA_BACKUP_PASSWORD: BACKUP_PASSWORD,
  WABA_WEBHOOK_VERIFY_TOKEN: VERIFY_TOKEN,
};
const args = (w: OnPremWorld, extra: string[] = []) => [
  'start',
  '--from',
  'onprem',
  '--onprem-url',
  w.onpremUrl,
  '--waba',
  FIXTURES.sourceWabaId,
  '--phone',
  FIXTURES.onpremPhone,
  '--id',
  'op-cli',
  '--confirm',
  'pin_known',
  ...extra,
];
async function disk(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out += await readFile(join(e.parentPath, e.name), 'utf8');
  return out;
}
const SECRETS = [BACKUP_PASSWORD, ONPREM_FIXTURES.password, 'shared-secret-123', FIXTURES.onpremPin, VERIFY_TOKEN];

describe('CLI: --from onprem', () => {
  it('check, then start → completed with --carry-webhook; status shows the carry-over report; no secret on disk or in output', async () => {
    w = await onpremWorld('onprem_happy');
    const env = { ...secretsEnv, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.graphUrl };
    const c = await runCli(['check', '--from', 'onprem', '--onprem-url', w.onpremUrl, '--waba', FIXTURES.sourceWabaId, '--phone', FIXTURES.onpremPhone, '--json'], env);
    expect(c.code, c.stderr).toBe(3); // pin_known is unconfirmed
    const checked = JSON.parse(c.stdout);
    expect(Object.fromEntries(checked.checks.map((x: { name: string; status: string }) => [x.name, x.status]))).toMatchObject({ number_on_premise: 'pass', app_subscribed: 'pass', pin_known: 'unknown' });
    expect(checked.sourceNumber).toMatchObject({ found: true, platform: 'ON_PREMISE', status: 'CONNECTED' });
    const ch = await runCli(['check', '--from', 'onprem', '--onprem-url', w.onpremUrl, '--waba', FIXTURES.sourceWabaId, '--phone', FIXTURES.onpremPhone], env);
    expect(ch.stdout).toMatch(new RegExp(`In WABA ${FIXTURES.sourceWabaId}: phone_number_id \\d+, platform ON_PREMISE, status CONNECTED`));

    const s = await runCli([...args(w, ['--carry-webhook']), '--json'], { ...env, WABA_REGISTER_PIN: FIXTURES.onpremPin });
    expect(s.code, s.stderr).toBe(0);
    const v = JSON.parse(s.stdout);
    const id = w.graph.findByPhone(FIXTURES.onpremPhone)!.id;
    expect(v).toMatchObject({ state: 'completed', from: 'onprem', phoneNumberId: id });
    expect(v.carryOver.find((l: { setting: string }) => l.setting === 'webhooks.url')).toMatchObject({ applied: true });
    expect(v.carryOver.find((l: { setting: string }) => l.setting === 'callback_persist').cloud).toMatch(/^none: Meta retries Cloud webhooks itself for up to 7 days/);
    expect(w.graph.numbers.get(id)!.webhook?.override_callback_uri).toBe(ONPREM_FIXTURES.settings.webhooks.url);

    const st = await runCli(['status', 'op-cli'], env);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/webhooks\.url +"https:\/\/hooks\.example\.com\/whatsapp\?auth=\[redacted\]".*\[applied\]/);
    expect(st.stdout).toMatch(/media\.auto_download .*none: media is not auto-downloaded on Cloud.*\[not applied\]/);
    const audit = await runCli(['audit', 'op-cli', '--format', 'json'], env);
    // audit carries the same report: JSON, human (after the history), CSV with --carry-over.
    const aj = JSON.parse(audit.stdout);
    expect(aj.history.length).toBeGreaterThan(3);
    expect(aj.carryOver).toEqual(v.carryOver);
    const human = await runCli(['audit', 'op-cli'], { ...env, COLUMNS: '200' });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/checks passed[\s\S]*On-Premises settings → Cloud API \(1 applied by waba-migrate\):[\s\S]*webhooks\.url .*\[applied\]/);
    expect(human.stdout).toMatch(/show_security_notifications +true .*\[not applied\]/);
    const csv = await runCli(['audit', 'op-cli', '--format', 'csv', '--carry-over'], env);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('setting,value,cloud,applied');
    expect(lines.find((l) => l.startsWith('webhooks.url,'))).toMatch(/^webhooks\.url,"""https:\/\/hooks\.example\.com\/whatsapp\?auth=\[redacted\]""",.*,yes$/);
    expect(lines.find((l) => l.startsWith('callback_persist,'))).toMatch(/,no$/);
    expect(lines).toHaveLength(v.carryOver.length + 1);
    const everything = [c.stdout, c.stderr, s.stdout, s.stderr, st.stdout, audit.stdout, audit.stderr, human.stdout, csv.stdout, await disk(w.dir)].join('\n');
    for (const secret of SECRETS) expect(everything).not.toContain(secret);
  });

  it('onprem_wrong_pin: exit 4, the remedy says the On-Premises client is now disconnected', async () => {
    w = await onpremWorld('onprem_wrong_pin');
    const env = { ...secretsEnv, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.graphUrl, WABA_REGISTER_PIN: FIXTURES.onpremPin };
    const s = await runCli([...args(w), '--json'], env);
    expect(s.code).toBe(4);
    const v = JSON.parse(s.stdout);
    expect(v.failure).toMatchObject({ code: 133005, step: 'registering' });
    expect(v.failure.remedy).toMatch(/On-Premises client is now disconnected/);
  });

  it('onprem_no_subscribed_app: blocked (exit 3) before anything is sent to either side', async () => {
    w = await onpremWorld('onprem_no_subscribed_app');
    const env = { ...secretsEnv, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.graphUrl, WABA_REGISTER_PIN: FIXTURES.onpremPin };
    const s = await runCli(args(w), env);
    expect(s.code).toBe(3);
    expect(s.stdout).toMatch(/app_subscribed/);
    expect(w.onprem.backupCount).toBe(0);
    expect(w.graph.counters['POST register']).toBeUndefined();
  });

  it('bad input: exit 2 naming the field, nothing written', async () => {
    w = await onpremWorld('onprem_happy');
    const env = { ...secretsEnv, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.graphUrl };
    const before = await snapshotDir(w.dir);
    const cases: [string[], Record<string, string | undefined>, RegExp][] = [
      [['start', '--from', 'onprem', '--onprem-url', 'http://onprem.example.com', '--waba', FIXTURES.sourceWabaId, '--phone', FIXTURES.onpremPhone], env, /onprem-url: .*https/],
      [['start', '--from', 'onprem', '--waba', FIXTURES.sourceWabaId, '--phone', FIXTURES.onpremPhone], env, /onprem-url: is required/],
      [['start', '--from', 'onprem', '--onprem-url', w.onpremUrl, '--phone', FIXTURES.onpremPhone], env, /waba: /],
      [args(w), { ...env, WABA_BACKUP_PASSWORD: undefined }, /backup password missing: set WABA_BACKUP_PASSWORD or pass --backup-password-file/],
      [args(w), { ...env, WABA_ONPREM_PASSWORD: undefined }, /WABA_ONPREM_USER and WABA_ONPREM_PASSWORD/],
      [args(w, ['--carry-webhook', 'http://plain.example/hook']), env, /carry-webhook: must be an https URL/],
      [['start', '--phone', FIXTURES.phone, '--dest-waba', FIXTURES.destWabaId], env, /--source-waba/],
    ];
    for (const [a, e, re] of cases) {
      const r = await runCli(a, e);
      expect(r.code, `${a.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    expect(await snapshotDir(w.dir)).toEqual(before);
    expect(w.onprem.counters).toEqual({});
  });

  it('--backup-password-file is read instead of the environment', async () => {
    w = await onpremWorld('onprem_happy');
    const dir = await tempDir();
    const file = join(dir, 'bk');
    await (await import('node:fs/promises')).writeFile(file, 'from-a-file\n', { mode: 0o600 });
    const env = { ...secretsEnv, WABA_BACKUP_PASSWORD: undefined, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.graphUrl, WABA_REGISTER_PIN: FIXTURES.onpremPin };
    const s = await runCli([...args(w, ['--backup-password-file', file]), '--json'], env);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).state).toBe('completed');
  });

  it('demo --from onprem rehearses the whole path on both sandboxes', async () => {
    const dir = await tempDir();
    const r = await runCli(['--state-dir', dir, 'demo', '--from', 'onprem', '--json'], {});
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v).toMatchObject({ state: 'completed', from: 'onprem', phone: FIXTURES.onpremPhone });
    expect(v.carryOver.length).toBeGreaterThan(10);
  });
});
