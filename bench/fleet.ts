/**
 * `npm run bench:fleet`: the fleet figures. Prints a table and adds them to bench/results.json
 * under "fleet" (the other figures are left as they are).
 *
 * 1. 1,000 numbers in one batch to one destination WABA, the sandbox's rate limit binding: total
 *    time vs the rate-limit bound ⌈calls ÷ limit⌉ × window, 80007s per window, calls per migration.
 * 2. The same 1,000 without a limit at 20 ms latency vs the latency-bound ideal at that concurrency.
 * 3. `batch status` over a 10,000-row batch: time and peak memory of the real CLI.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import { BatchRunner } from '../src/batch/index.js';
import { FileStore } from '../src/store/store.js';
import { FIXTURES, GraphSandbox } from '../src/sandbox/index.js';
import { MigrationEngine } from '../src/runner/engine.js';
import { markdownTable, saveResults } from './run.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const quick = process.argv.includes('--quick');
const N = quick ? 300 : 1_000;
const now = () => performance.now();

interface Stats {
  calls: number;
  perKey: Record<string, number>;
  refused: number;
  maxRefusedPerWindow: number;
  maxAllowedPerWindow: number;
  windowsWithRefusal: number;
  duplicateCreates: number;
  counters: Record<string, number>;
}

async function remote(latencyMs: number, rateLimit: { calls: number; windowMs: number } | null) {
  const t = new Thread(new URL('./fleet-sandbox-worker.js', import.meta.url), { workerData: { latencyMs, rateLimit } });
  const ask = <T>(type: string) =>
    new Promise<T>((r) => {
      const on = (m: { type: string } & Record<string, unknown>) => {
        if (m.type !== type && !(type === 'stop' && m.type === 'stopped')) return;
        t.off('message', on);
        r(m as T);
      };
      t.on('message', on);
      t.postMessage({ type });
    });
  const ready = await new Promise<{ url: string; tenant: { businessId: string; sourceWabaId: string; destWabaId: string } }>((r) => t.once('message', r));
  return {
    ...ready,
    codes: async () => (await ask<{ codes: [string, string][] }>('codes')).codes,
    stats: async () => (await ask<{ stats: Stats }>('stats')).stats,
    stop: async () => {
      await ask('stop');
      await t.terminate();
    },
  };
}

const loadAverage = () => Math.round(loadavg()[0]! * 10) / 10;
const phoneOf = (i: number) => `+1631556${String(i).padStart(4, '0')}`;

/** One batch of n numbers through BatchRunner: start (to awaiting_code), then codes (to completed). */
async function fleetRun(n: number, latencyMs: number, rateLimit: { calls: number; windowMs: number } | null, concurrency: number) {
  const sb = await remote(latencyMs, rateLimit);
  const dir = await mkdtemp(join(tmpdir(), 'waba-fleet-bench-'));
  const { sourceWabaId, destWabaId, businessId } = sb.tenant;
  const csv = `phone,source_waba,dest_waba,business,confirm\n${Array.from({ length: n }, (_, i) => `${phoneOf(i)},${sourceWabaId},${destWabaId},${businessId},two_step_disabled`).join('\n')}\n`;
  let throttles = 0;
  const runner = new BatchRunner({ store: new FileStore(dir), token: FIXTURES.token, graphUrl: sb.url, operator: 'bench', concurrency, onEvent: (e) => void (e.type === 'throttle' && throttles++) });
  const loadStart = loadAverage();
  const t0 = now();
  // Time scaled like the window (a second for Meta's hour): retry backoff scaled down with it.
  const started = await runner.start(csv, { id: 'bench', policy: { retryBaseMs: 20, retryCapMs: 500, maxAttemptsPerStep: 50 } });
  const tStart = now() - t0;
  const codes = await sb.codes();
  const { summary } = await runner.codes('bench', `phone,code\n${codes.map(([p, c]) => `${p},${c}`).join('\n')}\n`, { pin: '246810', concurrency });
  const ms = now() - t0;
  const stats = await sb.stats();
  await sb.stop();
  await rm(dir, { recursive: true, force: true });
  if (summary.counts.completed !== n) throw new Error(`bench batch ended ${JSON.stringify(summary.counts)} (start: ${JSON.stringify(started.counts)})`);
  return { ms, startMs: tStart, stats, throttles, loadAverage: [loadStart, loadAverage()] };
}

/**
 * Graph calls per migration, shared checks (a batch) vs one migration at a time (today's path),
 * side by side at the same scale: n numbers into one fresh destination WABA, no limit, 0 ms.
 */
