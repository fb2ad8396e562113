/**
 * Dashboard edges found in review: `/static/` serves only shipped files (not Object.prototype's
 * names), a page address carrying ?token= is always redirected to the clean URL (also when
 * already signed in), and a body that cannot be parsed gets a 400 that says what to send and
 * never quotes the body back; the migration page shows the old phone_number_id the checks read.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, type Dashboard } from '../../src/server/app.js';
import { world, type World } from '../helpers/env.js';

const TOKEN = 'review-dashboard-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let w: World;
let d: Dashboard;
let base: string;

beforeAll(async () => {
  w = await world({ latencyMs: 0 });
  await w.engine().start(w.startRequest({ id: 'm1' }));
  d = await createDashboard({ store: w.store, token: TOKEN });
  base = await d.listen('127.0.0.1', 0);
});
afterAll(async () => {
  await d?.close();
  await w?.close();
});

async function get(path: string, headers: Record<string, string> = auth) {
  const r = await request(`${base}${path}`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text };
}

describe('static files', () => {
  it('answers 404 for a name that is not a shipped file, including names of Object.prototype', async () => {
    for (const name of ['nope.js', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const r = await get(`/static/${name}`);
      expect(r.status, name).toBe(404);
    }
    // The real ones still work, with their ETag.
    const js = await get('/static/live.js');
    expect(js.status).toBe(200);
    expect((await get('/static/live.js', { ...auth, 'if-none-match': String(js.headers.etag) })).status).toBe(304);
  });
});

describe('the ?token= exchange', () => {
  it('takes the token out of the address even when the browser is already signed in', async () => {
    const ex = await request(`${base}/?token=${TOKEN}`);
    await ex.body.text();
    expect(ex.statusCode).toBe(303);
    const cookie = String(ex.headers['set-cookie']).split(';')[0]!;
    // Opening the printed address again (signed in by the cookie): redirected to the clean URL,
    // never served with the token left in the address bar, the history and every Referer.
    const again = await request(`${base}/migrations?state=awaiting_code&token=${TOKEN}`, { headers: { cookie } });
    const body = await again.body.text();
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toBe('/migrations?state=awaiting_code');
    expect(body).not.toContain(TOKEN);
    // Likewise with the bearer header.
    const bearer = await request(`${base}/?token=${TOKEN}`, { headers: auth });
    await bearer.body.text();
    expect(bearer.statusCode).toBe(303);
    expect(bearer.headers.location).toBe('/');
    // Signed in, the clean URL itself is served.
    expect((await get('/migrations?state=awaiting_code', { cookie })).status).toBe(200);
  });
});

describe('a body that cannot be parsed', () => {
  it('is refused with 400 saying what to send, without quoting the body back (it may hold a code or a PIN), on the API and the page route', async () => {
    const withActions = await createDashboard({ store: w.store, token: TOKEN, actions: { engine: (operator: string) => w.engine({ operator }), allowPin: true } });
    try {
      const at = await withActions.listen('127.0.0.1', 0);
      const before = w.sandbox.counters['POST verify_code']?.calls ?? 0;
      for (const path of ['/api/migrations/m1/code', '/migrations/m1/code']) {
        const r = await request(`${at}${path}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: `{"code":"864209","pin":'975310'}` });
        const text = await r.body.text();
        expect(r.statusCode, path).toBe(400);
        expect(text, path).not.toMatch(/864209|975310/);
        expect(text, path).toMatch(/could not be read/);
      }
      expect(w.sandbox.counters['POST verify_code']?.calls ?? 0).toBe(before);
    } finally {
      await withActions.close();
    }
  });
});

describe('the migration page', () => {
  it('shows the old phone_number_id that the checks read in the source WABA', async () => {
    const doc = await w.store.load('m1');
    const old = (doc.snapshot.context as { sourcePhoneNumberId?: string | null }).sourcePhoneNumberId;
    expect(old).toMatch(/^[0-9]+$/);
    const page = await get('/migrations/m1');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(new RegExp(`old phone_number_id \\(source WABA\\)</dt>\\s*<dd>${old}</dd>`));
  });
});
