/** The On-Premises simulator and the Graph sandbox's side of the On-Premises → Cloud API move. */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, GraphSandbox, ONPREM_FIXTURES, OnPremSandbox, type ScenarioName } from '../../src/sandbox/index.js';

let graph: GraphSandbox | undefined;
let onprem: OnPremSandbox | undefined;
afterEach(async () => {
  await graph?.stop();
  await onprem?.stop();
  graph = onprem = undefined;
});

async function call(url: string, method: string, init: { body?: unknown; auth?: string } = {}) {
  const r = await request(url, {
    method: method as 'GET',
    headers: { ...(init.auth ? { authorization: init.auth } : {}), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, any> };
}
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const bearer = `Bearer ${FIXTURES.token}`;

async function both(scenario: ScenarioName) {
  graph = new GraphSandbox({ scenario });
  onprem = new OnPremSandbox().link(graph);
  const g = `${await graph.start()}/v23.0`;
  const o = await onprem.start();
  const login = await call(`${o}/v1/users/login`, 'POST', { auth: basic(ONPREM_FIXTURES.user, ONPREM_FIXTURES.password) });
  const auth = `Bearer ${login.json.users[0].token as string}`;
  const num = graph.findByPhone(FIXTURES.onpremPhone)!;
  return { g, o, auth, num };
}

describe('On-Premises sandbox', () => {
  it('logs in with basic auth only, serves the documented settings, PATCH merges and DELETE restores the defaults', async () => {
    const { o, auth } = await both('onprem_happy');
    expect((await call(`${o}/v1/users/login`, 'POST', { auth: basic('admin', 'wrong') })).status).toBe(401);
    expect((await call(`${o}/v1/settings/application`, 'GET')).status).toBe(401);
    const s = await call(`${o}/v1/settings/application`, 'GET', { auth });
    expect(s.status).toBe(200);
    expect(s.json.settings.application).toMatchObject({
      callback_persist: true,
      callback_backoff_delay_ms: '5000',
      max_callback_backoff_delay_ms: '900000',
      heartbeat_interval: 5,
      unhealthy_interval: 30,
      garbagecollector_enable: { messages: true, media: false },
      wa_id: '16315551019',
      webhooks: { url: ONPREM_FIXTURES.settings.webhooks.url, max_concurrent_requests: 12 },
      media: { auto_download: ['image', 'document'] },
    });
    await call(`${o}/v1/settings/application`, 'PATCH', { auth, body: { webhooks: { max_concurrent_requests: 24 } } });
    const after = (await call(`${o}/v1/settings/application`, 'GET', { auth })).json.settings.application;
    expect(after.webhooks).toMatchObject({ url: ONPREM_FIXTURES.settings.webhooks.url, max_concurrent_requests: 24 });
    await call(`${o}/v1/settings/application`, 'DELETE', { auth });
    const reset = (await call(`${o}/v1/settings/application`, 'GET', { auth })).json.settings.application;
    expect(reset).toMatchObject({ callback_backoff_delay_ms: '3000', webhooks: { url: '', max_concurrent_requests: 6 }, media: { auto_download: [] } });
  });

  it('register with the backup and the right PIN: CLOUD_API, and the On-Premises client answers as disconnected', async () => {
    const { g, o, auth, num } = await both('onprem_happy');
    expect(num.platform_type).toBe('ON_PREMISE');
    const backup = await call(`${o}/v1/settings/backup`, 'POST', { auth, body: { password: 'bk-pass' } });
    const data = backup.json.settings.data as string;
    expect(data).toBeTruthy();
    const badPw = await call(`${g}/${num.id}/register`, 'POST', { auth: bearer, body: { messaging_product: 'whatsapp', pin: FIXTURES.onpremPin, backup: { data, password: 'nope' } } });
    expect(badPw.json.error.code).toBe(100);
    const ok = await call(`${g}/${num.id}/register`, 'POST', { auth: bearer, body: { messaging_product: 'whatsapp', pin: FIXTURES.onpremPin, backup: { data, password: 'bk-pass' } } });
    expect(ok.json).toEqual({ success: true });
    const n = await call(`${g}/${num.id}?fields=platform_type,status`, 'GET', { auth: bearer });
    expect(n.json).toMatchObject({ platform_type: 'CLOUD_API', status: 'CONNECTED' });
    expect((await call(`${o}/v1/settings/application`, 'GET', { auth })).status).toBe(503);
    expect(graph!.registered.get('16315551019')).toBe(1);
  });

  it('onprem_wrong_pin: 133005, and the On-Premises client is down anyway', async () => {
    const { g, o, auth, num } = await both('onprem_wrong_pin');
    const data = (await call(`${o}/v1/settings/backup`, 'POST', { auth, body: { password: 'bk' } })).json.settings.data;
    const r = await call(`${g}/${num.id}/register`, 'POST', { auth: bearer, body: { messaging_product: 'whatsapp', pin: FIXTURES.onpremPin, backup: { data, password: 'bk' } } });
    expect(r.json.error.code).toBe(133005);
    expect(onprem!.disconnected).toBe(true);
    expect((await call(`${g}/${num.id}?fields=platform_type`, 'GET', { auth: bearer })).json.platform_type).toBe('ON_PREMISE');
  });

  it('webhook_configuration: set and read back; refused (100) when no app is subscribed to the WABA', async () => {
    const { g, num } = await both('onprem_happy');
    const set = await call(`${g}/${num.id}`, 'POST', { auth: bearer, body: { webhook_configuration: { override_callback_uri: 'https://x.example/hook', verify_token: 'vt' } } });
    expect(set.json).toEqual({ success: true });
    const read = await call(`${g}/${num.id}?fields=webhook_configuration`, 'GET', { auth: bearer });
    expect(read.json.webhook_configuration.phone_number).toBe('https://x.example/hook');
    await graph!.stop();
    await onprem!.stop();
    const second = await both('onprem_no_subscribed_app');
    const refused = await call(`${second.g}/${second.num.id}`, 'POST', { auth: bearer, body: { webhook_configuration: { override_callback_uri: 'https://x.example/hook' } } });
    expect(refused.json.error.code).toBe(100);
  });

  it('existing scenarios have no On-Premises number', () => {
    graph = new GraphSandbox({ scenario: 'happy' });
    expect([...graph.numbers.values()].some((n) => n.platform_type === 'ON_PREMISE')).toBe(false);
  });
});
