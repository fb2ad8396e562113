/** The notification commands and flags through the real CLI (build first: `npm run build`). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, world, type World } from '../helpers/env.js';
import { Receiver, TEST_SECRET } from '../helpers/receiver.js';

let w: World;
let rx: Receiver;
let env: Record<string, string>;
afterEach(async () => {
  await w?.close();
  await rx?.stop();
});

async function setup() {
  w = await world();
  rx = new Receiver();
  await rx.start();
  env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url, WABA_NOTIFY_URL: rx.url, WABA_NOTIFY_SECRET: TEST_SECRET };
}
const start = (id = 'n1') => ['start', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', id, '--confirm', 'two_step_disabled'];

describe('notify commands', () => {
  it('start notifies; status shows pending ones while the receiver fails; deliver sends them; list shows them', async () => {
    await setup();
    rx.answer = () => '500';
    const s = await runCli(['--notify-backoff-ms', '50', ...start(), '--json'], env);
    expect(s.code, s.stderr).toBe(0);
    const st = JSON.parse((await runCli(['status', 'n1', '--json'], env)).stdout);
    expect(st.notifications).toMatchObject({ pending: 2, dead: 0, delivered: 0 });
    expect((await runCli(['status', 'n1'], env)).stdout).toMatch(/notifications\s+2 pending, next attempt .*HTTP 500/);
    const listed = JSON.parse((await runCli(['notify', 'list', '--json'], env)).stdout);
    expect(listed.map((r: { type: string; status: string }) => [r.type, r.status])).toEqual([
      ['migration.started', 'pending'],
      ['migration.awaiting_code', 'pending'],
    ]);
    rx.answer = () => 'ok';
    const d = await runCli(['--notify-backoff-ms', '50', 'notify', 'deliver', '--follow'], env);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/delivered 2, failed 0, dead 0, still pending 0/);
    expect(rx.accepted.map((x) => x.payload.type)).toEqual(['migration.started', 'migration.awaiting_code']);
    expect(JSON.parse((await runCli(['notify', 'list', '--json'], env)).stdout)).toEqual([]);
    expect(JSON.parse((await runCli(['notify', 'list', '--all', '--json'], env)).stdout)).toHaveLength(2);
    expect(rx.badSignatures).toEqual([]);
  });

  it('work delivers what is pending: events a failed POST left behind arrive without anyone resuming', async () => {
    await setup();
    rx.answer = () => '500';
    const s = await runCli(['--notify-backoff-ms', '50', ...start()], env);
    expect(s.code, s.stderr).toBe(0);
    expect(rx.accepted).toEqual([]);
    expect(JSON.parse((await runCli(['status', 'n1', '--json'], env)).stdout).notifications).toMatchObject({ pending: 2, delivered: 0 });
    rx.answer = () => 'ok';
    // Nothing is due for a run (n1 waits for its code): only the worker's delivery pass can send them.
    const wk = await runCli(['--notify-backoff-ms', '50', 'work', '--once'], env);
    expect(wk.code, wk.stderr).toBe(0);
    expect(wk.stderr).toMatch(/notifications: 2 delivered, 0 failed, 0 pending/);
    expect(rx.accepted.map((x) => x.payload.type)).toEqual(['migration.started', 'migration.awaiting_code']);
    expect(JSON.parse((await runCli(['status', 'n1', '--json'], env)).stdout).notifications).toMatchObject({ pending: 0, delivered: 2 });
    expect(rx.badSignatures).toEqual([]);
  });

  it('a 410 disables the endpoint: later runs send nothing; list and status say so; notify enable delivers what waited, in order', async () => {
    await setup();
    rx.answer = (n) => (n === 1 ? '410' : 'ok');
    expect((await runCli(start(), env)).code).toBe(0);
    const second = ['start', '--phone', '+16315553201', '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', 'n2', '--confirm', 'two_step_disabled'];
    const s2 = await runCli(second, env);
    expect(s2.code, s2.stderr).toBe(0);
    expect(rx.requests).toBe(1);
    const listed = JSON.parse((await runCli(['notify', 'list', '--json'], env)).stdout);
    expect(listed.map((r: { owner: string; type: string; status: string }) => [r.owner, r.type, r.status])).toEqual([
      ['n1', 'migration.started', 'endpoint-disabled'],
      ['n1', 'migration.awaiting_code', 'endpoint-disabled'],
      ['n2', 'migration.started', 'endpoint-disabled'],
      ['n2', 'migration.awaiting_code', 'endpoint-disabled'],
    ]);
    const held = listed[0].endpointDisabled;
    expect(held).toMatchObject({ eventId: listed[0].id, owner: 'n1', endpoint: `${new URL(rx.url).origin}/hooks` });
    expect(held.label).toMatch(/^endpoint disabled \(410 at \d{4}-\d\d-\d\dT/);
    const text = await runCli(['notify', 'list'], env);
    expect(text.stdout).toContain(held.label);
    expect(text.stdout).toMatch(/endpoint disabled +│ 1 +│ 410 at \d{4}-/);
    expect(text.stdout).toMatch(/it answered 410 Gone to event evt_\w+ of n1\. .*notify enable/s);
    expect((await runCli(['status', 'n2'], env)).stdout).toMatch(/notifications\s+2 pending, endpoint disabled \(410 at .*notify enable/);
    expect(JSON.parse((await runCli(['status', 'n2', '--json'], env)).stdout).notifications).toMatchObject({ pending: 2, dead: 0, endpointDisabled: { label: held.label } });
    const d = await runCli(['notify', 'deliver'], env);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/delivered 0, failed 0, dead 0, still pending 4/);
    expect(d.stderr).toMatch(/is disabled: it answered 410 Gone .*notify enable/);
    expect(rx.requests).toBe(1);

    const e = await runCli(['notify', 'enable'], env);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/enabled again .*\n.*delivered 4, failed 0, dead 0, still pending 0/);
    const arrived = (id: string) => rx.accepted.filter((x) => x.payload.data.migrationId === id).map((x) => x.payload.type);
    expect(arrived('n1')).toEqual(['migration.started', 'migration.awaiting_code']);
    expect(arrived('n2')).toEqual(['migration.started', 'migration.awaiting_code']);
    // The event that saw the 410 is delivered under the same id. (Not necessarily first: the
    // two migrations' outboxes are delivered side by side, each in its own order, checked above.)
    expect(rx.accepted.find((x) => x.payload.data.migrationId === 'n1' && x.payload.type === 'migration.started')!.id).toBe(listed[0].id);
    expect(JSON.parse((await runCli(['notify', 'list', '--json'], env)).stdout)).toEqual([]);
    expect((await runCli(['notify', 'enable'], env)).stdout).toMatch(/No disabled endpoint/);
    const bad = await runCli(['notify', 'enable', 'zz'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/key: "zz" is not an endpoint key/);
  });

  it('`resume` is not refused (exit 5) while `notify deliver` in another process waits a second on the receiver', async () => {
    await setup();
    rx.answer = () => '500';
    expect((await runCli(start(), env)).code).toBe(0);
    const pnid = JSON.parse((await runCli(['status', 'n1', '--json'], env)).stdout).phoneNumberId as string;
    const code = w.sandbox.lastCodeFor(pnid)!.code;
    // The deliverer's first POST stalls until `resume` is over (30 s and its timeout are only
    // bounds), so the two surely overlap however slow the machine; the rest are accepted.
    const before = rx.requests;
    rx.answer = (n) => (n === before + 1 ? 'hang' : 'ok');
    rx.hangMs = 30_000;
    // Delivered by a separate process, once due (the start's failures were 3 s backoff).
    const deliverer = runCli(['--notify-backoff-ms', '50', '--notify-timeout-ms', '30000', 'notify', 'deliver', '--follow'], env, { timeoutMs: 30_000 });
    const t0 = Date.now();
    while (rx.inFlight === 0) {
      if (Date.now() - t0 > 10_000) throw new Error('notify deliver never POSTed');
      await new Promise((r) => setTimeout(r, 10));
    }
    const r = await runCli(['resume', 'n1', '--code', code, '--json'], { ...env, WABA_REGISTER_PIN: '246810' });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).state).toBe('completed');
    expect(rx.inFlight).toBe(1); // the deliverer's POST was out all along
    rx.release();
    const d = await deliverer;
    expect(d.code, d.stderr).toBe(0);
    // Whatever was left (the run could not deliver while the deliverer held the outbox) goes now.
    const rest = await runCli(['notify', 'deliver'], env);
    expect(rest.code, rest.stderr).toBe(0);
    expect(JSON.parse((await runCli(['notify', 'list', '--json'], env)).stdout)).toEqual([]);
    const arrived = rx.deliveries.filter((x) => x.answer === 'hang' || x.answer === 'ok').map((x) => x.payload.type);
    expect([...new Set(arrived)]).toEqual(['migration.started', 'migration.awaiting_code', 'migration.completed']);
    expect(rx.maxInFlight).toBe(1);
    expect(rx.concurrentSameId).toEqual([]);
  });

  it('notify retry revives dead events and delivers them', async () => {
    await setup();
    rx.answer = () => '500';
    expect((await runCli(['--notify-give-up-ms', '1', ...start()], env)).code).toBe(0);
    const dead = JSON.parse((await runCli(['notify', 'list', '--json'], env)).stdout);
    expect(dead.map((r: { status: string }) => r.status)).toEqual(['dead', 'dead']);
    expect((await runCli(['status', 'n1'], env)).stdout).toMatch(/2 dead/);
    rx.answer = () => 'ok';
    const r = await runCli(['notify', 'retry', 'n1'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 notification\(s\) of n1 retried: delivered 2/);
    expect(rx.accepted.map((x) => x.id)).toEqual([dead[0].id, dead[1].id]);
  });

  it('notify test sends a signed ping; a refusing receiver exits 4', async () => {
    await setup();
    const ok = await runCli(['notify', 'test'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Test notification evt_\w+ delivered to http:\/\/127\.0\.0\.1:\d+ \(HTTP 204\)/);
    expect(rx.accepted[0]!.payload.type).toBe('notify.test');
    rx.answer = () => '500';
    const bad = await runCli(['notify', 'test'], env);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/failed: HTTP 500/);
  });

  it('the secret can come from a file', async () => {
    await setup();
    const file = join(w.dir, '..', `secret-${process.pid}`);
    await writeFile(file, `${TEST_SECRET}\n`);
    const { WABA_NOTIFY_SECRET: _omit, ...rest } = env;
    const r = await runCli(['--notify-secret-file', file, 'notify', 'test'], rest);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('bad notification settings: a clear message, exit 2, nothing written', () => {
  it.each([
    [{ WABA_NOTIFY_URL: 'http://hooks.example.com/x' }, /--notify-url: .* must use https/],
    [{ WABA_NOTIFY_URL: 'not a url' }, /--notify-url: "not a url" is not a URL/],
    [{ WABA_NOTIFY_SECRET: '' }, /notify secret missing: set WABA_NOTIFY_SECRET/],
    [{ WABA_NOTIFY_SECRET: 'hunter2' }, /WABA_NOTIFY_SECRET: must start with "whsec_"/],
    [{ WABA_NOTIFY_SECRET: 'whsec_c2hvcnQ=' }, /WABA_NOTIFY_SECRET: decodes to 5 bytes/],
  ])('%j', async (bad, msg) => {
    await setup();
    const before = await snapshotDir(w.dir);
    const r = await runCli(start(), { ...env, ...bad });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).not.toContain('hunter2');
    expect(await snapshotDir(w.dir)).toEqual(before);
    expect(rx.requests).toBe(0);
  });

  it.each([
    [['--notify-backoff-ms', 'soon'], /--notify-backoff-ms: "soon" is not a number/],
    [['--notify-backoff-ms', '5000', '--notify-max-backoff-ms', '1000'], /--notify-max-backoff-ms: \(1000\) is below --notify-backoff-ms/],
  ])('%j', async (flags, msg) => {
    await setup();
    const before = await snapshotDir(w.dir);
    const r = await runCli([...flags, ...start()], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(await snapshotDir(w.dir)).toEqual(before);
  });

  it('deliver and test need a URL', async () => {
    await setup();
    const { WABA_NOTIFY_URL: _u, ...rest } = env;
    for (const cmd of [['notify', 'deliver'], ['notify', 'test']]) {
      const r = await runCli(cmd, rest);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/notify URL missing: pass --notify-url/);
    }
  });
});
