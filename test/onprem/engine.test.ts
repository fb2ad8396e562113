/** The On-Premises → Cloud API path through the engine and the real machine, on both sandboxes. */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, ONPREM_FIXTURES } from '../../src/sandbox/index.js';
import { BACKUP_PASSWORD, onpremWorld, VERIFY_TOKEN, type OnPremWorld } from './helpers.js';

let w: OnPremWorld | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

async function allFiles(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out += await readFile(join(e.parentPath, e.name), 'utf8');
  return out;
}

describe('On-Premises → Cloud API (engine)', () => {
  it('happy path: checks → snapshotting → backing_up → registering → carrying_settings → confirming → completed; same phone_number_id', async () => {
    w = await onpremWorld('onprem_happy');
    const id = w.graph.findByPhone(FIXTURES.onpremPhone)!.id;
    const seen: string[] = [];
    const v = await w.engine({ onTransition: (t) => seen.push(t.to) }).start(w.startRequest({ pin: FIXTURES.onpremPin, carryWebhook: true }));
    expect(v.state).toBe('completed');
    expect(v.phoneNumberId).toBe(id);
    expect([...new Set(seen)]).toEqual(['checking', 'snapshotting', 'backing_up', 'registering', 'carrying_settings', 'confirming', 'completed']);
    expect(seen).not.toContain('creating');
    expect(w.graph.counters['POST phone_numbers']).toBeUndefined();
    expect(w.graph.counters['POST request_code']).toBeUndefined();
    expect(w.graph.registered.get('16315551019')).toBe(1);
    const n = w.graph.numbers.get(id)!;
    expect(n.platform_type).toBe('CLOUD_API');
    expect(n.webhook).toEqual({ override_callback_uri: ONPREM_FIXTURES.settings.webhooks.url, verify_token: VERIFY_TOKEN });
    expect(w.onprem.disconnected).toBe(true);
    // the carry-over report
    const line = (s: string) => v.carryOver!.find((l) => l.setting === s)!;
    expect(line('webhooks.url')).toMatchObject({ value: JSON.stringify('https://hooks.example.com/whatsapp?auth=[redacted]'), applied: true });
    expect(line('callback_persist')).toMatchObject({ value: 'true', cloud: expect.stringMatching(/^none: Meta retries Cloud webhooks itself for up to 7 days/), applied: false });
    expect(line('media.auto_download').cloud).toMatch(/^none: media is not auto-downloaded on Cloud/);
    // the audit history shows the On-Premises calls beside the Graph ones
    const calls = (await w.engine().history('op1')).flatMap((h) => h.calls.map((c) => `${c.method} ${c.path} ${c.status}`));
    expect(calls).toEqual(expect.arrayContaining(['POST on-premises /v1/users/login 200', 'GET on-premises /v1/settings/application 200', 'POST on-premises /v1/settings/backup 200']));
    expect(calls.some((c) => /^POST \/v23\.0\/\d+\/register 200$/.test(c))).toBe(true);
    // no secret on disk
    const disk = await allFiles(w.dir);
    for (const secret of [BACKUP_PASSWORD, 'shared-secret-123', ONPREM_FIXTURES.password, FIXTURES.onpremPin, VERIFY_TOKEN]) expect(disk).not.toContain(secret);
    expect(disk).toContain('onprem');
  });

  it('a number already on CLOUD_API is adopted and confirmed: nothing is sent', async () => {
    w = await onpremWorld('onprem_happy');
    const n = w.graph.findByPhone(FIXTURES.onpremPhone)!;
    n.platform_type = 'CLOUD_API';
    const v = await w.engine().start(w.startRequest());
    expect(v.state).toBe('completed');
    expect(w.graph.counters['POST register']).toBeUndefined();
    expect(w.onprem.counters['POST /v1/settings/backup']).toBeUndefined();
  });

  it('onprem_wrong_pin: 133005 is permanent, with a remedy that says the client is now disconnected', async () => {
    w = await onpremWorld('onprem_wrong_pin');
    const v = await w.engine().start(w.startRequest({ pin: FIXTURES.onpremPin }));
    expect(v.state).toBe('failed');
    expect(v.failure).toMatchObject({ step: 'registering', code: 133005 });
    expect(v.failure!.remedy).toMatch(/On-Premises client is now disconnected/);
    expect(w.graph.counters['POST register']!.calls).toBe(1);
    // Resumed with the same PIN: the client is down, so no backup and no second register.
    const again = await w.engine().resume('op1', { pin: FIXTURES.onpremPin });
    expect(again.state).toBe('failed');
    expect(again.failure).toMatchObject({ step: 'backing_up', message: expect.stringMatching(/disconnected/) });
    expect(again.failure!.remedy).toMatch(/restart a client that an earlier register left disconnected/);
    expect(w.graph.counters['POST register']!.calls).toBe(1);
  });

  it('onprem_no_subscribed_app and an unconfirmed PIN block at checks, with the fixes', async () => {
    w = await onpremWorld('onprem_no_subscribed_app');
    const v = await w.engine().start(w.startRequest({ confirm: [] }));
    expect(v.state).toBe('blocked');
    const by = Object.fromEntries(v.checks.map((c) => [c.name, c.status]));
    expect(by).toMatchObject({ number_on_premise: 'pass', app_subscribed: 'fail', pin_known: 'unknown' });
    expect(w.onprem.counters['GET /v1/settings/application']).toBeUndefined();
  });

  it('no PIN: held in registering without a call; resumed with the PIN it makes a new backup (none was stored) and completes', async () => {
    w = await onpremWorld('onprem_happy');
    const v = await w.engine().start(w.startRequest());
    expect(v.state).toBe('registering');
    expect(w.graph.counters['POST register']).toBeUndefined();
    const done = await w.engine().resume('op1', { pin: FIXTURES.onpremPin });
    expect(done.state).toBe('completed');
    expect(w.onprem.backupCount).toBe(2);
    expect(w.graph.registered.get('16315551019')).toBe(1);
  });

  it('a number in another WABA, or not On-Premises, is refused at checks', async () => {
    w = await onpremWorld('onprem_happy');
    const v = await w.engine().start(w.startRequest({ waba: FIXTURES.destWabaId }));
    expect(v.state).toBe('blocked');
    expect(v.checks.find((c) => c.name === 'number_on_premise')).toMatchObject({ status: 'fail', remedy: expect.stringMatching(/--waba/) });
  });

  it('a run resumed after register no longer has the webhook URL secret: it asks for WABA_WEBHOOK_URL, then carries it', async () => {
    w = await onpremWorld('onprem_happy');
    // Right after register took effect, Meta fails every request: the run stops in waiting_retry
    // and its memory (the full webhook URL) is gone with it.
    w.graph.events.once('onprem_disconnected', () => w!.graph.setFaults({ serverError: 1 }));
    const first = w.engine({ maxWaitMs: 0 });
    const v1 = await first.start(w.startRequest({ pin: FIXTURES.onpremPin, carryWebhook: true }));
    expect(v1.state).toBe('waiting_retry');
    w.graph.setFaults({});
    const v2 = await w.engine().resume('op1', {});
    expect(v2.state).toBe('failed');
    expect(v2.failure!.message).toMatch(/WABA_WEBHOOK_URL/);
    expect(w.graph.registered.get('16315551019')).toBe(1);
    const url = ONPREM_FIXTURES.settings.webhooks.url;
    const v3 = await w.engine({ onprem: { webhookUrl: url, webhookVerifyToken: VERIFY_TOKEN } }).resume('op1', {});
    expect(v3.state).toBe('completed');
    expect(w.graph.registered.get('16315551019')).toBe(1);
    expect(w.graph.findByPhone(FIXTURES.onpremPhone)!.webhook?.override_callback_uri).toBe(url);
  });

  it('--carry-settings: show_security_notifications and notify_user_change_number in one whatsapp_business_api_data POST; the report says applied', async () => {
    w = await onpremWorld('onprem_happy', { record: true });
    const id = w.graph.findByPhone(FIXTURES.onpremPhone)!.id;
    const v = await w.engine().start(w.startRequest({ pin: FIXTURES.onpremPin, carrySettings: true }));
    expect(v.state).toBe('completed');
    // The On-Premises fixture has show_security_notifications true, notify_user_change_number false (default).
    expect(w.graph.numbers.get(id)!.apiData).toEqual({ show_security_notifications: true, notify_user_change_number: false });
    const posts = w.graph.exchanges.filter((x) => x.method === 'POST' && x.path === `/v23.0/${id}`);
    expect(posts.map((x) => x.body)).toEqual([{ whatsapp_business_api_data: { show_security_notifications: true, notify_user_change_number: false } }]);
    const line = (s: string) => v.carryOver!.find((l) => l.setting === s)!;
    expect(line('show_security_notifications')).toMatchObject({ value: 'true', applied: true, cloud: expect.stringMatching(/whatsapp_business_api_data\.show_security_notifications/) });
    expect(line('notify_user_change_number')).toMatchObject({ value: 'false', applied: true });
    // Not asked: the webhook is left alone.
    expect(line('webhooks.url').applied).toBe(false);
    expect(w.graph.numbers.get(id)!.webhook).toBeNull();
  });

  it('without --carry-settings nothing is sent and the report says not applied', async () => {
    w = await onpremWorld('onprem_happy');
    const id = w.graph.findByPhone(FIXTURES.onpremPhone)!.id;
    const v = await w.engine().start(w.startRequest({ pin: FIXTURES.onpremPin }));
    expect(v.state).toBe('completed');
    expect(w.graph.numbers.get(id)!.apiData).toBeUndefined();
    expect(v.carryOver!.find((l) => l.setting === 'show_security_notifications')!.applied).toBe(false);
  });

  it('--carry-settings whose answer is lost: the same values are sent again (harmless) and the run completes', async () => {
    w = await onpremWorld('onprem_happy');
    const id = w.graph.findByPhone(FIXTURES.onpremPhone)!.id;
    const graph = w.graph;
    const v = await w
      .engine({
        onTransition: (t) => {
          // Lose the answer to the next POST /{phone-number-id} (it is applied, the client sees a dropped connection).
          if (t.to === 'carrying_settings' && t.from !== 'waiting_retry') graph.loseNextAnswer('');
        },
      })
      .start(w.startRequest({ pin: FIXTURES.onpremPin, carrySettings: true }));
    expect(v.state).toBe('completed');
    const states = (await w.engine().history('op1')).map((h) => h.to);
    expect(states.filter((s) => s === 'carrying_settings')).toHaveLength(2);
    expect(states).toContain('waiting_retry');
    expect(graph.counters['POST phone']).toMatchObject({ calls: 2, applied: 2 });
    expect(graph.numbers.get(id)!.apiData).toEqual({ show_security_notifications: true, notify_user_change_number: false });
    expect(v.carryOver!.filter((l) => l.applied).map((l) => l.setting).sort()).toEqual(['notify_user_change_number', 'show_security_notifications']);
  });
});
