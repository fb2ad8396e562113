/**
 * Edges of the fleet layer: `batch list` and `batch status` agree on a damaged document; `work`
 * runs no shared group checks for On-Premises migrations (as `batch start` does not); a stop that
 * arrives while a `batch start` row waits for Meta's rate limit sends nothing and creates nothing.
 */
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchRunner, Worker, type BatchEvent } from '../../src/batch/index.js';
import { batchStatus, listBatches } from '../../src/batch/read.js';
import type { CallSummary } from '../../src/graph/client.js';
import { ONPREM_FIXTURES } from '../../src/sandbox/index.js';
import { CLI, runCli } from '../helpers/cli.js';
import { FIXTURES, world, type World } from '../helpers/env.js';
import { BACKUP_PASSWORD, onpremWorld, VERIFY_TOKEN, type OnPremWorld } from '../onprem/helpers.js';

const S = FIXTURES.sourceWabaId;
const D = FIXTURES.destWabaId;

let w: World | null = null;
let o: OnPremWorld | null = null;
afterEach(async () => {
  await w?.close();
  await o?.close();
  w = null;
  o = null;
});

const csv = (n: number, from = 7000) => `phone,source_waba,dest_waba,confirm\n${Array.from({ length: n }, (_, i) => `+1631555${from + i},${S},${D},two_step_disabled`).join('\n')}\n`;

const totalCalls = (w: World) => Object.values(w.sandbox.counters).reduce((a, c) => a + c.calls, 0);

describe('batch list and batch status agree on a damaged document', () => {
  it('a migration whose document is damaged counts as failed in both, not as pending in list', async () => {
    w = await world();
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    await runner.start(csv(3), { id: 'dmg' });
    await writeFile(join(w.dir, 'migrations', 'dmg-2.json'), '{"schemaVersion": 1, "id": "dmg-2", "sta');
    const status = await batchStatus(w.store, 'dmg');
    expect(status.counts).toEqual({ awaiting_code: 2, failed: 1 });
    expect(status.rows.find((r) => r.migrationId === 'dmg-2')).toMatchObject({ state: 'failed', need: 'fix_failure' });
    const [listed] = await listBatches(w.store);
    expect(listed).toMatchObject({ id: 'dmg', total: 3 });
    expect(listed!.counts).toEqual(status.counts);
    // Through the real CLI as well.
    const env = { WABA_MIGRATE_STATE_DIR: w.dir };
    const list = await runCli(['batch', 'list', '--json'], env);
    const st = await runCli(['batch', 'status', 'dmg', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(list.stdout)[0].counts).toEqual(JSON.parse(st.stdout).counts);
    const text = await runCli(['batch', 'list'], env);
    expect(text.stdout).toMatch(/failed 1/);
    expect(text.stdout).not.toMatch(/pending/);
  });

  it('an unreadable document (not a file) is failed in both views, and list still answers', async () => {
    w = await world();
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    await runner.start(csv(2, 7100), { id: 'odd' });
    const { rm, mkdir } = await import('node:fs/promises');
    await rm(join(w.dir, 'migrations', 'odd-1.json'));
    await mkdir(join(w.dir, 'migrations', 'odd-1.json'));
    const status = await batchStatus(w.store, 'odd');
    expect(status.counts).toEqual({ awaiting_code: 1, failed: 1 });
    const [listed] = await listBatches(w.store);
    expect(listed!.counts).toEqual(status.counts);
  });
});

describe('work: no shared group checks for On-Premises migrations', () => {
  it('a due On-Premises migration retrying its checks is driven without the group GETs (owned WABAs, business, both WABAs)', async () => {
    o = await onpremWorld('onprem_happy');
    // A migration from On-Premises whose checks met Meta's rate limit on its WABA: it rests in
    // waiting_retry at the checking step, and is due once the pause ends.
    const { MigrationEngine } = await import('../../src/runner/engine.js');
    const { RateBudget } = await import('../../src/graph/rate-budget.js');
    const secrets = { user: ONPREM_FIXTURES.user, password: ONPREM_FIXTURES.password, backupPassword: BACKUP_PASSWORD, webhookVerifyToken: VERIFY_TOKEN };
    const budget = new RateBudget();
    budget.throttled(S, 80007, 300);
    const v = await new MigrationEngine({ store: o.store, token: FIXTURES.token, graphUrl: o.graphUrl, operator: 'tester', onprem: secrets, rateBudget: budget, maxWaitMs: 0 }).start(o.startRequest({ id: 'op-w' }));
    expect(v.state).toBe('waiting_retry');
    expect(v.retry).toMatchObject({ step: 'checking' });
    expect(Object.keys(o.graph.counters)).toEqual([]); // nothing sent yet
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(v.retry!.retryAt) - Date.now()) + 50));

    // The per-number On-Premises checks alone, as `batch start` runs them (no group checks):
    // what a worker must send too, and no more.
    const calls: CallSummary[] = [];
    const r = await new Worker({ store: o.store, token: FIXTURES.token, graphUrl: o.graphUrl, operator: 'tester', once: true, pin: FIXTURES.onpremPin, onprem: secrets, onCall: (c) => calls.push(c) }).run();
    expect(r.errors).toBe(0);
    expect((await o.store.load('op-w')).state).toBe('completed');
    // Group checks read the business's owned WABAs: the On-Premises path never does. And the
    // WABA and the business are read once each (the number's own checks), not again for a group.
    const counters = o.graph.counters;
    expect(counters['GET owned_whatsapp_business_accounts']).toBeUndefined();
    expect(counters['GET waba']!.calls).toBe(1);
    expect(counters['GET business']!.calls).toBe(1);
    expect(calls.filter((c) => c.method === 'GET' && c.path.endsWith(`/${S}`))).toHaveLength(1);
  });
});

