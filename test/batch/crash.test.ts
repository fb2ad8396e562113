/**
 * Crash anywhere, fleet edition: the real CLI's `batch start`, `batch codes` and `work` against the
 * sandbox (with a share of faulty answers), SIGKILLed at seeded random moments and run again until
 * every row is done. Asserted: every row completes, exactly one create and one register per
 * number, every document and the batch record parse, no gap in any history.
 *
 * `WABA_FLEET_RUNS` / `WABA_FLEET_SEED` for a longer run.
 */
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/store.js';
import { FIXTURES, GraphSandbox, prng } from '../../src/sandbox/index.js';
import type { MigrationDocument } from '../../src/store/document.js';
import { CLI } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';

const RUNS = Number(process.env.WABA_FLEET_RUNS ?? 20);
const SEED = Number(process.env.WABA_FLEET_SEED ?? 20261123);
const PARALLEL = 3;
const ROWS = 4;

interface Inv {
  code: number | null;
  killed: boolean;
  stderr: string;
}

function invoke(args: string[], env: Record<string, string>, killAfterMs: number | null): Promise<Inv> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d) => (stderr += d));
    const t = killAfterMs === null ? null : setTimeout(() => (killed = child.kill('SIGKILL')), killAfterMs);
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      if (t) clearTimeout(t);
      clearTimeout(guard);
      resolve({ code, killed, stderr });
    });
  });
}

interface RunResult {
  run: number;
  invocations: number;
  kills: number;
  completed: number;
  creates: number[];
  registers: number[];
  gaps: number;
  problems: string[];
}

async function oneRun(run: number): Promise<RunResult> {
  const rand = prng(SEED + run);
  const sandbox = new GraphSandbox({ seed: SEED + run, latencyMs: 3, faults: { serverError: 0.05, rateLimit: 0.03, lostResponse: 0.05 } });
  const url = await sandbox.start();
  const dir = await tempDir('waba-fleet-crash-');
  const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_GRAPH_URL: url, WABA_MIGRATE_STATE_DIR: dir, WABA_MAX_WAIT_MS: '500', WABA_GRAPH_TIMEOUT_MS: '2000' };
  const phones = Array.from({ length: ROWS }, (_, i) => `+1631555${String(4000 + run * 10 + i)}`);
  const file = join(dir, '..', `fleet-${run}-${process.pid}.csv`);
  await writeFile(file, `phone,source_waba,dest_waba,confirm\n${phones.map((p) => `${p},${FIXTURES.sourceWabaId},${FIXTURES.destWabaId},two_step_disabled`).join('\n')}\n`);
  const res: RunResult = { run, invocations: 0, kills: 0, completed: 0, creates: [], registers: [], gaps: 0, problems: [] };
  const kill = () => (rand() < 0.55 ? Math.floor(30 + rand() * 500) : null);
  const go = async (args: string[], extra: Record<string, string> = {}, mayKill = true) => {
    const inv = await invoke(args, { ...env, ...extra }, mayKill ? kill() : null);
    res.invocations++;
    if (inv.killed) res.kills++;
    return inv;
  };
  const store = new FileStore(dir);
  const docs = async () => (await store.scan((m) => m)).map((m) => {
    if (!m.doc) res.problems.push(`unreadable ${m.id}: ${m.error?.message}`);
    return m.doc;
  }).filter((d): d is MigrationDocument => Boolean(d));
  try {
    // Phase 1: `batch start`, killed and run again with the same id until it finishes once.
    for (let i = 0; i < 20; i++) {
      const inv = await go(['batch', 'start', file, '--id', 'fleet', '--concurrency', '2', '--retry-base-ms', '10', '--retry-cap-ms', '50', '--max-attempts', '60', '--resend-cooldown-ms', '0']);
      if (!inv.killed && inv.code === 0) break;
      if (!inv.killed && inv.code !== 0) res.problems.push(`batch start exited ${inv.code}: ${inv.stderr.slice(-300)}`);
    }
    // Phase 2: codes for what waits for one, and `work` for the rest, each killed at random.
    for (let i = 0; i < 40; i++) {
      const all = await docs();
      if (all.length === ROWS && all.every((d) => d.state === 'completed')) break;
      const awaiting = all.filter((d) => d.state === 'awaiting_code');
      const codes: string[] = [];
      for (const d of awaiting) {
        const pid = (d.snapshot.context as { phoneNumberId?: string }).phoneNumberId;
        const code = pid ? sandbox.lastCodeFor(pid) : undefined;
        // No code ever arrived (the request died with a killed process): ask for a new one.
        if (!code) await go(['resend-code', d.id], {}, false);
        else codes.push(`${d.input.phone},${code.code}`);
      }
      if (codes.length) {
        const codesFile = join(dir, '..', `codes-${run}-${process.pid}.csv`);
        await writeFile(codesFile, `phone,code\n${codes.join('\n')}\n`);
        await go(['batch', 'codes', 'fleet', codesFile]);
      }
      if (all.length < ROWS) await go(['batch', 'resume', 'fleet']);
      await go(['work', '--once', '--concurrency', '2'], { WABA_REGISTER_PIN: '246810' });
    }
    await sandbox.idle();
    const all = await docs();
    res.completed = all.filter((d) => d.state === 'completed').length;
    for (const d of all) {
      d.history.forEach((h, k) => {
        if (k > 0 && h.from !== d.history[k - 1]!.to) res.gaps++;
      });
    }
    await store.loadBatch('fleet'); // the batch record parses
    for (const p of phones) {
      res.creates.push(sandbox.created.get(p.slice(1)) ?? 0);
      res.registers.push(sandbox.registered.get(p.slice(1)) ?? 0);
    }
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(file, { force: true });
  }
  return res;
}

describe('fleet crash-anywhere', () => {
  it(`${RUNS} seeded runs of batch start / batch codes / work, SIGKILLed at random: every row completes once`, async () => {
    const t0 = Date.now();
    const results: RunResult[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < RUNS) results.push(await oneRun(next++));
      }),
    );
    const total = {
      runs: results.length,
      invocations: results.reduce((a, r) => a + r.invocations, 0),
      kills: results.reduce((a, r) => a + r.kills, 0),
      completed: results.reduce((a, r) => a + r.completed, 0),
      duplicateCreates: results.reduce((a, r) => a + r.creates.filter((c) => c > 1).length, 0),
      duplicateRegisters: results.reduce((a, r) => a + r.registers.filter((c) => c > 1).length, 0),
      gaps: results.reduce((a, r) => a + r.gaps, 0),
      seconds: Math.round((Date.now() - t0) / 1000),
    };
    process.stderr.write(`fleet crash-anywhere: ${JSON.stringify(total)}\n`);
    for (const r of results) expect(r.problems, `run ${r.run}`).toEqual([]);
    expect(total.completed).toBe(RUNS * ROWS);
    for (const r of results) {
      expect(r.creates, `run ${r.run}: one create per number`).toEqual(Array(ROWS).fill(1));
      expect(r.registers, `run ${r.run}: one register per number`).toEqual(Array(ROWS).fill(1));
    }
    expect(total.gaps).toBe(0);
    expect(total.kills).toBeGreaterThan(RUNS / 2);
  }, 180_000);
});
