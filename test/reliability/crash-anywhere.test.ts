/**
 * The promise of the tool, checked the Jepsen way: kill it anywhere, inject faults, read the
 * history, print the verdict. WABA_HARNESS_RUNS sets the number of seeded runs (100 in CI;
 * thousands locally), WABA_HARNESS_SEED the seed.
 */
import { describe, it } from 'vitest';
import { DEFAULT_HARNESS, expectSound, runHarness } from './harness.js';

const runs = Number(process.env.WABA_HARNESS_RUNS ?? DEFAULT_HARNESS.runs);
const seed = Number(process.env.WABA_HARNESS_SEED ?? DEFAULT_HARNESS.seed);

describe('crash-anywhere with 20 % faults', () => {
  it(`${runs} seeded runs: all complete, nothing duplicated, nothing corrupt, no history gap`, { timeout: 60 * 60_000 }, async () => {
    expectSound(await runHarness({ ...DEFAULT_HARNESS, runs, seed }), 'Crash-anywhere verdict');
  });
});