async function callsShared(n: number): Promise<{ shared: number; unshared: number }> {
  const sb = new GraphSandbox();
  const url = await sb.start();
  const a = sb.addTenant(2);
  const b = sb.addTenant(3);
  const dir = await mkdtemp(join(tmpdir(), 'waba-fleet-bench-'));
  const count = () => Object.values(sb.counters).reduce((x, c) => x + c.calls, 0);
  // Batch (shared group checks).
  const runner = new BatchRunner({ store: new FileStore(dir, { fsync: 'never' }), token: FIXTURES.token, graphUrl: url, operator: 'bench', concurrency: 16 });
  await runner.start(`phone,source_waba,dest_waba,business,confirm\n${Array.from({ length: n }, (_, i) => `${phoneOf(i)},${a.sourceWabaId},${a.destWabaId},${a.businessId},two_step_disabled`).join('\n')}\n`, { id: 'shared' });
  const latest = new Map<string, string>();
  for (const o of sb.outbox) latest.set(o.phone, o.code);
  await runner.codes('shared', `phone,code\n${[...latest].map(([p, c]) => `${p},${c}`).join('\n')}\n`, { pin: '246810' });
  const shared = count() / n;
  // One by one, as `start` + `resume` do.
  const before = count();
  const engine = new MigrationEngine({ store: new FileStore(dir, { fsync: 'never' }), token: FIXTURES.token, graphUrl: url, operator: 'bench' });
  for (let i = 0; i < n; i++) {
    const v = await engine.start({ id: `u${i}`, phone: phoneOf(5000 + i), sourceWabaId: b.sourceWabaId, destWabaId: b.destWabaId, businessId: b.businessId, confirm: ['two_step_disabled'] });
    await engine.submitCode(`u${i}`, sb.lastCodeFor(v.phoneNumberId!)!.code, '246810');
  }
  const unshared = (count() - before) / n;
  await sb.stop();
  await rm(dir, { recursive: true, force: true });
  return { shared, unshared };
}

// ---- 3. batch status over 10,000 rows -----------------------------------------------------------

