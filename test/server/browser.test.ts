/**
 * The dashboard in real headless Chromium (Debian's, driven by playwright-core): sign in with the
 * printed URL, read the overview, filter the list, open a migration, watch it move live while it
 * runs against the sandbox, and check that markup in stored text is shown, not run. Screenshots
 * go to test/artifacts/ (git-ignored); with UPDATE_SCREENSHOT=1 the overview also becomes
 * docs/dashboard.png (the README's picture).
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dashboard } from '../../src/server/app.js';
import { deliverPending, endpointKey, notifyOptions } from '../../src/notify/deliver.js';
import { Receiver, TEST_SECRET } from '../helpers/receiver.js';
import { addPanels, PIN, seed, serve, TOKEN, XSS_CHECK, XSS_NAME, XSS_NOTIFY, XSS_SETTING, type Seeded } from './helpers.js';

const ARTIFACTS = 'test/artifacts';
let s: Seeded;
let dashboard: Dashboard;
let url: string;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  s = await seed();
  ({ dashboard, url } = await serve(s, { actions: true }));
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  // Any script error or CSP violation on any page fails the run.
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|favicon/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
});
afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await s?.close();
});

const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

describe('dashboard in Chromium', () => {
  it('signs in once with ?token=, keeps the token out of the URL and away from scripts', async () => {
    const r = await page.goto(`${url}/`);
    expect(r!.status()).toBe(401);
    await page.goto(`${url}/?token=${TOKEN}`);
    expect(page.url()).toBe(`${url}/`);
    expect(await page.evaluate(() => document.cookie)).toBe(''); // HttpOnly
    expect(await page.content()).not.toContain(TOKEN);
  });

  it('shows the overview: counts by state, who needs a person with the next action, batches', async () => {
    await page.waitForSelector('body[data-live="on"]');
    expect(await page.textContent('[data-count="total"]')).toBe('4');
    expect(await page.textContent('[data-count="awaiting_code"]')).toBe('2');
    const attention = await page.locator('#attention tbody tr').allTextContents();
    expect(attention.join('\n')).toMatch(/code-1.*verification code.*enter the code sent by SMS/);
    expect(attention.join('\n')).toMatch(/blocked-1.*blocked check.*fix the prerequisites/);
    expect(await page.textContent('[data-batch-done="b1"]')).toBe('1 / 2');
    await shot('overview');
  });

  it('filters the list by state and by phone, and pages', async () => {
    await page.click('nav >> text=Migrations');
    await page.selectOption('select[name="state"]', 'awaiting_code');
    await page.click('button[type="submit"]');
    await page.waitForURL(/state=awaiting_code/);
    const ids = await page.locator('#migrations tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    expect(ids.sort()).toEqual(['code-1', 'xss-1']);
    await shot('list-filtered');
    await page.goto(`${url}/migrations`);
    await page.fill('input[name="phone"]', '+16315551000');
    await page.click('button[type="submit"]');
    expect(await page.locator('#migrations tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')))).toEqual(['blocked-1']);
    await page.goto(`${url}/migrations?sort=id&limit=2`);
    expect(await page.textContent('#range')).toBe('1–2 of 4');
    await page.click('a[rel="next"] >> nth=0');
    expect(await page.locator('#migrations tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')))).toEqual(['done-1', 'xss-1']);
  });

  it('shows markup from a verified name and a check text as text, without running it', async () => {
    await page.goto(`${url}/migrations/xss-1`);
    await expect.poll(() => page.locator('dl.head').textContent()).toContain(XSS_NAME);
    expect(await page.locator('#checks').textContent()).toContain(XSS_CHECK);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('dl.head script, #checks img').count()).toBe(0);
    await shot('escaping');
  });

  it('shows the Notifications and On-Premises carry-over panels as text, and updates them live: a 410, notify enable, a delivery, a setting applied', async () => {
    const rx = new Receiver();
    await rx.start();
    type W = { __noReload?: boolean; __pwned?: number };
    try {
      await page.goto(`${url}/migrations/blocked-1`);
      expect(await page.isVisible('#notifications-panel')).toBe(false); // nothing to show yet
      expect(await page.isVisible('#carryover-panel')).toBe(false);
      const ids = await addPanels(s.w, 'blocked-1');
      await page.goto(`${url}/migrations/blocked-1`);
      await page.waitForSelector('body[data-live="on"]');
      await page.evaluate(() => ((window as unknown as W).__noReload = true));
      expect(await page.isVisible('#notifications-panel')).toBe(true);
      expect(await page.isVisible('#carryover-panel')).toBe(true);
      expect(await page.isVisible('#notifications-disabled')).toBe(false);
      const rows = () =>
        page.locator('#notifications tbody tr').evaluateAll((rs) => rs.map((r) => [r.getAttribute('data-event'), r.getAttribute('data-notify-state'), r.querySelector('td.type')!.textContent, r.querySelector('td.nstate')!.textContent!.split(' ')[0], r.querySelector('td.attempts')!.textContent]));
      expect(await rows()).toEqual([
        [ids.delivered, 'delivered', 'migration.started', 'delivered', '0'],
        [ids.pending, 'pending', 'migration.blocked', 'pending', '2'],
      ]);
      expect(await page.textContent(`tr[data-event="${ids.pending}"] td.wid`)).toBe(ids.pending);
      expect(await page.textContent(`tr[data-event="${ids.pending}"] td.next`)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      expect(await page.textContent(`tr[data-event="${ids.delivered}"] td.next`)).toBe('—');
      const carry = () => page.locator('#carry-over tbody tr').evaluateAll((rs) => rs.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent)));
      expect(await carry()).toEqual([
        ['webhooks.url', '"https://crm.example.com/hook?auth=[redacted]"', "the app's webhook callback URL (override per WABA/number)", 'yes'],
        ['callback_backoff_delay_ms', '3000', 'none: Meta retries Cloud API webhooks itself', 'no'],
        ['pass_through', XSS_SETTING, 'none: no documented Cloud API equivalent', 'no'],
      ]);
      // Markup in a receiver's error and in a setting value is shown, not run.
      const escaped = async () => {
        expect(await page.textContent(`tr[data-event="${ids.pending}"] td.err`)).toContain(XSS_NOTIFY);
        expect(await page.locator('#notifications img, #carry-over script').count()).toBe(0);
        expect(await page.evaluate(() => (window as unknown as W).__pwned)).toBeUndefined();
      };
      await escaped();
      await shot('panels');

      // The receiver answers 410: the endpoint is disabled, the event waits; the page says so, live.
      const notify = notifyOptions({ url: rx.url, secret: TEST_SECRET });
      // Past the event's next attempt (2 min away), within the receiver's 5-minute timestamp tolerance.
      const later = { ...notify, now: () => Date.now() + 180_000 };
      rx.answer = () => '410';
      expect(await deliverPending(s.w.store, later)).toMatchObject({ attempted: 1, gone: true });
      await page.waitForSelector('#notifications-disabled:not([hidden])', { timeout: 10_000 });
      expect(await page.textContent('[data-field="endpointDisabledLabel"]')).toMatch(/^endpoint disabled \(410 at \d{4}-/);
      expect(await page.textContent('[data-field="endpointDisabledEvent"]')).toBe(ids.pending);
      await expect.poll(() => page.getAttribute(`tr[data-event="${ids.pending}"]`, 'data-notify-state'), { timeout: 10_000 }).toBe('endpoint-disabled');
      expect(await page.textContent(`tr[data-event="${ids.pending}"] td.attempts`)).toBe('3');
      expect(await page.textContent(`tr[data-event="${ids.pending}"] td.nstate`)).toBe('endpoint disabled');
      expect(await page.textContent(`tr[data-event="${ids.pending}"] td.err`)).toMatch(/410 Gone/);
      await shot('panels-endpoint-disabled');

      // Enabled again and delivered: delivered, live, no reload.
      rx.answer = () => 'ok';
      await s.w.store.enableEndpoint(endpointKey(rx.url));
      expect(await deliverPending(s.w.store, later)).toMatchObject({ delivered: 1 });
      await expect.poll(() => page.getAttribute(`tr[data-event="${ids.pending}"]`, 'data-notify-state'), { timeout: 10_000 }).toBe('delivered');
      expect(await page.isVisible('#notifications-disabled')).toBe(false);
      expect(rx.accepted.map((d) => d.id)).toEqual([ids.pending]);

      // A carry-over line applied: the panel follows.
      const lease = await s.w.store.lock('blocked-1');
      const h = await s.w.store.open('blocked-1');
      (h.data.snapshot.context as { carryOver: { applied: boolean }[] }).carryOver[1]!.applied = true;
      await h.save();
      await lease.release();
      await expect.poll(() => page.getAttribute('#carry-over tr[data-setting="callback_backoff_delay_ms"]', 'data-applied'), { timeout: 10_000 }).toBe('yes');
      expect(await page.textContent('#carry-over tr[data-setting="callback_backoff_delay_ms"] td.applied')).toBe('yes');
      // Rebuilt from JSON, still text.
      expect((await carry())[2]).toEqual(['pass_through', XSS_SETTING, 'none: no documented Cloud API equivalent', 'no']);
      expect(await page.textContent(`tr[data-event="${ids.pending}"] td.err`)).toBe('—');
      expect(await page.locator('#notifications img, #carry-over script').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as W).__pwned)).toBeUndefined();
      expect(await page.evaluate(() => (window as unknown as W).__noReload)).toBe(true);
      await shot('panels-live');
    } finally {
      await rx.stop();
    }
  });

  it('moves a migration live on its page while it runs against the sandbox, without a reload', async () => {
    await page.goto(`${url}/migrations/code-1`);
    await page.waitForSelector('body[data-live="on"]');
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    expect(await page.getAttribute('g.node.current', 'data-state-node')).toBe('awaiting_code');
    const rowsBefore = await page.locator('#timeline tbody tr').count();
    const v = await s.engine().get('code-1');
    const done = await s.engine().submitCode('code-1', s.w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, PIN);
    expect(done.state).toBe('completed');
    await page.waitForSelector('g.node.current[data-state-node="completed"]', { timeout: 10_000 });
    expect(await page.textContent('h1 [data-head="state"]')).toBe('completed');
    const history = (await s.w.store.load('code-1')).history;
    await expect.poll(() => page.locator('#timeline tbody tr').count()).toBe(history.length);
    expect(history.length).toBeGreaterThan(rowsBefore);
    const moves = await page.locator('#timeline tbody tr td.move').allTextContents();
    expect(moves.slice(rowsBefore)).toEqual(history.slice(rowsBefore).map((h) => `${h.from ?? '—'} → ${h.to}`));
    expect(await page.locator('#timeline').textContent()).toMatch(/POST.*\/register.*HTTP 200/);
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    await shot('migration-live');
  });

  it('updates the overview live when a new migration starts in another engine', async () => {
    await page.goto(`${url}/`);
    await page.waitForSelector('body[data-live="on"]');
    const before = Number(await page.textContent('[data-count="total"]'));
    const v = await s.start(7, 'live-overview');
    expect(v.state).toBe('awaiting_code');
    await expect.poll(() => page.textContent('[data-count="total"]'), { timeout: 10_000 }).toBe(String(before + 1));
    await expect.poll(() => page.locator('#activity').textContent()).toContain('live-overview');
    await expect.poll(() => page.locator('#attention tbody').textContent(), { timeout: 10_000 }).toContain('live-overview');
    expect(await page.textContent('[data-batch-done="b1"]')).toBe('2 / 2');
    await shot('overview-live');
    if (process.env.UPDATE_SCREENSHOT === '1') await copyFile(`${ARTIFACTS}/overview-live.png`, 'docs/dashboard.png');
  });

  it('submits a code and PIN through the form (--allow-actions --allow-pin); the page shows it completed', async () => {
    await page.goto(`${url}/migrations/live-overview`);
    const v = await s.engine().get('live-overview');
    await page.fill('form[action$="/code"] input[name="operator"]', 'Ada Lovelace');
    await page.fill('form[action$="/code"] input[name="code"]', s.w.sandbox.lastCodeFor(v.phoneNumberId!)!.code);
    await page.fill('form[action$="/code"] input[name="pin"]', PIN);
    await page.click('form[action$="/code"] button');
    await page.waitForURL(`${url}/migrations/live-overview`);
    await page.waitForSelector('g.node.current[data-state-node="completed"]');
    expect(await page.locator('#timeline').textContent()).toContain('Ada Lovelace');
    expect(await page.content()).not.toContain(PIN);
  });

  it('raised no script error and no CSP violation on any page', () => {
    expect(problems).toEqual([]);
  });
});
