/** `serve --allow-actions`: retry, cancel and code through the engine, the PIN rules, CSRF, read-only by default. */
import { readFileSync } from 'node:fs';
import jsyaml from 'js-yaml';
import { OpenAPIBackend } from 'openapi-backend';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, type Dashboard } from '../../src/server/app.js';
import { auth, PIN, seed, TOKEN, type Seeded } from './helpers.js';

let s: Seeded;
const servers: Dashboard[] = [];
let api: OpenAPIBackend;

async function start(actions: boolean, allowPin = false): Promise<string> {
  const d = await createDashboard({ store: s.w.store, token: TOKEN, ...(actions ? { actions: { engine: (operator: string) => s.w.engine({ operator }), allowPin } } : {}) });
  servers.push(d);
  return d.listen('127.0.0.1', 0);
}

beforeAll(async () => {
  s = await seed();
  api = new OpenAPIBackend({ definition: jsyaml.load(readFileSync('docs/dashboard-openapi.yaml', 'utf8')) as never, quick: true, ajvOpts: { strict: false, validateFormats: false } });
  await api.init();
});
afterAll(async () => {
  for (const d of servers) await d.close();
  await s?.close();
});

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = auth) {
  const r = await request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const json = (await r.body.json()) as any;
  const op = api.matchOperation({ method: 'post', path, headers: {} });
  if (op) expect(api.validateResponse(json, op, r.statusCode).errors ?? [], `${path} ${r.statusCode} matches the OpenAPI file`).toEqual([]);
  return { status: r.statusCode, body: json };
}

describe('read-only by default', () => {
  it('has no write routes without --allow-actions, and pages show no forms', async () => {
    const base = await start(false);
    for (const a of ['retry', 'cancel', 'code']) expect((await post(base, `/api/migrations/code-1/${a}`, { operator: 'Ada' })).status).toBe(404);
    const page = await (await request(`${base}/migrations/code-1`, { headers: auth })).body.text();
    expect(page).not.toContain('<form method="post"');
    expect((await s.w.store.load('code-1')).state).toBe('awaiting_code');
  });
});

describe('--allow-actions', () => {
  let base: string;
  beforeAll(async () => {
    base = await start(true, false);
  });

  it('refuses a body without the operator or the reason, naming the field', async () => {
    expect((await post(base, '/api/migrations/blocked-1/cancel', { reason: 'duplicate' })).body.error.message).toMatch(/^operator:/);
    expect((await post(base, '/api/migrations/blocked-1/cancel', { operator: 'Ada Lovelace' })).body.error.message).toMatch(/^reason:/);
    expect((await post(base, '/api/migrations/blocked-1/cancel', { operator: '<b>', reason: 'duplicate' })).status).toBe(400);
    expect((await post(base, '/api/migrations/code-1/code', { operator: 'Ada Lovelace', code: '12' })).body.error.message).toMatch(/^code: must be the 6 digits/);
    expect((await s.w.store.load('blocked-1')).state).toBe('blocked');
  });

  it('refuses the PIN unless --allow-pin, before anything is sent', async () => {
    const before = (await s.w.store.load('code-1')).history.length;
    const r = await post(base, '/api/migrations/code-1/code', { operator: 'Ada Lovelace', code: '123456', pin: PIN });
    expect(r.status).toBe(403);
    expect(r.body.error.message).toMatch(/--allow-pin/);
    expect((await s.w.store.load('code-1')).history.length).toBe(before);
  });

  it('submits a code: the migration verifies and waits for the PIN, recorded under the operator', async () => {
    const v = await s.engine().get('code-1');
    const r = await post(base, '/api/migrations/code-1/code', { operator: 'Ada Lovelace', code: s.w.sandbox.lastCodeFor(v.phoneNumberId!)!.code });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'code-1', state: 'registering', substate: 'held' });
    expect(r.body.nextAction).toMatch(/supply the register PIN/);
    const h = (await s.w.store.load('code-1')).history;
    expect(h.find((e) => e.event.type === 'CODE_SUBMITTED')!.by).toBe('Ada Lovelace');
  });

  it('retries now, and cancels with a reason recorded with the operator; a second cancel is a conflict', async () => {
    const before = (await s.w.store.load('blocked-1')).history.length;
    const retry = await post(base, '/api/migrations/blocked-1/retry', { operator: 'Grace Hopper' });
    expect([200, 202]).toContain(retry.status);
    await expect.poll(async () => (await s.w.store.load('blocked-1')).history.length).toBeGreaterThan(before);
    await expect.poll(async () => (await s.w.store.holder('blocked-1')) === null).toBe(true);
    const after = (await s.w.store.load('blocked-1')).history.slice(before);
    expect(after.every((e) => e.by === 'Grace Hopper')).toBe(true);
    expect(after.map((e) => e.to)).toContain('checking');

    const c = await post(base, '/api/migrations/blocked-1/cancel', { operator: 'Grace Hopper', reason: 'customer withdrew the number' });
    expect(c.status).toBe(200);
    expect(c.body.state).toBe('cancelled');
    const last = (await s.w.store.load('blocked-1')).history.at(-1)!;
    expect(last).toMatchObject({ to: 'cancelled', by: 'Grace Hopper' });
    expect(JSON.stringify(last)).toContain('customer withdrew the number');
    const again = await post(base, '/api/migrations/blocked-1/cancel', { operator: 'Grace Hopper', reason: 'again' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
    expect((await post(base, '/api/migrations/nope/cancel', { operator: 'Grace Hopper', reason: 'x'.repeat(5) })).status).toBe(404);
  });

  it('accepts a form post on the session cookie only from its own origin', async () => {
    const ex = await request(`${base}/?token=${TOKEN}`);
    await ex.body.text();
    const cookie = String(ex.headers['set-cookie']).split(';')[0]!;
    const form = new URLSearchParams({ operator: 'Ada Lovelace', reason: 'wrong number' }).toString();
    const send = (headers: Record<string, string>) => request(`${base}/migrations/xss-1/cancel`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form });
    const foreign = await send({ origin: 'http://evil.example' });
    await foreign.body.text();
    expect(foreign.statusCode).toBe(403);
    const none = await send({});
    await none.body.text();
    expect(none.statusCode).toBe(403);
    expect((await s.w.store.load('xss-1')).state).toBe('awaiting_code');
    const page = await (await request(`${base}/migrations/xss-1`, { headers: { cookie } })).body.text();
    expect(page).toContain('action="/migrations/xss-1/cancel"');
    const ok = await send({ origin: base });
    await ok.body.text();
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/migrations/xss-1');
    expect((await s.w.store.load('xss-1')).state).toBe('cancelled');
  });
});

describe('--allow-actions --allow-pin', () => {
  it('takes the PIN from a loopback client and completes the migration; the PIN is stored nowhere', async () => {
    const base = await start(true, true);
    const v = await s.start(9, 'pin-1');
    const done = await post(base, '/api/migrations/pin-1/code', { operator: 'Ada Lovelace', code: s.w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, pin: PIN });
    expect(done.status).toBe(200);
    expect(done.body.state).toBe('completed');
    expect(JSON.stringify(await s.w.store.load('pin-1'))).not.toContain(PIN);
  });
});
