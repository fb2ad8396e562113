/**
 * `npm run bench`: what durability costs, and how it scales. Prints a table, writes
 * bench/results.json. Each figure is the median of several runs; ratios are measured side by
 * side in the same run (alternating, so drift hits both sides alike).
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdtemp, readFile, rm, writeFile, open, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { request } from 'undici';
import { MigrationEngine } from '../src/runner/engine.js';
import { FileStore, type MigrationStore } from '../src/store/store.js';
import { FIXTURES, GraphSandbox } from '../src/sandbox/index.js';
import type { MigrationDocument } from '../src/store/document.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const quick = process.argv.includes('--quick');
/** `--only 1,2` runs just those figures (for profiling); the README table comes from a full run. */
const only = new Set((process.argv[process.argv.indexOf('--only') + 1] ?? '').split(',').filter(Boolean).map(Number));
const want = (n: number) => !process.argv.includes('--only') || only.has(n);
const REPS = quick ? 2 : 5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const now = () => performance.now();
const phoneOf = (i: number) => `+1631555${String(3000 + i).padStart(4, '0')}`;

async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

// ---- 1. durable orchestrator vs a plain undici script making the same calls -------------------

interface RemoteSandbox {
  url: string;
  tenants: { businessId: string; sourceWabaId: string; destWabaId: string }[];
  code(phoneNumberId: string): Promise<string>;
  stop(): Promise<void>;
}

/** A sandbox in a worker thread (see sandbox-worker.ts): Meta's servers do not share our CPU. */
async function remoteSandbox(latencyMs: number, tenants: number): Promise<RemoteSandbox> {
  const worker = new Worker(new URL('./sandbox-worker.js', import.meta.url), { workerData: { latencyMs, tenants } });
  const waiting = new Map<number, (code: string) => void>();
  let seq = 0;
  const ready = await new Promise<{ url: string; tenants: RemoteSandbox['tenants'] }>((resolve) => {
    worker.on('message', (m: { type: string; id?: number; code?: string; url?: string; tenants?: RemoteSandbox['tenants'] }) => {
      if (m.type === 'ready') resolve({ url: m.url!, tenants: m.tenants! });
      if (m.type === 'code') waiting.get(m.id!)?.(m.code!);
    });
  });
  return {
    ...ready,
    code: (phoneNumberId) =>
      new Promise((resolve) => {
        const id = ++seq;
        waiting.set(id, resolve);
        worker.postMessage({ type: 'code', id, phoneNumberId });
      }),
    stop: async () => {
      await new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.postMessage({ type: 'stop' });
      });
      await worker.terminate();
    },
  };
}

/**
 * Where a run's CPU went (Linux /proc), around the timed part of a run: this process's main thread
 * (it runs the engine and every driver's JavaScript) on a CPU and runnable but waiting for one;
 * the whole process (with the simulator's thread and V8's compiler and GC threads); the rest of
 * the machine (here: the PostgreSQL server); the machine's busy share. `result` stays null where
 * /proc cannot be read.
 */
class CpuProbe {
  result: { mainOnCpuMs: number; mainWaitMs: number; processCpuMs: number; otherCpuMs: number; machineBusy: number } | null = null;
  #start: Awaited<ReturnType<typeof CpuProbe.read>> = null;

  static async read(): Promise<{ on: number; wait: number; proc: number; busy: number; total: number } | null> {
    try {
      // schedstat: ns on a CPU, ns runnable but waiting, timeslices. The main thread's tid is the pid.
      const [on, wait] = (await readFile(`/proc/self/task/${process.pid}/schedstat`, 'utf8')).trim().split(/\s+/).map(Number);
      // /proc/stat's first line: the machine's CPU time in clock ticks (100 a second), idle and iowait 4th and 5th.
      const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const total = cpu.reduce((a, b) => a + b, 0) * 10;
      const { user, system } = process.cpuUsage();
      return { on: on! / 1e6, wait: wait! / 1e6, proc: (user + system) / 1000, busy: total - (cpu[3]! + cpu[4]!) * 10, total };
    } catch {
      return null;
    }
  }

  async begin(): Promise<void> {
    this.#start = await CpuProbe.read();
  }

