/** The dashboard's JSON API and pages against a real server on 127.0.0.1 over a seeded store. */
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import jsyaml from 'js-yaml';
import { OpenAPIBackend, ValidationContext } from 'openapi-backend';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dashboard } from '../../src/server/app.js';
import { toView } from '../../src/runner/view.js';
import { FIXTURES } from '../helpers/env.js';
import { addPanels, auth, collectEvents, getJson, PIN, seed, serve, TOKEN, XSS_CHECK, XSS_NAME, XSS_NOTIFY, XSS_SETTING, type Seeded } from './helpers.js';

let s: Seeded;
let dashboard: Dashboard;
let url: string;
let api: OpenAPIBackend;
/** Every JSON body and page served in this file, scanned for secrets at the end. */
const served: string[] = [];

beforeAll(async () => {
  s = await seed();
  ({ dashboard, url } = await serve(s));
  api = new OpenAPIBackend({ definition: jsyaml.load(readFileSync('docs/dashboard-openapi.yaml', 'utf8')) as never, quick: true, ajvOpts: { strict: false, validateFormats: false } });
  await api.init();
});
afterAll(async () => {
  await dashboard?.close();
  await s?.close();
});

/** GET with the token, validated against docs/dashboard-openapi.yaml. */
async function call(path: string, expectStatus = 200, headers: Record<string, string> = auth) {
  const r = await getJson(`${url}${path}`, headers);
  served.push(r.text);
  expect(r.status, `${path}: ${r.text.slice(0, 300)}`).toBe(expectStatus);
  const u = new URL(path, url);
  const op = api.matchOperation({ method: 'get', path: u.pathname, headers: {} });
  expect(op, `${path} is documented`).toBeDefined();
  const v = api.validateResponse(r.body, op!, r.status);
  expect(v.errors ?? [], `${path} ${r.status} matches the OpenAPI file`).toEqual([]);
  return r.body as any;
}

