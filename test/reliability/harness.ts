/**
 * Crash-anywhere harness: the real CLI against the sandbox, SIGKILLed at random (seeded) moments,
 * including while a request is in flight and while a document is being written, then resumed
 * until done, with a share of the sandbox's answers faulty. The verdict counts what matters:
 * migrations completed, effects duplicated, documents corrupt, history gaps.
 */
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { FileStore, type MigrationStore } from '../../src/store/store.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { FIXTURES, GraphSandbox, prng, type FaultRates } from '../../src/sandbox/index.js';
import { parsePhone } from '../../src/runner/validate.js';
import type { MigrationContext } from '../../machines/migration.js';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';

export interface HarnessOptions {
  runs: number;
  seed: number;
  /** Total share of faulty answers, split across the fault kinds. */
  faultRate: number;
  concurrency: number;
  /** Chance that an invocation is killed, and the window its kill time is drawn from. */
  killChance: number;
  killWindowMs: [number, number];
  latencyMs: number;
  /** Extra environment and global flags for every CLI invocation (e.g. a notify URL). */
  env?: Record<string, string>;
  globalArgs?: string[];
  /** Each run's number starts on the source WABA, as a real one does (its old id is known). */
  sourceNumbers?: boolean;
  /** Looks at the state dir after the runs, before it is removed; failures go into the verdict. */
  inspect?: (ctx: { dir: string; store: MigrationStore; env: Record<string, string>; sandbox: GraphSandbox; failures: string[] }) => Promise<void>;
  /** A postgres:// URL to run against PostgreSQL (an empty database); default: a temp state dir. */
  storeUrl?: string;
}

export interface Verdict {
  seed: number;
  runs: number;
  invocations: number;
  kills: number;
  /** Kills that left a write-file-atomic temp file behind: the process died mid-write. */
  killsMidWrite: number;
  completed: number;
  duplicateCreates: number;
  duplicateRegisters: number;
  /** request_code calls Meta applied beyond one per number plus one per resend the person asked for. */
  extraCodeRequests: number;
  /** Resends the "person" asked for because no code arrived. */
  resendsAsked: number;
  corruptDocuments: number;
  historyGaps: number;
  faultsInjected: number;
  requests: number;
  failures: string[];
  seconds: number;
}

export const DEFAULT_HARNESS: HarnessOptions = {
  runs: 100,
  seed: 20261121,
  faultRate: 0.2,
  concurrency: 4,
  killChance: 0.6,
  killWindowMs: [60, 700],
  latencyMs: 5,
};

function faultsFor(rate: number): FaultRates {
  return { serverError: rate * 0.25, rateLimit: rate * 0.2, reset: rate * 0.15, timeout: rate * 0.1, lostResponse: rate * 0.3 };
}

interface Invocation {
  code: number | null;
  killed: boolean;
  stderr: string;
}

type Kill = { kind: 'none' } | { kind: 'after'; ms: number } | { kind: 'on-write'; dir: string; id: string };

function invoke(args: string[], env: Record<string, string>, kill: Kill): Promise<Invocation> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d) => (stderr += d));
    const killer = kill.kind === 'after' ? setTimeout(() => (killed = child.kill('SIGKILL')), kill.ms) : null;
    // Kill the moment a temp file of this document appears: the process is inside a write.
    const watcher =
      kill.kind === 'on-write'
        ? watch(kill.dir, (_event, name) => {
            if (name && name.startsWith(`${kill.id}.json.`) && !killed) killed = child.kill('SIGKILL');
          })
        : null;
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (killer) clearTimeout(killer);
      watcher?.close();
      clearTimeout(guard);
      resolve({ code, killed: killed && signal === 'SIGKILL', stderr });
    });
  });
}

