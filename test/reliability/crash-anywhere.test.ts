/**
 * The promise of the tool, checked the Jepsen way: kill it anywhere, inject faults, read the
 * history, print the verdict. WABA_HARNESS_RUNS sets the number of seeded runs (100 in CI;
 * thousands locally), WABA_HARNESS_SEED the seed.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_HARNESS, runHarness, verdictTable } from './harness.js';

const runs = Number(process.env.WABA_HARNESS_RUNS ?? DEFAULT_HARNESS.runs);
const seed = Number(process.env.WABA_HARNESS_SEED ?? DEFAULT_HARNESS.seed);

describe('crash-anywhere with 20 % faults', () => {
  it(`${runs} seeded runs: all complete, nothing duplicated, nothing corrupt, no history gap`, { timeout: 60 * 60_000 }, async () => {
    const v = await runHarness({ ...DEFAULT_HARNESS, runs, seed });
    console.log(`\nCrash-anywhere verdict\n${verdictTable(v)}\n${v.failures.slice(0, 20).join('\n')}`);
    expect(v.failures).toEqual([]);
    expect(v.completed).toBe(runs);
    expect(v.duplicateCreates).toBe(0);
    expect(v.duplicateRegisters).toBe(0);
    expect(v.extraCodeRequests).toBe(0);
    expect(v.corruptDocuments).toBe(0);
    expect(v.historyGaps).toBe(0);
    expect(v.kills).toBeGreaterThan(runs / 2);
    expect(v.faultsInjected).toBeGreaterThan(0);
  });
});