  async end(): Promise<void> {
    const [a, b] = [this.#start, await CpuProbe.read()];
    if (!a || !b) return void (this.result = null);
    const processCpuMs = b.proc - a.proc;
    this.result = { mainOnCpuMs: b.on - a.on, mainWaitMs: b.wait - a.wait, processCpuMs, otherCpuMs: Math.max(0, b.busy - a.busy - processCpuMs), machineBusy: (b.busy - a.busy) / (b.total - a.total) };
  }
}

/** n migrations start → code → completed on `store`, `concurrency` at a time; the time it took. */
async function migrateAll(store: MigrationStore, sandbox: RemoteSandbox, n: number, concurrency: number, probe?: CpuProbe): Promise<number> {
  const engine = new MigrationEngine({ store, token: FIXTURES.token, graphUrl: sandbox.url, operator: 'bench' });
  await probe?.begin();
  const t0 = now();
  await pool(n, concurrency, async (i) => {
    const id = `b${i}`;
    const t = sandbox.tenants[i]!;
    const v = await engine.start({ id, phone: phoneOf(i), sourceWabaId: t.sourceWabaId, destWabaId: t.destWabaId, businessId: t.businessId, confirm: ['two_step_disabled'] });
    const done = await engine.submitCode(id, await sandbox.code(v.phoneNumberId!), '123456');
    if (done.state !== 'completed') throw new Error(`bench migration ${id} ended ${done.state}`);
  });
  const ms = now() - t0;
  await probe?.end();
  return ms;
}

/** n migrations on a file store in a new temp directory. */
async function orchestrated(n: number, concurrency: number, latencyMs: number, fsync: 'barriers' | 'never' = 'barriers'): Promise<number> {
  const sandbox = await remoteSandbox(latencyMs, n);
  const dir = await mkdtemp(join(tmpdir(), 'waba-bench-'));
  const ms = await migrateAll(new FileStore(dir, { fsync }), sandbox, n, concurrency);
  await sandbox.stop();
  await rm(dir, { recursive: true, force: true });
  return ms;
}

/** The same HTTP calls, in the same order and the same parallel groups, with no state at all. */
async function plain(n: number, concurrency: number, latencyMs: number, probe?: CpuProbe): Promise<number> {
  const sandbox = await remoteSandbox(latencyMs, n);
  const base = `${sandbox.url}/v23.0`;
  const headers = { authorization: `Bearer ${FIXTURES.token}`, 'content-type': 'application/json' };
  const call = async (method: 'GET' | 'POST', path: string, body?: object) => {
    const r = await request(`${base}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const json = (await r.body.json()) as Record<string, unknown>;
    if (r.statusCode !== 200) throw new Error(`${method} ${path}: ${r.statusCode}`);
    return json;
  };
  await probe?.begin();
  const t0 = now();
  await pool(n, concurrency, async (i) => {
    const { destWabaId: dest, sourceWabaId: src, businessId: biz } = sandbox.tenants[i]!;
    const national = phoneOf(i).slice(2);
    await Promise.all([call('GET', `/${src}?fields=id,name,account_review_status,primary_funding_id,owner_business_info`), call('GET', `/${dest}?fields=id,name,account_review_status,primary_funding_id,owner_business_info`), call('GET', `/${dest}/phone_numbers?fields=id,display_phone_number,verified_name,status,code_verification_status,quality_rating&limit=100`)]);
    await Promise.all([call('GET', `/${biz}/owned_whatsapp_business_accounts`), call('GET', `/${biz}?fields=id,name,verification_status`)]);
    const { id } = (await call('POST', `/${dest}/phone_numbers`, { cc: '1', phone_number: national, migrate_phone_number: true })) as { id: string };
    await call('POST', `/${id}/request_code`, { code_method: 'SMS', language: 'en_US' });
    await call('POST', `/${id}/verify_code`, { code: await sandbox.code(id) });
    await call('POST', `/${id}/register`, { messaging_product: 'whatsapp', pin: '123456' });
    await Promise.all([call('GET', `/${id}?fields=id,status,code_verification_status,display_phone_number,verified_name,quality_rating`), call('GET', `/${dest}/phone_numbers?fields=id,display_phone_number,verified_name,status,code_verification_status,quality_rating&limit=100`), call('GET', `/${dest}/subscribed_apps`)]);
  });
  const ms = now() - t0;
  await probe?.end();
  await sandbox.stop();
  return ms;
}

async function durableVsPlain(latencyMs: number, fsync: 'barriers' | 'never' = 'barriers') {
  const n = quick ? 60 : 200;
  const o: number[] = [];
  const p: number[] = [];
  await orchestrated(20, 20, latencyMs); // warm-up
  await plain(20, 20, latencyMs);
  for (let r = 0; r < REPS; r++) {
    o.push(await orchestrated(n, 20, latencyMs, fsync));
    p.push(await plain(n, 20, latencyMs));
  }
  return { migrations: n, concurrency: 20, latencyMs, orchestratorMs: median(o), plainMs: median(p), ratio: median(o.map((x, i) => x / p[i]!)) };
}

/** One migration at a time, the way a person runs one: what durability adds to each. */
async function durableVsPlainSerial(latencyMs: number) {
  const n = quick ? 10 : 30;
  const o: number[] = [];
  const p: number[] = [];
  for (let r = 0; r < REPS; r++) {
    o.push(await orchestrated(n, 1, latencyMs));
    p.push(await plain(n, 1, latencyMs));
  }
  return { migrations: n, concurrency: 1, latencyMs, orchestratorMs: median(o) / n, plainMs: median(p) / n, ratio: median(o.map((x, i) => x / p[i]!)) };
}

// ---- 2 & 3. one persist vs the floor, and with 10 vs 10 000 migrations on disk ----------------

async function sampleDocument(): Promise<MigrationDocument> {
  const sandbox = new GraphSandbox();
  const url = await sandbox.start();
  const dir = await mkdtemp(join(tmpdir(), 'waba-bench-'));
  const engine = new MigrationEngine({ store: new FileStore(dir), token: FIXTURES.token, graphUrl: url, operator: 'bench' });
  const v = await engine.start({ id: 'sample', phone: FIXTURES.phone, sourceWabaId: FIXTURES.sourceWabaId, destWabaId: FIXTURES.destWabaId, confirm: ['two_step_disabled'] });
  await engine.submitCode('sample', sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
  const doc = await new FileStore(dir).load('sample');
  await sandbox.stop();
  await rm(dir, { recursive: true, force: true });
  return doc;
}

async function fillStore(dir: string, doc: MigrationDocument, count: number): Promise<void> {
  const store = new FileStore(dir);
  await store.init();
  const text = JSON.stringify(doc);
  await pool(count, 32, async (i) => {
    const id = `fill-${i}`;
    await writeFile(store.file(id), text.replaceAll('"sample"', JSON.stringify(id)), { mode: 0o600 });
  });
}

/** Median time of one durable persist (lowdb document through the store, fsynced) of the real document. */
async function persistMs(dir: string, writes: number): Promise<number> {
  const store = new FileStore(dir);
  const lease = await store.lock('fill-0');
  const h = await store.open('fill-0');
  const times: number[] = [];
  for (let i = 0; i < writes; i++) {
    h.data.updatedAt = new Date().toISOString();
    const t0 = now();
    await h.save({ durable: true }); // the fsynced kind, as before a request that changes Meta's state
    times.push(now() - t0);
  }
  await lease.release();
  return median(times);
}

/**
 * The floor: write a temp file, fsync it, rename it over the target. Nothing else. With
 * `dirSync`, also fsync the directory after the rename (what makes the rename itself survive a
 * power cut; the store does it at its barriers since the hardening issue): the floor of what
 * the store does now.
 */
async function rawAtomicMs(dir: string, bytes: string, writes: number, dirSync = false): Promise<number> {
  const target = join(dir, 'raw.json');
  const times: number[] = [];
  for (let i = 0; i < writes; i++) {
    const t0 = now();
    const tmp = `${target}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    await fh.writeFile(bytes);
    await fh.sync();
    await fh.close();
    await rename(tmp, target);
    if (dirSync) {
      const d = await open(dir, 'r');
      await d.sync();
      await d.close();
    }
    times.push(now() - t0);
  }
  return median(times);
}

async function persistence(doc: MigrationDocument) {
  const writes = quick ? 100 : 400;
  const small = await mkdtemp(join(tmpdir(), 'waba-bench-'));
  const large = await mkdtemp(join(tmpdir(), 'waba-bench-'));
  await fillStore(small, doc, 10);
  await fillStore(large, doc, quick ? 2_000 : 10_000);
  const bytes = JSON.stringify({ ...doc, id: 'fill-0' });
  const store: number[] = [];
  const floor: number[] = [];
  const floorDir: number[] = [];
  const s10: number[] = [];
  const s10k: number[] = [];
  for (let r = 0; r < REPS; r++) {
    store.push(await persistMs(small, writes));
    floor.push(await rawAtomicMs(small, bytes, writes));
    floorDir.push(await rawAtomicMs(small, bytes, writes, true));
    s10.push(await persistMs(small, writes));
    s10k.push(await persistMs(large, writes));
  }
  await rm(small, { recursive: true, force: true });
  return {
    large,
    persist: {
      documentBytes: Buffer.byteLength(bytes),
      persistMs: median(store),
      floorMs: median(floor),
      ratio: median(store.map((x, i) => x / floor[i]!)),
      floorWithDirSyncMs: median(floorDir),
      ratioToDirSyncFloor: median(store.map((x, i) => x / floorDir[i]!)),
    },
    scaling: { migrations: [10, quick ? 2_000 : 10_000], persistMs10: median(s10), persistMsLarge: median(s10k), ratio: median(s10k.map((x, i) => x / s10[i]!)) },
  };
}

// ---- 4 & 5. the CLI: list/status over 10 000 migrations, and start-up ------------------------------

const RSS_PROBE = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nMAXRSS '+process.resourceUsage().maxRSS+'\\n'))`;

function timed(args: string[], env: Record<string, string> = {}): Promise<{ ms: number; rssMb: number; code: number | null }> {
  return new Promise((resolvePromise, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, [`--import=${RSS_PROBE}`, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const kb = Number(/MAXRSS (\d+)/.exec(err)?.[1] ?? 0);
      resolvePromise({ ms: now() - t0, rssMb: Math.round(kb / 102.4) / 10, code });
    });
  });
}

async function listing(dir: string) {
  const list: { ms: number; rssMb: number }[] = [];
  const status: { ms: number; rssMb: number }[] = [];
  for (let r = 0; r < REPS; r++) {
    const l = await timed([CLI, 'list', '--json'], { WABA_MIGRATE_STATE_DIR: dir });
    if (l.code !== 0) throw new Error(`list exited ${l.code}`);
    list.push(l);
    status.push(await timed([CLI, 'status', 'fill-4321', '--json'], { WABA_MIGRATE_STATE_DIR: dir }));
  }
  return {
    listMs: median(list.map((x) => x.ms)),
    listPeakRssMb: Math.max(...list.map((x) => x.rssMb)),
    statusMs: median(status.map((x) => x.ms)),
    statusPeakRssMb: Math.max(...status.map((x) => x.rssMb)),
  };
}

async function startup() {
  const cli: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < REPS * 3; r++) {
    cli.push((await timed([CLI, '--version'])).ms);
    bare.push((await timed(['-e', '0'])).ms);
  }
  return { versionMs: median(cli), nodeMs: median(bare), ratio: median(cli.map((x, i) => x / bare[i]!)) };
}

