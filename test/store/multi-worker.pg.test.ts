/**
 * Several `waba-migrate work` processes (the real CLI) on one PostgreSQL database, 100 migrations,
 * 20 % sandbox faults, workers SIGKILLed and SIGSTOPped at random and restarted. The test process
 * plays the people: it submits each code once it arrives.
 *
 * "No write from a process that lost ownership" is checked by the database itself: a trigger
 * installed for this test records every history row inserted by a session that did not hold the
 * migration's advisory lock at that instant.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationEngine } from '../../src/runner/engine.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { FIXTURES, GraphSandbox, prng } from '../../src/sandbox/index.js';
import type { MigrationContext } from '../../machines/migration.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../helpers/pg.js';

const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');
const N = Number(process.env.WABA_MULTI_WORKER_N ?? 100);
let db: TestDatabase | null = null;
afterAll(async () => {
  await db?.drop();
});

/** Records history rows written by a session not holding the migration's lock (our key: sha256("migration:<id>")[0..8]). */
const FENCE_AUDIT = `
CREATE TABLE waba_migrate.unfenced_writes (migration_id text, n int, pid int, at timestamptz DEFAULT now());
CREATE FUNCTION waba_migrate.audit_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE k bigint := ('x' || substr(encode(sha256(convert_to('migration:' || NEW.migration_id, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                 AND classid = ((k >> 32) & 4294967295)::oid AND objid = (k & 4294967295)::oid AND objsubid = 1) THEN
    INSERT INTO waba_migrate.unfenced_writes (migration_id, n, pid) VALUES (NEW.migration_id, NEW.n, pg_backend_pid());
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_fence BEFORE INSERT ON waba_migrate.history FOR EACH ROW EXECUTE FUNCTION waba_migrate.audit_fence();`;