export async function runHarness(opts: HarnessOptions = DEFAULT_HARNESS): Promise<Verdict> {
  const started = performance.now();
  const sandbox = new GraphSandbox({ seed: opts.seed, latencyMs: opts.latencyMs, timeoutDelayMs: 900, faults: faultsFor(opts.faultRate) });
  const url = await sandbox.start();
  const dir = await tempDir('waba-harness-');
  const pgUrl = opts.storeUrl?.startsWith('postgres') ? opts.storeUrl : null;
  const store: MigrationStore = pgUrl ? new PostgresStore(pgUrl) : new FileStore(dir);
  const rand = prng(opts.seed ^ 0x5eed);
  const v: Verdict = {
    seed: opts.seed,
    runs: opts.runs,
    invocations: 0,
    kills: 0,
    killsMidWrite: 0,
    completed: 0,
    duplicateCreates: 0,
    duplicateRegisters: 0,
    extraCodeRequests: 0,
    resendsAsked: 0,
    corruptDocuments: 0,
    historyGaps: 0,
    faultsInjected: 0,
    requests: 0,
    failures: [],
    seconds: 0,
  };
  const env = {
    WABA_ACCESS_TOKEN: FIXTURES.token,
    ...(pgUrl ? { WABA_MIGRATE_STORE: pgUrl } : { WABA_MIGRATE_STATE_DIR: dir }),
    WABA_GRAPH_URL: url,
    WABA_REGISTER_PIN: '135790',
    WABA_GRAPH_TIMEOUT_MS: '600',
    WABA_MAX_WAIT_MS: '10000',
    ...opts.env,
  };
  const tempsSeen = new Set<string>();

  const one = async (i: number) => {
    const id = `run-${i}`;
    const phone = `+1631555${String(2000 + i).padStart(4, '0')}`;
    parsePhone(phone); // the harness's own numbers must be valid
    const digits = phone.slice(1);
    if (opts.sourceNumbers) sandbox.addSourceNumber(FIXTURES.sourceWabaId, phone);
    let resends = 0;
    for (let attempt = 0; attempt < 60; attempt++) {
      let doc = null;
      try {
        doc = (await store.exists(id)) ? await store.load(id) : null;
      } catch (e) {
        v.corruptDocuments++;
        v.failures.push(`${id}: ${(e as Error).message}`);
        return;
      }
      if (doc?.state === 'completed') break;
      if (doc && (doc.state === 'failed' || doc.state === 'cancelled')) {
        v.failures.push(`${id}: ended ${doc.state}: ${(doc.snapshot.context as MigrationContext).failure?.message ?? ''}`);
        return;
      }
      const ctx = doc?.snapshot.context as MigrationContext | undefined;
      const code = ctx?.phoneNumberId && (doc?.state === 'awaiting_code' || doc?.state === 'verifying_code') ? sandbox.lastCodeFor(ctx.phoneNumberId)?.code : undefined;
      // A person waiting for a code that never came (the request was lost before Meta applied it,
      // or the process died before sending) asks for a resend, as the next action tells them to.
      const resend = doc?.state === 'awaiting_code' && !code;
      if (resend) resends++;
      const args = resend
        ? ['resend-code', id]
        : doc
        ? ['resume', id, ...(code ? ['--code', code] : [])]
        : ['start', '--id', id, '--phone', phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--confirm', 'two_step_disabled',
           '--retry-base-ms', '10', '--retry-cap-ms', '100', '--max-attempts', '60', '--resend-cooldown-ms', '0'];
      const [lo, hi] = opts.killWindowMs;
      const roll = rand();
      const kill: Kill =
        roll >= opts.killChance
          ? { kind: 'none' }
          : roll < opts.killChance * 0.25 && doc && !pgUrl // PostgreSQL: a kill mid-transaction is just a kill (the server rolls it back)
            ? { kind: 'on-write', dir: join(dir, 'migrations'), id }
            : { kind: 'after', ms: Math.floor(lo + rand() * (hi - lo)) };
      const r = await invoke([...(opts.globalArgs ?? []), ...args], env, kill);
      v.invocations++;
      if (r.killed) {
        v.kills++;
        // What a dead process left: a temp file means it died in the middle of a write.
        for (const name of await readdir(join(dir, 'migrations')).catch(() => [] as string[])) {
          if (name.startsWith(`${id}.json.`) && !tempsSeen.has(name)) {
            tempsSeen.add(name);
            v.killsMidWrite++;
            await rm(join(dir, 'migrations', name), { force: true });
          }
        }
        // Its last request may still be on its way to "Meta": let it land, as it would.
        await sandbox.idle();
      } else if (r.code !== 0 && r.code !== 5) {
        v.failures.push(`${id}: ${args[0]} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
      }
    }
    let doc;
    try {
      doc = await store.load(id);
    } catch (e) {
      v.corruptDocuments++;
      v.failures.push(`${id}: ${(e as Error).message}`);
      return;
    }
    if (doc.state === 'completed') v.completed++;
    else v.failures.push(`${id}: still ${doc.state} after 60 invocations`);
    if ((sandbox.created.get(digits) ?? 0) !== 1) {
      v.duplicateCreates += Math.max(0, (sandbox.created.get(digits) ?? 0) - 1);
      if ((sandbox.created.get(digits) ?? 0) === 0) v.failures.push(`${id}: never created`);
    }
    v.duplicateRegisters += Math.max(0, (sandbox.registered.get(digits) ?? 0) - 1);
    // At most once with resend: every request_code Meta applied was the first or one asked for.
    const applied = sandbox.outbox.filter((o) => o.phone === phone).length;
    v.resendsAsked += resends;
    if (applied > 1 + resends) {
      v.extraCodeRequests += applied - 1 - resends;
      v.failures.push(`${id}: request_code applied ${applied} times with ${resends} resend(s) asked`);
    }
    for (let h = 1; h < doc.history.length; h++) {
      if (doc.history[h]!.from !== doc.history[h - 1]!.to || doc.history[h]!.n !== h + 1) {
        v.historyGaps++;
        break;
      }
    }
  };

  let next = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < opts.runs) await one(next++);
    }),
  );
  await opts.inspect?.({ dir, store, env, sandbox, failures: v.failures });
  v.faultsInjected = Object.values(sandbox.counters).reduce((a, c) => a + c.faults, 0);
  v.requests = Object.values(sandbox.counters).reduce((a, c) => a + c.calls, 0);
  await sandbox.stop();
  await store.close();
  await rm(dir, { recursive: true, force: true });
  v.seconds = Math.round((performance.now() - started) / 100) / 10;
  return v;
}

/**
 * The verdict every store must earn: every run completed; no create, register or request_code
 * beyond what was asked; nothing corrupt; no history gap; and the harness really did kill and
 * fault (a verdict with no kills proves nothing). Prints the table first, so a failure shows it.
 */
export function expectSound(v: Verdict, title: string): void {
  console.log(`\n${title}\n${verdictTable(v)}\n${v.failures.slice(0, 20).join('\n')}`);
  expect(v.failures).toEqual([]);
  expect(v.completed).toBe(v.runs);
  expect(v.duplicateCreates).toBe(0);
  expect(v.duplicateRegisters).toBe(0);
  expect(v.extraCodeRequests).toBe(0);
  expect(v.corruptDocuments).toBe(0);
  expect(v.historyGaps).toBe(0);
  expect(v.kills).toBeGreaterThan(v.runs / 2);
  expect(v.faultsInjected).toBeGreaterThan(0);
}

export function verdictTable(v: Verdict): string {
  const rows: [string, string | number][] = [
    ['seed', v.seed],
    ['runs', v.runs],
    ['CLI invocations', v.invocations],
    ['SIGKILLs', v.kills],
    ['… of which mid-write', v.killsMidWrite],
    ['Graph requests', v.requests],
    ['faults injected', `${v.faultsInjected} (${((100 * v.faultsInjected) / Math.max(1, v.requests)).toFixed(1)} %)`],
    ['completed', `${v.completed} / ${v.runs}`],
    ['duplicate creates', v.duplicateCreates],
    ['duplicate registers', v.duplicateRegisters],
    ['request_code beyond 1 + resends asked', v.extraCodeRequests],
    ['resends asked (no code came)', v.resendsAsked],
    ['corrupt documents', v.corruptDocuments],
    ['history gaps', v.historyGaps],
    ['seconds', v.seconds],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  return ['| check | result |', '|---|---|', ...rows.map(([k, val]) => `| ${k.padEnd(w)} | ${val} |`)].join('\n');
}
