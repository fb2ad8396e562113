/** A store seeded by real migrations against the sandbox, and a dashboard server over it. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { createDashboard, type Dashboard } from '../../src/server/app.js';
import { GraphSandbox } from '../../src/sandbox/index.js';
import { MigrationEngine } from '../../src/runner/engine.js';
import { FAST_POLICY, FIXTURES, world, type World } from '../helpers/env.js';

export const TOKEN = 'test-dashboard-token-0123456789';
export const PIN = '246810';
export const XSS_NAME = '<script>window.__pwned=1</script>';
export const XSS_CHECK = '<img src=x onerror="window.__pwned=2">';

/** Markup in a receiver's error and in an On-Premises setting value: shown as text, never run. */
export const XSS_NOTIFY = '<img src=x onerror="window.__pwned=3">';
export const XSS_SETTING = '"<script>window.__pwned=4</script>"';

/**
 * Gives a stored migration what the panels show: an outbox (the first event delivered, the second
 * pending after a failure whose text carries markup) and an On-Premises carry-over report, written
 * through the store as the engine would. Returns the event ids.
 */
export async function addPanels(w: World, id: string): Promise<{ delivered: string; pending: string }> {
  const { enqueue } = await import('../../src/notify/events.js');
  const lease = await w.store.lock(id);
  try {
    const h = await w.store.open(id);
    const outbox = (h.data.outbox = [] as NonNullable<typeof h.data.outbox>);
    const at = new Date(Date.now() - 60_000).toISOString();
    const a = enqueue(outbox, 'migration.started', { migrationId: id }, at);
    a.deliveredAt = new Date(Date.now() - 59_000).toISOString();
    const b = enqueue(outbox, 'migration.blocked', { migrationId: id }, at);
    b.attempts = 2;
    b.lastError = `${at} HTTP 500 ${XSS_NOTIFY}`;
    b.nextAttemptAt = new Date(Date.now() + 120_000).toISOString();
    (h.data.snapshot.context as Record<string, unknown>).carryOver = [
      { setting: 'webhooks.url', value: '"https://crm.example.com/hook?auth=[redacted]"', cloud: 'the app\'s webhook callback URL (override per WABA/number)', applied: true },
      { setting: 'callback_backoff_delay_ms', value: '3000', cloud: 'none: Meta retries Cloud API webhooks itself', applied: false },
      { setting: 'pass_through', value: XSS_SETTING, cloud: 'none: no documented Cloud API equivalent', applied: false },
    ];
    await h.save();
    return { delivered: a.id, pending: b.id };
  } finally {
    await lease.release();
  }
}

export const phoneOf = (i: number) => `+1631555${String(4000 + i).padStart(4, '0')}`;

export interface Seeded {
  w: World;
  tenants: { businessId: string; sourceWabaId: string; destWabaId: string }[];
  /** Every verification code the sandbox sent (to prove none is served). */
  codes: string[];
  blockedSandbox: GraphSandbox;
  engine(): MigrationEngine;
  /** Starts migration `i` (tenant i) and returns its view. */
  start(i: number, id: string, extra?: Record<string, unknown>): ReturnType<MigrationEngine['start']>;
  close(): Promise<void>;
}

/**
 * done-1 (completed), code-1 (awaiting_code, in batch b1), xss-1 (awaiting_code, verified name
 * and a check text with markup), blocked-1 (blocked: unverified business), a batch `b1`, and one
 * unreadable document.
 */