describe('auth', () => {
  it('refuses every page and API call without the token, with a JSON error for the API', async () => {
    for (const path of ['/', '/migrations', '/migrations/done-1', '/static/live.js', '/api/migrations', '/api/migrations/done-1', '/api/events', '/api/batches', '/healthz']) {
      const r = await getJson(`${url}${path}`, {});
      expect(r.status, path).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(r.text).not.toContain('done-1');
      if (path.startsWith('/api') || path === '/healthz') expect(r.body).toMatchObject({ error: { code: 'unauthorized' } });
    }
    await call('/api/migrations', 401, { authorization: 'Bearer wrong-token' });
    await call('/api/migrations', 401, { authorization: `Basic ${TOKEN}` });
  });

  it('exchanges ?token= for an HttpOnly SameSite=Strict cookie and redirects to the clean URL', async () => {
    const r = await request(`${url}/migrations?state=completed&token=${TOKEN}`);
    await r.body.text();
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/migrations?state=completed');
    const cookie = String(r.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0]!;
    const page = await getJson(`${url}/migrations?state=completed`, { cookie: pair });
    expect(page.status).toBe(200);
    expect(page.text).toContain('done-1');
    // The cookie opens the API too (the page's script reads /api/overview and /api/events with it).
    expect((await getJson(`${url}/api/overview`, { cookie: pair })).status).toBe(200);
    // A wrong cookie or a wrong ?token= is refused; ?token= is never accepted on the API.
    expect((await getJson(`${url}/`, { cookie: 'waba_dashboard=forged' })).status).toBe(401);
    expect((await getJson(`${url}/?token=nope`, {})).status).toBe(401);
    expect((await getJson(`${url}/api/migrations?token=${TOKEN}`, {})).status).toBe(401);
    // The redirect never leaves this site, whatever the path looks like.
    for (const path of [`/a/..//evil.example/?token=${TOKEN}`, `//evil.example/?token=${TOKEN}`]) {
      const location = await new Promise<string | undefined>((resolve, reject) =>
        get({ host: '127.0.0.1', port: new URL(url).port, path }, (res) => (res.resume(), resolve(res.headers.location))).on('error', reject),
      );
      expect(location, path).toMatch(/^\/(?![/\\])/);
    }
  });

  it('serves pages with a strict CSP and no inline script', async () => {
    const r = await getJson(`${url}/migrations/xss-1`);
    expect(r.status).toBe(200);
    expect(String(r.headers['content-security-policy'])).toMatch(/default-src 'self'/);
    expect(String(r.headers['content-security-policy'])).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(r.headers['cache-control']).toBe('no-store');
    const scripts = r.text.match(/<script[^>]*>/g) ?? [];
    expect(scripts).toEqual(['<script src="/static/live.js" defer>']);
    expect(r.text).not.toMatch(/ on[a-z]+="/);
    expect(r.text).not.toMatch(/ style="/);
  });
});

describe('escaping', () => {
  it('shows a verified name and a check text with markup as text', async () => {
    const r = await getJson(`${url}/migrations/xss-1`);
    expect(r.text).not.toContain(XSS_NAME);
    expect(r.text).not.toContain(XSS_CHECK);
    expect(r.text).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
    expect(r.text).toContain('&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;');
  });
});

describe('records of later layers', () => {
  it('shows document fields it does not know (notifications, carry-over) escaped, under "Also recorded"', async () => {
    const lease = await s.w.store.lock('done-1');
    const h = await s.w.store.open('done-1');
    (h.data as unknown as Record<string, unknown>).notifications = [{ channel: 'webhook', status: 'delivered', note: '<b>ok</b>' }];
    await h.save();
    await lease.release();
    const page = await getJson(`${url}/migrations/done-1`);
    expect(page.text).toContain('<h2>Also recorded</h2><h3>notifications</h3>');
    expect(page.text).toContain('&quot;status&quot;: &quot;delivered&quot;');
    expect(page.text).toContain('&lt;b&gt;ok&lt;/b&gt;');
  });
});

describe('notifications and carry-over panels', () => {
  it('the migration page has a Notifications panel (type, webhook-id, state, attempts, next attempt, last error) and an On-Premises carry-over panel, escaped', async () => {
    // Absent data, absent panels (rendered hidden, for live updates to fill in).
    const before = await getJson(`${url}/migrations/blocked-1`);
    expect(before.text).toMatch(/<section id="notifications-panel" class="panel" hidden>/);
    expect(before.text).toMatch(/<section id="carryover-panel" class="panel" hidden>/);
    expect(await call('/api/migrations/blocked-1/notifications')).toEqual({ id: 'blocked-1', endpointDisabled: null, events: null });

    const ids = await addPanels(s.w, 'blocked-1');
    const page = await getJson(`${url}/migrations/blocked-1`);
    served.push(page.text);
    expect(page.text).toMatch(/<section id="notifications-panel" class="panel">\s*<h2>Notifications<\/h2>/);
    expect(page.text).toMatch(/<section id="carryover-panel" class="panel">\s*<h2>On-Premises settings carried over<\/h2>/);
    expect(page.text).not.toContain('<h3>outbox</h3>'); // no longer dumped under "Also recorded"
    expect(page.text).toContain(`<tr data-event="${ids.delivered}" data-notify-state="delivered">`);
    expect(page.text).toContain(`<tr data-event="${ids.pending}" data-notify-state="pending">`);
    expect(page.text).toContain(`<code>${ids.pending}</code>`);
    expect(page.text).toMatch(/<td class="attempts">2<\/td>/);
    expect(page.text).toContain('<tr data-setting="webhooks.url" data-applied="yes">');
    expect(page.text).toContain('<tr data-setting="callback_backoff_delay_ms" data-applied="no">');
    // Markup in a receiver's error and in a stored setting value is text.
    expect(page.text).not.toContain(XSS_NOTIFY);
    expect(page.text).not.toContain('<script>window.__pwned=4');
    expect(page.text).toContain('HTTP 500 &lt;img src=x onerror=&quot;window.__pwned=3&quot;&gt;');
    expect(page.text).toContain('&quot;&lt;script&gt;window.__pwned=4&lt;/script&gt;&quot;');

    const n = await call('/api/migrations/blocked-1/notifications');
    expect(n.endpointDisabled).toBeNull();
    expect(n.events.map((e: any) => [e.id, e.seq, e.type, e.state, e.attempts])).toEqual([
      [ids.delivered, 1, 'migration.started', 'delivered', 0],
      [ids.pending, 2, 'migration.blocked', 'pending', 2],
    ]);
    expect(n.events[1].lastError).toContain(XSS_NOTIFY);
    expect(n.events[1].nextAttemptAt).toMatch(/^\d{4}-/);
    expect(n.events[0].nextAttemptAt).toBeNull();
    const v = await call('/api/migrations/blocked-1');
    expect(v.notifications).toMatchObject({ pending: 1, delivered: 1, dead: 0, endpointDisabled: null });
    expect(v.carryOver.map((l: any) => [l.setting, l.applied])).toEqual([
      ['webhooks.url', true],
      ['callback_backoff_delay_ms', false],
      ['pass_through', false],
    ]);
    expect(v.carryOver[2].value).toBe(XSS_SETTING);

    // A 410 recorded in the store: the pending event is shown held by the disabled endpoint.
    const disabled = { key: 'c'.repeat(64), endpoint: 'https://hooks.example.com/***?***', disabledAt: '2026-11-23T10:00:00.000Z', eventId: ids.pending, owner: 'blocked-1' };
    await s.w.store.disableEndpoint(disabled);
    try {
      const held = await call('/api/migrations/blocked-1/notifications');
      expect(held.endpointDisabled).toEqual({ endpoint: disabled.endpoint, disabledAt: disabled.disabledAt, eventId: ids.pending, owner: 'blocked-1', label: 'endpoint disabled (410 at 2026-11-23T10:00:00.000Z)' });
      expect(held.events.map((e: any) => e.state)).toEqual(['delivered', 'endpoint-disabled']);
      expect(held.events[1].nextAttemptAt).toBeNull();
      expect((await call('/api/migrations/blocked-1')).notifications.endpointDisabled.label).toBe('endpoint disabled (410 at 2026-11-23T10:00:00.000Z)');
      const p2 = await getJson(`${url}/migrations/blocked-1`);
      expect(p2.text).toMatch(/<p id="notifications-disabled" class="panel-alert" role="status"><strong data-field="endpointDisabledLabel">endpoint disabled \(410 at 2026-11-23T10:00:00.000Z\)<\/strong>/);
      expect(p2.text).toContain(`<tr data-event="${ids.pending}" data-notify-state="endpoint-disabled">`);
    } finally {
      await s.w.store.enableEndpoint(disabled.key);
    }
    await call('/api/migrations/nope-1/notifications', 404);
  });

  it('a migration page stream carries an update event for a write without a transition', async () => {
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const ac = new AbortController();
    const r = await request(`${url}/api/events?id=blocked-1`, { headers: auth, signal: ac.signal });
    opened();
    await open;
    const got = (async () => {
      let buf = '';
      for await (const chunk of r.body) {
        buf += chunk.toString();
        if (/event: update\ndata: \{"id":"blocked-1"\}/.test(buf)) return buf;
      }
      return buf;
    })();
    await new Promise((res) => setTimeout(res, 100));
    const lease = await s.w.store.lock('blocked-1');
    const h = await s.w.store.open('blocked-1');
    h.data.outbox![1]!.deliveredAt = new Date().toISOString();
    await h.save();
    await lease.release();
    const timer = setTimeout(() => ac.abort(), 5000);
    const text = await got.catch(() => '');
    clearTimeout(timer);
    r.body.destroy();
    expect(text).toMatch(/event: update\ndata: \{"id":"blocked-1"\}/);
    expect(text).not.toMatch(/event: transition/); // no history entry was added
  });
});

describe('JSON API', () => {
  it('healthz and the overview: counts by state, who needs a person, batches with progress, unreadable documents', async () => {
    expect(await call('/healthz')).toMatchObject({ status: 'ok', migrations: 4 });
    const o = await call('/api/overview');
    expect(o.total).toBe(4);
    expect(o.counts).toMatchObject({ completed: 1, awaiting_code: 2, blocked: 1, failed: 0 });
    expect(o.attention.items.map((m: any) => [m.id, m.attention]).sort()).toEqual([
      ['blocked-1', 'blocked'],
      ['code-1', 'code'],
      ['xss-1', 'code'],
    ]);
    expect(o.attention.items.find((m: any) => m.id === 'code-1').nextAction).toMatch(/enter the code sent by SMS/);
    expect(o.batches).toEqual([expect.objectContaining({ id: 'b1', total: 2, completed: 1, attention: 1, failed: 0 })]);
    expect(o.problems).toEqual([expect.objectContaining({ id: 'broken' })]);
  });

  it('lists with filters, sort and paging', async () => {
    const all = await call('/api/migrations');
    expect(all.total).toBe(4);
    expect(all.items.map((m: any) => m.updatedAt)).toEqual([...all.items.map((m: any) => m.updatedAt)].sort().reverse());
    expect((await call('/api/migrations?state=awaiting_code')).items.map((m: any) => m.id).sort()).toEqual(['code-1', 'xss-1']);
    expect((await call('/api/migrations?state=completed,blocked&sort=id')).items.map((m: any) => m.id)).toEqual(['blocked-1', 'done-1']);
    expect((await call('/api/migrations?phone=%2B16315551000')).items.map((m: any) => m.id)).toEqual(['blocked-1']);
    expect((await call('/api/migrations?phone=55540')).total).toBe(3);
    expect((await call('/api/migrations?batch=b1&sort=id')).items.map((m: any) => m.id)).toEqual(['code-1', 'done-1']);
    expect((await call('/api/migrations?attention=true')).total).toBe(3);
    expect((await call(`/api/migrations?updatedSince=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).total).toBe(0);
    expect((await call('/api/migrations?updatedSince=2020-01-01')).total).toBe(4);
    const p1 = await call('/api/migrations?sort=id&limit=3');
    const p2 = await call('/api/migrations?sort=id&limit=3&page=2');
    expect(p1.items.map((m: any) => m.id)).toEqual(['blocked-1', 'code-1', 'done-1']);
    expect(p2).toMatchObject({ total: 4, offset: 3, limit: 3, items: [expect.objectContaining({ id: 'xss-1' })] });
    expect((await call('/api/migrations?sort=id&order=desc&limit=1')).items[0].id).toBe('xss-1');
  });

  it.each([
    ['state=nope', /state: "nope" is not a state/],
    ['limit=0', /^limit:/],
    ['limit=501', /^limit:/],
    ['sort=phoneNumberId', /^sort:/],
    ['updatedSince=yesterday', /^updatedSince: use an ISO 8601 date/],
    ['phone=abc', /^phone: use digits/],
    ['batch=..%2Fx', /^batch: not a batch id/],
  ])('refuses %s with a message naming the field', async (qs, message) => {
    const r = await call(`/api/migrations?${qs}`, 400);
    expect(r.error.code).toBe('bad_request');
    expect(r.error.message).toMatch(message);
  });

  it('one migration is the --json view; its history has every transition with its Graph calls', async () => {
    const v = await call('/api/migrations/done-1');
    const { registerCallsLast72h: _a, ...expected } = toView(await s.w.store.load('done-1'));
    const { registerCallsLast72h: _b, ...got } = v;
    expect(got).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(v.state).toBe('completed');
    expect(v.phoneNumberId).toMatch(/^\d+$/);
    const { history } = await call('/api/migrations/done-1/history');
    expect(history.map((h: any) => h.n)).toEqual(history.map((_: unknown, i: number) => i + 1));
    for (let i = 1; i < history.length; i++) expect(history[i].from).toBe(history[i - 1].to);
    const create = history.flatMap((h: any) => h.calls).find((c: any) => c.method === 'POST' && c.path.endsWith('/phone_numbers'));
    expect(create).toMatchObject({ status: 200, code: null, fbtraceId: expect.stringMatching(/^[A-Za-z0-9_-]+$/), durationMs: expect.any(Number) });
    expect(history.at(-1).to).toBe('completed');
  });

  it('answers 404 for an unknown migration or batch, 400 for a bad id, 422 for an unreadable document', async () => {
    expect((await call('/api/migrations/nope', 404)).error.message).toMatch(/no migration "nope"/);
    expect((await call('/api/migrations/nope/history', 404)).error.code).toBe('not_found');
    expect((await call('/api/migrations/..%2Fetc', 400)).error.message).toMatch(/^id:/);
    expect((await call('/api/migrations/broken', 422)).error.code).toBe('unreadable_document');
    expect((await call('/api/batches/nope', 404)).error.code).toBe('not_found');
    expect((await getJson(`${url}/api/nothing`)).status).toBe(404);
  });

  it('batches: the list with progress, and one batch with where each migration stands', async () => {
    const list = await call('/api/batches');
    expect(list.items).toEqual([expect.objectContaining({ id: 'b1', total: 2, completed: 1 })]);
    const b = await call('/api/batches/b1');
    expect(b.batch.id).toBe('b1');
    expect(b.migrations.map((m: any) => [m.migrationId, m.state])).toEqual([
      ['done-1', 'completed'],
      ['code-1', 'awaiting_code'],
    ]);
  });

  it('pages render: overview, filtered list, migration with diagram, checks and timeline', async () => {
    const o = await getJson(`${url}/`);
    served.push(o.text);
    expect(o.text).toContain('data-count="awaiting_code">2<');
    expect(o.text).toContain('id="attention"');
    expect(o.text).toMatch(/data-batch-done="b1">1 \/ 2</);
    const l = await getJson(`${url}/migrations?state=blocked`);
    served.push(l.text);
    expect(l.text).toContain('blocked-1');
    expect(l.text).not.toContain('done-1');
    const bad = await getJson(`${url}/migrations?limit=0`);
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('limit:');
    const d = await getJson(`${url}/migrations/blocked-1`);
    served.push(d.text);
    expect(d.text).toMatch(/<g class="node state current visited" data-state-node="blocked">/);
    expect(d.text).toContain('business_verified');
    expect(d.text).toMatch(/Complete business verification/);
    expect(d.text).toMatch(/id="timeline"/);
    const done = await getJson(`${url}/migrations/done-1`);
    served.push(done.text);
    expect(done.text).toMatch(/POST<\/span><span class="path">\/v23.0\/\d+\/register/);
    expect(done.text).toMatch(/<span class="status">HTTP 200<\/span><span class="code">code —<\/span><span class="trace">fbtrace_id [A-Za-z0-9_-]+<\/span><span class="ms">[\d.]+ ms<\/span>/);
    expect((await getJson(`${url}/migrations/nope`)).status).toBe(404);
  });
});

describe('events', () => {
  it('streams every transition of a migration run by another engine, in order, as it is written', async () => {
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const got = collectEvents<any>(`${url}/api/events`, (ev) => ev.some((e) => e.id === 'live-1' && e.to === 'awaiting_code'), { onOpen: () => opened() });
    await open;
    const v = await s.start(5, 'live-1');
    expect(v.state).toBe('awaiting_code');
    const events = (await got).filter((e) => e.id === 'live-1');
    const history = (await s.w.store.load('live-1')).history;
    expect(events.map((e) => [e.n, e.from, e.to, e.event])).toEqual(history.map((h) => [h.n, h.from, h.to, h.event.type]));
    // The data of each event matches the TransitionEvent schema of the OpenAPI file.
    const validate = api.validator.getAjv(ValidationContext.Response).compile((api.definition.components!.schemas as any).TransitionEvent);
    for (const e of events) {
      expect(validate(e), JSON.stringify(validate.errors)).toBe(true);
      expect(e.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    expect(events.at(-1).counts.awaiting_code).toBe(3);
    expect(events.at(-1).migration).toMatchObject({ id: 'live-1', state: 'awaiting_code', attention: 'code' });
    // Replay: a client that reconnects with Last-Event-ID gets what it missed.
    const first = events[0].seq;
    const replay = await collectEvents<any>(`${url}/api/events?id=live-1`, (ev) => ev.length >= events.length - 1, { headers: { 'last-event-id': String(first) }, timeoutMs: 3_000 });
    expect(replay.map((e) => e.seq)).toEqual(events.slice(1).map((e) => e.seq));
  });
});

describe('secrets', () => {
  it('no token, PIN or verification code in anything served', async () => {
    expect(s.codes.length).toBeGreaterThan(0);
    const all = served.join('\n');
    expect(all.length).toBeGreaterThan(10_000);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(FIXTURES.token);
    expect(all).not.toContain(PIN);
    for (const code of s.codes) expect(all).not.toMatch(new RegExp(`(?<![\\d])${code}(?![\\d])`));
  });
});
