/**
 * `npm run bench:dashboard`: the dashboard over 10,000 stored migrations. Prints a table.
 * - the index built at start (one scan), and memory after it;
 * - the overview page, the list page, a filtered API list and a migration page, over HTTP;
 * - 50 Server-Sent-Events clients connected while 20 migrations run in another thread against
 *   the same state directory: every client must receive every transition; delivery delay is
 *   measured from the history entry's time to its arrival at each client.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { request } from 'undici';
import { MigrationEngine } from '../src/runner/engine.js';
import { FIXTURES, GraphSandbox } from '../src/sandbox/index.js';
import { createDashboard } from '../src/server/app.js';
import type { MigrationDocument } from '../src/store/document.js';
import { FileStore } from '../src/store/store.js';

const quick = process.argv.includes('--quick');
const storedArg = process.argv.indexOf('--stored');
const STORED = storedArg > 0 ? Number(process.argv[storedArg + 1]) : quick ? 2_000 : 10_000;
const CLIENTS = 50;
const RUNNING = 20;
const TOKEN = 'bench-dashboard-token-0123456789';
const headers = { authorization: `Bearer ${TOKEN}` };
const now = () => performance.now();
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** Three real documents (completed, awaiting_code, blocked) to clone. */
async function templates(dir: string): Promise<MigrationDocument[]> {
  const store = new FileStore(dir, { fsync: 'never' });
  const ok = new GraphSandbox();
  const blocked = new GraphSandbox({ scenario: 'unverified_business' });
  const req = (id: string, phone: string) => ({ id, phone, sourceWabaId: FIXTURES.sourceWabaId, destWabaId: FIXTURES.destWabaId, confirm: ['two_step_disabled'], policy: { resendCooldownMs: 0 } });
  const e = new MigrationEngine({ store, token: FIXTURES.token, graphUrl: await ok.start(), operator: 'bench' });
  const v = await e.start(req('tpl-done', '+16315558001'));
  await e.submitCode('tpl-done', ok.lastCodeFor(v.phoneNumberId!)!.code, '123456');
  await new MigrationEngine({ store, token: FIXTURES.token, graphUrl: await blocked.start(), operator: 'bench' }).start(req('tpl-blocked', FIXTURES.phone));
  const ok2 = new GraphSandbox();
  await new MigrationEngine({ store, token: FIXTURES.token, graphUrl: await ok2.start(), operator: 'bench' }).start(req('tpl-code', '+16315558003'));
  await Promise.all([ok.stop(), blocked.stop(), ok2.stop()]);
  return Promise.all(['tpl-done', 'tpl-code', 'tpl-blocked'].map((id) => store.load(id)));
}

/** Writes `count` documents through the store (no fsync: this is set-up, not what is measured). */
async function fill(dir: string, tpls: MigrationDocument[], count: number): Promise<void> {
  const store = new FileStore(dir, { fsync: 'never' });
  const texts = tpls.map((d) => JSON.stringify(d));
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  await pool(count, 32, async (i) => {
    const k = i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2; // 60 % completed, 30 % awaiting a code, 10 % blocked
    const tpl = tpls[k]!;
    const id = `m-${String(i).padStart(5, '0')}`;
    const nat = `631${String(1_000_000 + i).padStart(7, '0')}`;
    const doc = JSON.parse(texts[k]!.replaceAll(JSON.stringify(tpl.id), JSON.stringify(id)).replaceAll(tpl.input.nationalNumber, nat)) as MigrationDocument;
    doc.updatedAt = new Date(t0 + i * 60_000).toISOString();
    const h = await store.create(doc);
    await h.save();
  });
}

async function timeGet(url: string, n: number): Promise<{ p50: number; p95: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const r = await request(url, { headers });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
    times.push(now() - t0);
    bytes = text.length;
  }
  return { p50: pct(times, 50), p95: pct(times, 95), bytes };
}

interface Client {
  events: number;
  delays: number[];
  close(): void;
}

async function sseClient(url: string): Promise<Client> {
  const ac = new AbortController();
  const r = await request(`${url}/api/events`, { headers, signal: ac.signal });
  const c: Client = { events: 0, delays: [], close: () => ac.abort() };
  void (async () => {
    let buf = '';
    try {
      for await (const chunk of r.body) {
        buf += chunk.toString();
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!data) continue;
          const t = JSON.parse(data) as { at: string };
          c.events++;
          c.delays.push(Date.now() - Date.parse(t.at));
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return c;
}

function runWriters(dir: string, prefix: string, phoneBase: number, mode: 'migrate' | 'append' = 'migrate', count = RUNNING, ids: string[] = []): Promise<{ ms: number; transitions: number }> {
  const child = fork(new URL('./dashboard-worker.js', import.meta.url), [JSON.stringify({ mode, dir, count, prefix, phoneBase, ids })]);
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as { ms: number; transitions: number }));
    child.once('error', reject);
    child.once('exit', (code) => code && reject(new Error(`writers exited ${code}`)));
  });
}