describe.skipIf(!pgAvailable)('workers on PostgreSQL', () => {
  it(`3 \`work\` processes, ${N} migrations, 20 % faults, SIGKILL/SIGSTOP at random: all complete, one create, ≤ 1 register, no gap, no unfenced write`, { timeout: 240_000 }, async () => {
    db = await createTestDatabase('workers');
    const sandbox = new GraphSandbox({ seed: 99, latencyMs: 5, timeoutDelayMs: 900, faults: { serverError: 0.05, rateLimit: 0.04, reset: 0.03, timeout: 0.02, lostResponse: 0.06 } });
    const graphUrl = await sandbox.start();
    const store = new PostgresStore(db.url, { fsync: 'never' });
    const policy = { retryBaseMs: 10, retryCapMs: 100, maxAttemptsPerStep: 60, resendCooldownMs: 0 };
    const person = new MigrationEngine({ store, token: FIXTURES.token, graphUrl, operator: 'person', timeoutMs: 2_000, maxWaitMs: 500 });
    const phone = (i: number) => `+1631556${String(i).padStart(4, '0')}`;

    // Create the migrations: each stops right after its first write (due now, for the workers).
    for (let i = 0; i < N; i++) {
      const ac = new AbortController();
      const e = new MigrationEngine({ store, token: FIXTURES.token, graphUrl, operator: 'person', signal: ac.signal, onTransition: () => ac.abort() });
      await e.start({ id: `w-${i}`, phone: phone(i), sourceWabaId: FIXTURES.sourceWabaId, destWabaId: FIXTURES.destWabaId, confirm: ['two_step_disabled'], policy }).catch((x: Error) => {
        if (x.name !== 'RunInterruptedError') throw x;
      });
    }
    await db.sql(FENCE_AUDIT);

    const env = { PATH: process.env.PATH ?? '', NO_COLOR: '1', WABA_MIGRATE_STORE: db.url, WABA_GRAPH_URL: graphUrl, WABA_ACCESS_TOKEN: FIXTURES.token, WABA_REGISTER_PIN: '135790', WABA_GRAPH_TIMEOUT_MS: '600', WABA_MAX_WAIT_MS: '5000' };
    const workers: (ChildProcess | null)[] = [null, null, null];
    const stopped = new Set<number>();
    let kills = 0;
    let stops = 0;
    const spawnWorker = (slot: number) => {
      const child = spawn(process.execPath, [CLI, 'work', '--concurrency', '8', '--quiet'], { env, stdio: ['ignore', 'ignore', 'ignore'] });
      workers[slot] = child;
    };
    for (let s = 0; s < 3; s++) spawnWorker(s);
    const rand = prng(4242);

    // Chaos: every ~700 ms, SIGKILL a worker (and restart it) or SIGSTOP one for 2–3.5 s. A stopped
    // worker keeps its leases (the store's default: see src/store/postgres/store.ts for why taking
    // them from a paused holder double-sent register here); the others skip its migrations.
    let done = false;
    const chaos = (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, 500 + rand() * 400));
        if (done) break;
        const slot = Math.floor(rand() * 3);
        const w = workers[slot]!;
        if (stopped.has(slot)) continue;
        if (rand() < 0.5) {
          kills++;
          w.kill('SIGKILL');
          await new Promise((r) => w.once('exit', r));
          await sandbox.idle();
          spawnWorker(slot);
        } else {
          stops++;
          stopped.add(slot);
          w.kill('SIGSTOP');
          const ms = 2000 + rand() * 1500;
          setTimeout(() => {
            w.kill('SIGCONT');
            stopped.delete(slot);
          }, ms);
        }
      }
    })();

    // The people: submit each code once it arrives (a code that never came is resent).
    // Generous: on a loaded 2-core machine (the whole suite at once) this takes minutes; alone, 10–30 s.
    const deadline = Date.now() + 180_000;
    const submitted = new Map<string, { code: string; at: number }>();
    const t0 = Date.now();
    const noCodeSince = new Map<string, number>();
    let completed = 0;
    while (Date.now() < deadline) {
      const rows = await db.sql<{ id: string; state: string }>(`SELECT id, state FROM waba_migrate.migrations`);
      completed = rows.filter((r) => r.state === 'completed').length;
      if (process.env.WABA_MULTI_WORKER_DEBUG) console.log(((Date.now() - t0) / 1000).toFixed(1), JSON.stringify(Object.entries(rows.reduce<Record<string, number>>((a, r) => ((a[r.state] = (a[r.state] ?? 0) + 1), a), {}))));
      if (completed === N) break;
      for (const r of rows.filter((x) => x.state === 'awaiting_code')) {
        const doc = await store.load(r.id);
        const pnid = (doc.snapshot.context as MigrationContext).phoneNumberId;
        const code = pnid ? sandbox.lastCodeFor(pnid)?.code : undefined;
        try {
          const last = submitted.get(r.id);
          if (code && last?.code !== code) {
            submitted.set(r.id, { code, at: Date.now() });
            await person.resume(r.id, { code });
          } else if (code && Date.now() - last!.at > 1500) {
            // Submitted, yet still waiting (the answer was lost, or the code was used up): ask for a new one.
            submitted.delete(r.id);
            await person.resendCode(r.id);
          } else if (!code) {
            const since = noCodeSince.get(r.id) ?? Date.now();
            noCodeSince.set(r.id, since);
            if (Date.now() - since > 1000) {
              noCodeSince.delete(r.id);
              await person.resendCode(r.id);
            }
          }
        } catch (e) {
          if ((e as Error).name !== 'MigrationLockedError') submitted.delete(r.id);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    done = true;
    await chaos;
    for (const [slot, w] of workers.entries()) {
      if (stopped.has(slot)) w!.kill('SIGCONT');
      w!.kill('SIGKILL');
    }
    await sandbox.idle();

    const states = await db.sql<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM waba_migrate.migrations GROUP BY state ORDER BY state`);
    const unfenced = await db.sql(`SELECT * FROM waba_migrate.unfenced_writes`);
    let gaps = 0;
    let dupCreates = 0;
    let dupRegisters = 0;
    for (let i = 0; i < N; i++) {
      const doc = await store.load(`w-${i}`);
      doc.history.forEach((h, k) => {
        if (h.n !== k + 1 || (k > 0 && h.from !== doc.history[k - 1]!.to)) gaps++;
      });
      const digits = phone(i).slice(1);
      if ((sandbox.created.get(digits) ?? 0) > 1) dupCreates++;
      if ((sandbox.registered.get(digits) ?? 0) > 1) dupRegisters++;
    }
    const historyRows = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM waba_migrate.history`);
    console.log(
      `\nWorkers on PostgreSQL: ${N} migrations in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${kills} SIGKILLs, ${stops} SIGSTOPs, states ${JSON.stringify(states)}, ${historyRows[0]!.n} history rows, ` +
        `${unfenced.length} unfenced writes, ${dupCreates} numbers created twice, ${dupRegisters} registered twice, ${gaps} history gaps, faults ${Object.values(sandbox.counters).reduce((a, c) => a + c.faults, 0)} / ${Object.values(sandbox.counters).reduce((a, c) => a + c.calls, 0)} requests`,
    );
    // Control: the audit does see a write made without the lock.
    await db.sql(`INSERT INTO waba_migrate.history (migration_id, n, entry) VALUES ('w-0', 9999, '{}')`);
    expect(await db.sql(`SELECT migration_id, n FROM waba_migrate.unfenced_writes`)).toEqual([{ migration_id: 'w-0', n: 9999 }]);
    await store.close();
    await sandbox.stop();
    expect(states).toEqual([{ state: 'completed', n: N }]);
    expect(dupCreates).toBe(0);
    expect(dupRegisters).toBe(0);
    expect(gaps).toBe(0);
    expect(unfenced).toEqual([]);
    expect(kills + stops).toBeGreaterThan(5);
  });
});
