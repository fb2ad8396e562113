/**
 * The crash-anywhere harness against PostgreSQL: the real CLI with --store postgres://…, SIGKILLed
 * at random, 20 % faults. WABA_HARNESS_PG_RUNS sets the runs (30 by default, to keep the
 * PostgreSQL suites short).
 */
import { afterAll, describe, it } from 'vitest';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../helpers/pg.js';
import { DEFAULT_HARNESS, expectSound, runHarness } from './harness.js';

const runs = Number(process.env.WABA_HARNESS_PG_RUNS ?? 30);
const seed = Number(process.env.WABA_HARNESS_SEED ?? DEFAULT_HARNESS.seed);
let db: TestDatabase | null = null;
afterAll(async () => {
  await db?.drop();
});

describe.skipIf(!pgAvailable)('crash-anywhere with 20 % faults, on PostgreSQL', () => {
  it(`${runs} seeded runs: all complete, nothing duplicated, nothing corrupt, no history gap`, { timeout: 30 * 60_000 }, async () => {
    db = await createTestDatabase('harness');
    expectSound(await runHarness({ ...DEFAULT_HARNESS, runs, seed, storeUrl: db.url }), 'Crash-anywhere verdict (PostgreSQL)');
  });
});