const RSS_PROBE = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nMAXRSS '+process.resourceUsage().maxRSS+'\\n'))`;
function timed(args: string[], env: Record<string, string>): Promise<{ ms: number; rssMb: number; code: number | null }> {
  return new Promise((res, rej) => {
    const t0 = now();
    const c = spawn(process.execPath, [`--import=${RSS_PROBE}`, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', rej);
    c.on('close', (code) => res({ ms: now() - t0, rssMb: Math.round(Number(/MAXRSS (\d+)/.exec(err)?.[1] ?? 0) / 102.4) / 10, code }));
  });
}

async function statusOf10k() {
  const rows = quick ? 2_000 : 10_000;
  // One real migration of a batch, cloned to every row (ids and numbers rewritten consistently).
  const sb = new GraphSandbox();
  const url = await sb.start();
  const dir = await mkdtemp(join(tmpdir(), 'waba-fleet-bench-'));
  const store = new FileStore(dir, { fsync: 'never' });
  const runner = new BatchRunner({ store, token: FIXTURES.token, graphUrl: url, operator: 'bench' });
  await runner.start(`phone,source_waba,dest_waba,confirm\n${phoneOf(0)},${FIXTURES.sourceWabaId},${FIXTURES.destWabaId},two_step_disabled\n`, { id: 'big' });
  await sb.stop();
  const template = await readFile(store.file('big-1'), 'utf8');
  const record = await store.loadBatch('big');
  const row0 = record.rows[0]!;
  record.rows = [];
  const digits0 = phoneOf(0).slice(1);
  for (let i = 0; i < rows; i++) {
    const id = `big-${i + 1}`;
    const phone = phoneOf(i);
    record.rows.push({ ...row0, line: i + 2, phone, migrationId: id });
    const national = phone.slice(2);
    await writeFile(store.file(id), template.replaceAll('"big-1"', JSON.stringify(id)).replaceAll(digits0, phone.slice(1)).replaceAll(`"${digits0.slice(1)}"`, `"${national}"`), { mode: 0o600 });
  }
  await store.saveBatch(record);
  const runs: { ms: number; rssMb: number }[] = [];
  const lists: { ms: number; rssMb: number }[] = [];
  for (let r = 0; r < (quick ? 2 : 5); r++) {
    const t = await timed([CLI, 'batch', 'status', 'big', '--json'], { WABA_MIGRATE_STATE_DIR: dir });
    if (t.code !== 0) throw new Error(`batch status exited ${t.code}`);
    runs.push(t);
    // The same documents through `list --json`, side by side: what reading them costs here, now.
    lists.push(await timed([CLI, 'list', '--json'], { WABA_MIGRATE_STATE_DIR: dir }));
  }
  await rm(dir, { recursive: true, force: true });
  const med = (xs: { ms: number }[]) => xs.map((x) => x.ms).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { rows, ms: med(runs), peakRssMb: Math.max(...runs.map((x) => x.rssMb)), listMs: med(lists), listPeakRssMb: Math.max(...lists.map((x) => x.rssMb)) };
}

async function main() {
  if (process.argv.includes('--status-only')) {
    // Figure 8 alone (for profiling `batch status`); prints it, writes nothing.
    const st = await statusOf10k();
    process.stdout.write(`batch status --json over ${st.rows} rows: ${st.ms.toFixed(0)} ms, peak ${st.peakRssMb} MB; list --json ${st.listMs.toFixed(0)} ms, ${st.listPeakRssMb} MB\n`);
    return;
  }
  const fmt = (x: number, d = 0) => x.toFixed(d);
  const limit = { calls: quick ? 100 : 200, windowMs: 1_000 };
  const concurrency = 16;
  process.stderr.write(`fleet 1/3: ${N} numbers, rate limit ${limit.calls}/${limit.windowMs} ms…\n`);
  const limited = await fleetRun(N, 0, limit, concurrency);
  const destCalls = Math.max(...Object.values(limited.stats.perKey));
  const bound = Math.ceil(destCalls / limit.calls) * limit.windowMs;
  process.stderr.write(`fleet 1/3: calls per migration, shared vs one by one…\n`);
  const calls = await callsShared(quick ? 50 : 200);
  process.stderr.write(`fleet 2/3: ${N} numbers, no limit, 20 ms…\n`);
  const free = await fleetRun(N, 20, null, concurrency);
  // Latency-bound ideal at this concurrency: every request costs the latency, requests that
  // depend on each other run one after the other. Per migration: create, request_code (the checks
  // use the group's snapshot), then verify, register, and confirm (its reads in parallel, the
  // destination list's first page sorted newest onboarded first). The group check once: its
  // reads, and the destination's ⌈N ÷ 100⌉ list pages if the numbers were there already.
  const rounds = 2 + 2 + 1;
  const ideal = Math.ceil(N / concurrency) * rounds * 20 + 3 * 20;
  process.stderr.write('fleet 3/3: batch status over 10,000 rows…\n');
  const st = await statusOf10k();

  const perMigration = limited.stats.calls / N;
  const rows: [string, string, string, string][] = [
    [`6. ${N} numbers, one batch, one destination WABA, limit ${limit.calls} calls/${limit.windowMs / 1000} s`, `${fmt(limited.ms)} ms vs bound ${fmt(bound)} ms (${destCalls} calls on the WABA)`, `${(limited.ms / bound).toFixed(3)}×`, '≤ 1.15×'],
    ['6. 80007 answers per WABA per window', `max ${limited.stats.maxRefusedPerWindow} (${limited.stats.refused} in ${Math.ceil(limited.ms / limit.windowMs)} windows)`, '', '≤ 1'],
    [`6. Graph calls per migration in that batch`, `${perMigration.toFixed(2)}`, '', '(reported)'],
    [`6. Graph calls per migration, ${quick ? 50 : 200} into one WABA: batch vs one by one`, `${calls.shared.toFixed(2)} vs ${calls.unshared.toFixed(2)}`, `${(calls.shared / calls.unshared).toFixed(2)}×`, '(reported)'],
    [`7. same ${N}, no limit, 20 ms latency, ${concurrency} at a time`, `${fmt(free.ms)} ms vs ideal ${fmt(ideal)} ms`, `${(free.ms / ideal).toFixed(2)}×`, '(reported)'],
    [`8. batch status --json over ${st.rows} rows`, `${fmt(st.ms)} ms, peak ${st.peakRssMb} MB (list --json over the same: ${fmt(st.listMs)} ms, ${st.listPeakRssMb} MB)`, `${(st.ms / st.listMs).toFixed(2)}× list`, '< 1 s, < 150 MB'],
  ];
  process.stderr.write(`load average during the runs: limited ${limited.loadAverage.join('→')}, unlimited ${free.loadAverage.join('→')} (2 cores)\n`);
  const table = markdownTable(rows);
  process.stdout.write(`${table}\n`);
  await saveResults({
    fleet: {
      date: new Date().toISOString(),
      quick,
      rateLimited: { numbers: N, limit, concurrency, ms: limited.ms, startPhaseMs: limited.startMs, boundMs: bound, ratio: limited.ms / bound, callsOnDestWaba: destCalls, stats: limited.stats, throttleEvents: limited.throttles, loadAverage: limited.loadAverage, callsPerMigration: perMigration, callsSideBySide: calls },
      unlimited: { numbers: N, latencyMs: 20, concurrency, ms: free.ms, idealMs: ideal, ratio: free.ms / ideal, loadAverage: free.loadAverage, callsPerMigration: free.stats.calls / N },
      batchStatus: st,
      table,
    },
  });
}

await main();