// ---- report -------------------------------------------------------------------------------------

const fmt = (x: number, d = 1) => x.toFixed(d);

async function main() {
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
  process.stderr.write(`bench on ${machine.cores} cores (${machine.cpu}), Node ${machine.node}${quick ? ' [quick]' : ''}\n`);
  process.stderr.write('1/5 durable vs plain, 20 ms…\n');
  const d20 = want(1) ? await durableVsPlain(20) : null;
  process.stderr.write('1/5 durable vs plain, 0 ms…\n');
  const d0 = want(1) ? await durableVsPlain(0) : null;
  process.stderr.write('1/5 durable vs plain, 20 ms, no fsync…\n');
  const dn = want(1) ? await durableVsPlain(20, 'never') : null;
  process.stderr.write('1/5 durable vs plain, one at a time, 20 ms…\n');
  const d1 = want(1) ? await durableVsPlainSerial(20) : null;
  if (!want(2)) {
    process.stdout.write(`${JSON.stringify({ d20, dn, d0, d1 }, null, 2)}\n`);
    return;
  }
  process.stderr.write('2-3/5 persistence…\n');
  const doc = await sampleDocument();
  const { large, persist, scaling } = await persistence(doc);
  process.stderr.write('4/5 listing…\n');
  const list = await listing(large);
  await rm(large, { recursive: true, force: true });
  process.stderr.write('5/5 start-up…\n');
  const start = await startup();

  const n = scaling.migrations[1]!;
  const rows: [string, string, string, string][] = [
    [`1. ${d20!.migrations} migrations, 20 at a time, 20 ms latency`, `${fmt(d20!.orchestratorMs, 0)} ms vs plain ${fmt(d20!.plainMs, 0)} ms`, `${fmt(d20!.ratio, 3)}×`, '≤ 1.05×'],
    [`1. same, store fsync off entirely`, `${fmt(dn!.orchestratorMs, 0)} ms vs plain ${fmt(dn!.plainMs, 0)} ms`, `${fmt(dn!.ratio, 3)}×`, '(reported)'],
    [`1. one migration at a time, 20 ms latency (per migration)`, `${fmt(d1!.orchestratorMs, 0)} ms vs plain ${fmt(d1!.plainMs, 0)} ms`, `${fmt(d1!.ratio, 3)}×`, '(reported)'],
    [`1. same, 0 ms latency`, `${fmt(d0!.orchestratorMs, 0)} ms vs plain ${fmt(d0!.plainMs, 0)} ms`, `${fmt(d0!.ratio, 2)}×`, '(reported)'],
    [`2. one persist vs raw temp+fsync+rename (${persist.documentBytes} B)`, `${fmt(persist.persistMs, 3)} ms vs ${fmt(persist.floorMs, 3)} ms`, `${fmt(persist.ratio, 2)}×`, '≤ 1.5×'],
    [`2. same vs raw temp+fsync+rename+directory fsync (what the store does at a barrier)`, `${fmt(persist.persistMs, 3)} ms vs ${fmt(persist.floorWithDirSyncMs, 3)} ms`, `${fmt(persist.ratioToDirSyncFloor, 2)}×`, '(reported)'],
    [`3. one persist with 10 vs ${n} migrations on disk`, `${fmt(scaling.persistMs10, 3)} ms vs ${fmt(scaling.persistMsLarge, 3)} ms`, `${fmt(scaling.ratio, 2)}×`, '≤ 1.2×'],
    [`4. list --json over ${n} migrations`, `${fmt(list.listMs, 0)} ms, peak ${fmt(list.listPeakRssMb)} MB`, '', '< 1 s, < 150 MB'],
    [`4. status over ${n} migrations`, `${fmt(list.statusMs, 0)} ms, peak ${fmt(list.statusPeakRssMb)} MB`, '', '< 1 s, < 150 MB'],
    ['5. --version vs node -e 0', `${fmt(start.versionMs, 0)} ms vs ${fmt(start.nodeMs, 0)} ms`, `${fmt(start.ratio, 2)}×`, '≤ 3×'],
  ];
  const table = [`Machine: ${machine.cores} cores, ${machine.cpu}, ${machine.memoryGb} GB, Node ${machine.node}; medians of ${REPS} runs${quick ? ' (quick mode: smaller sizes)' : ''}.`, '', markdownTable(rows)].join('\n');
  process.stdout.write(`${table}\n`);
  // The file-store figures; the PostgreSQL and fleet benches' entries in the same file are kept.
  await saveResults({ machine, quick, reps: REPS, durableVsPlain: [d20, dn, d1, d0], persist, scaling, listing: { migrations: n, ...list }, startup: start, table });
}

const RESULTS = join(ROOT, 'bench/results.json');

/** bench/results.json as it is (each bench owns some of its keys), or {} before the first run. */
async function loadResults(): Promise<Record<string, unknown>> {
  return readFile(RESULTS, 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, () => ({}));
}

/** The benches' figures as a Markdown table: measure, result, ratio, goal. */
function markdownTable(rows: string[][]): string {
  return ['| measure | result | ratio | goal |', '|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Sets these keys of bench/results.json and keeps the others (the other benches' figures). */
async function saveResults(keys: Record<string, unknown>): Promise<void> {
  await writeFile(RESULTS, `${JSON.stringify({ ...(await loadResults()), ...keys }, null, 2)}\n`);
}

// Run when executed (npm run bench); bench/pg.ts imports the helpers above without running it.
if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) await main();

export { CpuProbe, loadResults, markdownTable, median, migrateAll, orchestrated, saveResults, pool, phoneOf, plain, remoteSandbox, timed, sampleDocument, type RemoteSandbox };