describe('a stop while a batch start row waits for a rate-limit pause', () => {
  it('library: the waiting rows send nothing and create nothing; a later resume starts them', async () => {
    w = await world();
    const until = Date.now() + 1_500;
    await w.store.recordThrottle({ key: D, until, code: 80007 });
    const ctl = new AbortController();
    const events: BatchEvent[] = [];
    const runner = new BatchRunner({
      store: w.store,
      token: FIXTURES.token,
      graphUrl: w.url,
      operator: 'tester',
      concurrency: 2,
      signal: ctl.signal,
      onEvent: (e) => {
        events.push(e);
      },
    });
    setTimeout(() => ctl.abort(new Error('stopped by SIGTERM')), 300);
    const s = await runner.start(csv(2, 7200), { id: 'stop' });
    expect(totalCalls(w)).toBe(0);
    expect(s.counts).toEqual({ pending: 2 });
    expect(await w.store.exists('stop-1')).toBe(false);
    expect(await w.store.exists('stop-2')).toBe(false);
    expect((await readdir(join(w.dir, 'migrations')).catch(() => [])).filter((f) => f.endsWith('.json'))).toEqual([]);
    // Not even a lock file or a number-index marker for them.
    expect((await readdir(join(w.dir, 'locks')).catch(() => [])).filter((n) => n.startsWith('stop-'))).toEqual([]);
    expect(await readdir(join(w.dir, 'index', 'numbers')).catch(() => [])).toEqual([]);
    const rows = events.filter((e) => e.type === 'row');
    expect(rows).toHaveLength(2);
    for (const e of rows) expect(e).toMatchObject({ state: 'pending', error: expect.stringMatching(/^stopped before this row started; nothing was sent: waba-migrate batch resume stop/) });
    // Once the pause is over, resume starts both (each created once).
    await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
    const again = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester' });
    const r = await again.resume('stop');
    expect(r.counts).toEqual({ awaiting_code: 2 });
    expect(w.sandbox.counters['POST phone_numbers']!.calls).toBe(2);
  });

  it('CLI: SIGTERM during the pause exits 143 with no Graph call and no migration written', async () => {
    w = await world();
    await w.store.recordThrottle({ key: D, until: Date.now() + 20_000, code: 80007 });
    const f = join(w.dir, '..', `fleet-edges-${process.pid}-${Date.now()}.csv`);
    await writeFile(f, csv(3, 7300));
    const env = { PATH: process.env.PATH ?? '', NO_COLOR: '1', WABA_ACCESS_TOKEN: FIXTURES.token, WABA_GRAPH_URL: w.url, WABA_MIGRATE_STATE_DIR: w.dir };
    const child = spawn(process.execPath, [CLI, 'batch', 'start', f, '--id', 'sig', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // The batch record is written before any row starts; then the rows wait for the pause.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        void readdir(join(w!.dir, 'batches')).then(
          (names) => {
            if (names.some((n) => n.startsWith('sig'))) {
              clearInterval(t);
              setTimeout(resolve, 300);
            }
          },
          () => {},
        );
      }, 20);
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code, stderr).toBe(143);
    expect(totalCalls(w)).toBe(0);
    expect((await readdir(join(w.dir, 'migrations')).catch(() => [])).filter((n) => n.endsWith('.json'))).toEqual([]);
    expect(JSON.parse(stdout).counts).toEqual({ pending: 3 });
    const { rm } = await import('node:fs/promises');
    await rm(f, { force: true });
  }, 30_000);
});

describe('the shared group checks are calls like any other', () => {
  it('they reach onCall, so --verbose shows them: every call the sandbox answered was reported', async () => {
    w = await world();
    const calls: CallSummary[] = [];
    const runner = new BatchRunner({ store: w.store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', onCall: (c) => calls.push(c) });
    await runner.start(csv(2), { id: 'gc' });
    // The group's business and WABA reads are made once for the group, outside any migration's run.
    const businessReads = calls.filter((c) => c.method === 'GET' && /owned_whatsapp_business_accounts/.test(c.path));
    expect(businessReads.length).toBeGreaterThanOrEqual(1);
    expect(calls.length).toBe(totalCalls(w));
  });
});