export async function seed(): Promise<Seeded> {
  const w = await world({ latencyMs: 0 });
  const tenants = Array.from({ length: 30 }, (_, i) => w.sandbox.addTenant(i));
  const codes: string[] = [];
  w.sandbox.events.on('code', (c: { code: string }) => codes.push(c.code));
  const engine = () => w.engine();
  const start = (i: number, id: string, extra: Record<string, unknown> = {}) =>
    engine().start({ id, phone: phoneOf(i), sourceWabaId: tenants[i]!.sourceWabaId, destWabaId: tenants[i]!.destWabaId, businessId: tenants[i]!.businessId, confirm: ['two_step_disabled'], policy: FAST_POLICY, ...extra });

  const done = await start(0, 'done-1');
  await engine().submitCode('done-1', w.sandbox.lastCodeFor(done.phoneNumberId!)!.code, PIN);
  await start(1, 'code-1');
  await start(2, 'xss-1', { verifiedName: XSS_NAME });
  // A check text with markup, as Meta's own text could carry: written through the store.
  const lease = await w.store.lock('xss-1');
  const h = await w.store.open('xss-1');
  (h.data.snapshot.context as { checks: { detail: string }[] }).checks[0]!.detail = XSS_CHECK;
  await h.save();
  await lease.release();

  const blockedSandbox = new GraphSandbox({ scenario: 'unverified_business' });
  const blockedUrl = await blockedSandbox.start();
  const blocked = await new MigrationEngine({ store: w.store, token: FIXTURES.token, graphUrl: blockedUrl, operator: 'tester' }).start({
    id: 'blocked-1',
    phone: FIXTURES.phone,
    sourceWabaId: FIXTURES.sourceWabaId,
    destWabaId: FIXTURES.destWabaId,
    confirm: ['two_step_disabled'],
    policy: FAST_POLICY,
  });
  if (blocked.state !== 'blocked') throw new Error(`expected blocked, got ${blocked.state}`);

  const now = new Date().toISOString();
  await w.store.saveBatch({
    schemaVersion: 1,
    id: 'b1',
    createdAt: now,
    createdBy: 'tester',
    updatedAt: now,
    options: { concurrency: 2 },
    rows: [
      { line: 1, phone: phoneOf(0), migrationId: 'done-1', sourceWabaId: tenants[0]!.sourceWabaId, destWabaId: tenants[0]!.destWabaId, businessId: tenants[0]!.businessId },
      { line: 2, phone: phoneOf(1), migrationId: 'code-1', sourceWabaId: tenants[1]!.sourceWabaId, destWabaId: tenants[1]!.destWabaId, businessId: tenants[1]!.businessId },
    ],
    groupChecks: [],
    cancelled: null,
  });
  await writeFile(join(w.dir, 'migrations', 'broken.json'), '{"schemaVersion": 1, "id": "broken"', { mode: 0o600 });
  return {
    w,
    tenants,
    codes,
    blockedSandbox,
    engine,
    start,
    close: async () => {
      await blockedSandbox.stop();
      await w.close();
    },
  };
}

export async function serve(s: Seeded, extra: { heartbeatMs?: number; actions?: boolean } = {}): Promise<{ dashboard: Dashboard; url: string }> {
  const { actions, ...rest } = extra;
  const dashboard = await createDashboard({ store: s.w.store, token: TOKEN, ...rest, ...(actions ? { actions: { engine: (operator: string) => s.w.engine({ operator }), allowPin: true } } : {}) });
  const url = await dashboard.listen('127.0.0.1', 0);
  return { dashboard, url };
}

export const auth = { authorization: `Bearer ${TOKEN}` };

export async function getJson(url: string, headers: Record<string, string> = auth): Promise<{ status: number; headers: Record<string, unknown>; body: unknown; text: string }> {
  const r = await request(url, { headers });
  const text = await r.body.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON (a page) */
  }
  return { status: r.statusCode, headers: r.headers, body, text };
}

/** Reads an event stream until `until` returns true for the collected events (or times out). */
export async function collectEvents<T = { id: string; from: string | null; to: string; seq: number }>(
  url: string,
  until: (events: T[]) => boolean,
  opts: { headers?: Record<string, string>; timeoutMs?: number; onOpen?: () => void } = {},
): Promise<T[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 15_000);
  const events: T[] = [];
  try {
    const r = await request(url, { headers: { ...auth, ...(opts.headers ?? {}) }, signal: ac.signal });
    if (r.statusCode !== 200) throw new Error(`events: HTTP ${r.statusCode}`);
    opts.onOpen?.();
    let buf = '';
    for await (const chunk of r.body) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (data && /^event: transition$/m.test(block)) events.push(JSON.parse(data) as T);
      }
      if (until(events)) break;
    }
    r.body.destroy();
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  return events;
}