const dir = await mkdtemp(join(tmpdir(), 'waba-dash-bench-'));
try {
  const tpls = await templates(dir);
  let t0 = now();
  await fill(dir, tpls, STORED);
  const fillMs = now() - t0;

  const store = new FileStore(dir);
  const rss0 = process.memoryUsage().rss;
  t0 = now();
  const dashboard = await createDashboard({ store, token: TOKEN });
  const startMs = now() - t0;
  const rssMb = (process.memoryUsage().rss - rss0) / 1e6;
  const url = await dashboard.listen('127.0.0.1', 0);

  const overview = await timeGet(`${url}/`, 20);
  const list = await timeGet(`${url}/migrations`, 20);
  const filtered = await timeGet(`${url}/api/migrations?state=awaiting_code&phone=6311&sort=phone&limit=50`, 20);
  const detail = await timeGet(`${url}/migrations/m-00004`, 20);

  // Baseline: the same 20 migrations with no event clients connected.
  const base = await runWriters(dir, 'base', 5560000);
  await dashboard.index.settled();

  // The dashboard's own delay: plain store writes (no engine) while 50 clients listen.
  const appendClients = await Promise.all(Array.from({ length: CLIENTS }, () => sseClient(url)));
  const appended = await runWriters(dir, '', 0, 'append', 200, Array.from({ length: 20 }, (_, i) => `m-${String((i * 7) % STORED).padStart(5, '0')}`));
  await dashboard.index.settled();
  for (const until = Date.now() + 5_000; Date.now() < until && appendClients.some((c) => c.events < appended.transitions); ) await new Promise((res) => setTimeout(res, 20));
  for (const c of appendClients) c.close();
  const appendDelays = appendClients.flatMap((c) => c.delays);
  const appendComplete = appendClients.filter((c) => c.events === appended.transitions).length;

  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => sseClient(url)));
  const during: number[] = [];
  let running = true;
  const writers = runWriters(dir, 'load', 5590000).finally(() => (running = false));
  // The overview, asked for again and again while the migrations run and the clients listen.
  while (running) {
    const t = now();
    const r = await request(`${url}/`, { headers });
    await r.body.text();
    during.push(now() - t);
    await new Promise((res) => setTimeout(res, 50));
  }
  const load = await writers;
  await dashboard.index.settled();
  // Let the clients (in this same process) read what was sent; give up after 5 s.
  for (const until = Date.now() + 5_000; Date.now() < until && clients.some((c) => c.events < load.transitions); ) await new Promise((res) => setTimeout(res, 20));
  for (const c of clients) c.close();
  const allDelays = clients.flatMap((c) => c.delays);
  const complete = clients.filter((c) => c.events === load.transitions).length;
  await dashboard.close();

  const f = (x: number) => `${x.toFixed(1)} ms`;
  const rows: [string, string, string][] = [
    [`fill: ${STORED} documents written through the store`, f(fillMs), '(set-up)'],
    [`dashboard start: index of ${STORED + 3} migrations`, `${f(startMs)}, RSS +${rssMb.toFixed(0)} MB`, '(reported)'],
    ['GET / (overview) p50 / p95', `${f(overview.p50)} / ${f(overview.p95)} (${(overview.bytes / 1024).toFixed(0)} KB)`, '< 500 ms'],
    ['GET /migrations (first page of 50) p50 / p95', `${f(list.p50)} / ${f(list.p95)}`, '(reported)'],
    ['GET /api/migrations filtered+sorted p50 / p95', `${f(filtered.p50)} / ${f(filtered.p95)}`, '(reported)'],
    ['GET /migrations/:id (diagram, timeline) p50 / p95', `${f(detail.p50)} / ${f(detail.p95)}`, '(reported)'],
    [`${appended.transitions} store writes, 10 ms apart: clients that got all`, `${appendComplete} / ${CLIENTS}`, `${CLIENTS} / ${CLIENTS}`],
    ['… delay, write → each of 50 clients, p50 / p95 / max', `${f(pct(appendDelays, 50))} / ${f(pct(appendDelays, 95))} / ${f(Math.max(...appendDelays))}`, '(reported)'],
    [`${RUNNING} migrations, no event clients`, f(base.ms), '(baseline)'],
    [`${RUNNING} migrations, ${CLIENTS} event clients`, `${f(load.ms)} (${(load.ms / base.ms).toFixed(2)}×)`, '(reported)'],
    [`clients that got all ${load.transitions} transitions`, `${complete} / ${CLIENTS}`, `${CLIENTS} / ${CLIENTS}`],
    ['… delay, transition → client, p50 / p95 / max', `${f(pct(allDelays, 50))} / ${f(pct(allDelays, 95))} / ${f(Math.max(...allDelays))}`, '(reported)'],
    [`GET / during the load p50 / p95 (${during.length} requests)`, `${f(pct(during, 50))} / ${f(pct(during, 95))}`, '< 500 ms'],
  ];
  const w1 = Math.max(...rows.map((r) => r[0].length));
  const w2 = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write(`\nDashboard bench: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}${quick ? ' (quick)' : ''}\n\n`);
  process.stdout.write(`| ${'measure'.padEnd(w1)} | ${'result'.padEnd(w2)} | goal |\n|${'-'.repeat(w1 + 2)}|${'-'.repeat(w2 + 2)}|------|\n`);
  for (const [a, b, c] of rows) process.stdout.write(`| ${a.padEnd(w1)} | ${b.padEnd(w2)} | ${c} |\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
