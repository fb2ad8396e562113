/** The real CLI, spawned, against the sandbox on loopback with a temp state dir. */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, world, type World } from '../helpers/env.js';

let w: World;
let env: Record<string, string>;
const startArgs = (id = 'cli1', extra: string[] = []) => [
  'start',
  '--phone',
  FIXTURES.phone,
  '--source-waba',
  FIXTURES.sourceWabaId,
  '--dest-waba',
  FIXTURES.destWabaId,
  '--id',
  id,
  '--confirm',
  'two_step_disabled',
  ...extra,
];

async function setup(scenario?: Parameters<typeof world>[0]) {
  w = await world(scenario);
  env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
}
afterEach(async () => {
  await w?.close();
});

describe('full flow', () => {
  beforeEach(() => setup());

  it('start → resume --code → completed, with --json following the contract', async () => {
    const s = await runCli([...startArgs(), '--json'], env);
    expect(s.code, s.stderr).toBe(0);
    const started = JSON.parse(s.stdout);
    expect(started).toMatchObject({ id: 'cli1', state: 'awaiting_code', phone: FIXTURES.phone });
    expect(started.phoneNumberId).toMatch(/^\d+$/);
    expect(started.checks).toHaveLength(5);
    expect(typeof started.nextAction).toBe('string');
    expect(Date.parse(started.updatedAt)).toBeGreaterThan(0);

    const code = w.sandbox.lastCodeFor(started.phoneNumberId)!.code;
    const r = await runCli(['resume', 'cli1', '--code', code, '--json'], { ...env, WABA_REGISTER_PIN: '123456' });
    expect(r.code, r.stderr).toBe(0);
    const done = JSON.parse(r.stdout);
    expect(done).toMatchObject({ state: 'completed', phoneNumberId: started.phoneNumberId });

    const st = await runCli(['status', 'cli1', '--json'], env);
    expect(JSON.parse(st.stdout)).toMatchObject({ id: 'cli1', state: 'completed' });
    const list = JSON.parse((await runCli(['list', '--json'], env)).stdout);
    expect(Array.isArray(list)).toBe(true);
    expect(list[0]).toMatchObject({ id: 'cli1', state: 'completed', phoneNumberId: started.phoneNumberId });
    for (const key of ['id', 'state', 'phone', 'phoneNumberId', 'checks', 'nextAction', 'updatedAt']) expect(list[0]).toHaveProperty(key);
  });

  it('human output: progress on stderr, the summary and next action on stdout', async () => {
    const s = await runCli(startArgs('human'), env);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/checking → creating \(\d+\.\d\d s\)/);
    expect(s.stdout).toMatch(/Migration human: awaiting_code/);
    expect(s.stdout).toMatch(/enter the code sent by SMS to \+16315551000 at \d\d:\d\d:\d\d UTC: waba-migrate resume human --code/);
  });

  it('audit prints the history as table, json and csv', async () => {
    await runCli(startArgs(), env);
    const json = JSON.parse((await runCli(['audit', 'cli1', '--format', 'json'], env)).stdout);
    expect(json.history.map((h: { to: string }) => h.to)).toEqual(['checking', 'creating', 'requesting_code', 'awaiting_code']);
    const csv = (await runCli(['audit', 'cli1', '--format', 'csv'], env)).stdout.trim().split('\n');
    expect(csv[0]).toBe('n,time,from,to,event,by,method,path,http_status,code,fbtrace_id,duration_ms,error,summary');
    expect(csv.some((l) => l.includes('POST,/v23.0/200000000000002/phone_numbers,200'))).toBe(true);
    const table = (await runCli(['audit', 'cli1'], env)).stdout;
    expect(table).toContain('creating → requesting_code');
    expect(table).toContain('POST /v23.0/200000000000002/phone_numbers → 200');
  });

  it('resend-code refuses during the cool-down and says when (exit 2)', async () => {
    await runCli(startArgs(), env);
    const r = await runCli(['resend-code', 'cli1'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/can be requested after 20\d\d-/);
  });

  it('cancel', async () => {
    await runCli(startArgs(), env);
    const r = await runCli(['cancel', 'cli1', '--json'], {});
    expect(r.code).toBe(2); // no state dir given: unknown id in ./state
    const r2 = await runCli(['cancel', 'cli1', '--json'], { WABA_MIGRATE_STATE_DIR: w.dir });
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout).state).toBe('cancelled');
  });

  it('check: a table of the prerequisites, nothing stored', async () => {
    const before = await snapshotDir(w.dir);
    const r = await runCli(['check', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--json'], env);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out.checks.find((c: { name: string }) => c.name === 'two_step_disabled').status).toBe('unknown');
    expect(await snapshotDir(w.dir)).toEqual(before);
    const ok = await runCli(['check', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--confirm', 'two_step_disabled'], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/All prerequisites pass/);
  });
});

describe('exit codes', () => {
  it('3 when blocked by prerequisites', async () => {
    await setup({ scenario: 'waba_pending_review' });
    const r = await runCli(startArgs(), env);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/wabas_approved/);
  });

  it('4 when a permanent Graph error fails the migration, showing Meta’s message, code and fbtrace_id', async () => {
    await setup({ scenario: 'register_limit' });
    const s = JSON.parse((await runCli([...startArgs(), '--json'], env)).stdout);
    const r = await runCli(['resume', 'cli1', '--code', w.sandbox.lastCodeFor(s.phoneNumberId)!.code], { ...env, WABA_REGISTER_PIN: '123456' });
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/code 133016, fbtrace_id A/);
    expect(r.stdout).toMatch(/72 hours/);
  });

  it('5 when another process holds the migration, naming its pid and host', async () => {
    await setup();
    await runCli(startArgs(), env);
    const lease = await new FileStore(w.dir).lock('cli1');
    try {
      const r = await runCli(['resume', 'cli1', '--code', '123456'], { ...env, WABA_REGISTER_PIN: '123456' });
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(`process ${process.pid} on`);
      // readers do not take the lock
      expect((await runCli(['status', 'cli1'], env)).code).toBe(0);
    } finally {
      await lease.release();
    }
  });

  it('6 when the state document is damaged; it is left untouched', async () => {
    await setup();
    await mkdir(join(w.dir, 'migrations'), { recursive: true });
    await writeFile(join(w.dir, 'migrations', 'bad.json'), '{"schemaVersion": 1, "id": "bad"');
    const before = await snapshotDir(w.dir);
    for (const args of [['status', 'bad'], ['resume', 'bad'], ['audit', 'bad'], ['cancel', 'bad']]) {
      const r = await runCli(args, env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(6);
      expect(r.stderr).toMatch(/not valid JSON.*left untouched/);
    }
    expect(await snapshotDir(w.dir)).toEqual(before);
  });

  it('2 without a TTY when the code or PIN is missing, naming the flag, changing nothing', async () => {
    await setup();
    await runCli(startArgs(), env);
    const before = await snapshotDir(w.dir);
    const noCode = await runCli(['resume', 'cli1'], { ...env, WABA_REGISTER_PIN: '123456' });
    expect(noCode.code).toBe(2);
    expect(noCode.stderr).toMatch(/--code/);
    const noPin = await runCli(['resume', 'cli1', '--code', '123456'], env);
    expect(noPin.code).toBe(2);
    expect(noPin.stderr).toMatch(/WABA_REGISTER_PIN.*--pin-file/);
    expect(await snapshotDir(w.dir)).toEqual(before);
  });
});

describe('graph and docs', () => {
  it('`graph` prints the machine as Mermaid, and README embeds the same diagram', async () => {
    const r = await runCli(['graph'], {});
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('stateDiagram-v2\n')).toBe(true);
    for (const s of ['checking', 'blocked', 'creating', 'requesting_code', 'awaiting_code', 'verifying_code', 'registering', 'confirming', 'completed', 'waiting_retry', 'failed', 'cancelled'])
      expect(r.stdout).toContain(s);
    const readme = await readFile(resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const block = /```mermaid\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has a ```mermaid block').toBeDefined();
    expect(block, 'README diagram is stale: paste the output of `waba-migrate graph`').toBe(r.stdout);
  });

  it('--version starts fast and prints the package version', async () => {
    const r = await runCli(['--version'], {});
    expect(r.code).toBe(0);
    const pkg = JSON.parse(await readFile(resolve(import.meta.dirname, '../../package.json'), 'utf8'));
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('demo runs a whole migration on the bundled sandbox with the lowdb store', async () => {
    await setup();
    const r = await runCli(['demo', '--state-dir', w.dir], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/completed/);
    expect(r.stdout).toMatch(/New phone_number_id: \d+/);
    expect(r.stderr).toMatch(/your WhatsApp code is \d{6}/);
    const list = JSON.parse((await runCli(['list', '--json', '--state-dir', w.dir], {})).stdout);
    expect(list).toHaveLength(1);
    expect(list[0].state).toBe('completed');
  });
});
