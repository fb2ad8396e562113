/**
 * Crash-anywhere with notifications on: the real CLI, SIGKILLed at random moments (also while a
 * document, with its outbox, is being written, and while a notification is in flight), 20 % Graph
 * faults, and a receiver that fails for the first seconds (HTTP 500, connection resets, answers
 * slower than the sender's timeout). Afterwards `notify deliver --follow` drains what is left.
 * Asserted: every event arrives; per migration, first arrivals follow the outbox order; a
 * repeat always carries the same id; every event matches a transition in the history; every
 * signature verifies. WABA_NOTIFY_HARNESS_RUNS sets the number of runs (default 20).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { Receiver, TEST_SECRET } from '../helpers/receiver.js';
import { DEFAULT_HARNESS, runHarness, verdictTable } from '../reliability/harness.js';

const runs = Number(process.env.WABA_NOTIFY_HARNESS_RUNS ?? 20);
const seed = Number(process.env.WABA_HARNESS_SEED ?? 20261123);

describe('crash-anywhere with a notify URL set', () => {
  it(`${runs} seeded runs: every event delivered, in order per migration, repeats only with the same id`, { timeout: 30 * 60_000 }, async () => {
    const rx = new Receiver();
    const url = await rx.start();
    const badUntil = Date.now() + 6000;
    const cycle = ['500', 'reset', 'hang', 'ok'] as const;
    rx.answer = (n) => (Date.now() < badUntil ? cycle[n % cycle.length]! : 'ok');
    rx.hangMs = 800;
    rx.okDelayMs = 60; // accepted, then answered a little later: a kill in between means a repeat
    const stats = { events: 0, repeats: 0, migrations: 0 };
    try {
      const v = await runHarness({
        ...DEFAULT_HARNESS,
        runs,
        seed,
        sourceNumbers: true,
        env: { WABA_NOTIFY_URL: url, WABA_NOTIFY_SECRET: TEST_SECRET },
        globalArgs: ['--notify-backoff-ms', '20', '--notify-max-backoff-ms', '200', '--notify-timeout-ms', '300'],
        inspect: async ({ store, env, failures }) => {
          // What is left (a killed sender, a receiver that was down) is delivered now.
          // (Spawned asynchronously: the receiver lives in this process and must keep answering.)
          const drained = await runCli(['--notify-backoff-ms', '20', '--notify-max-backoff-ms', '200', '--notify-timeout-ms', '300', 'notify', 'deliver', '--follow'], env, { timeoutMs: 120_000 });
          if (drained.code !== 0) failures.push(`notify deliver exited ${drained.code}: ${drained.stderr}`);
          const byKey = new Map<string, Set<string>>();
          for (const d of rx.accepted) {
            const data = d.payload.data as { migrationId: string; historyEntry: number };
            const key = `${data.migrationId}#${data.historyEntry}#${d.payload.type}`;
            byKey.set(key, (byKey.get(key) ?? new Set()).add(d.id));
          }
          for (const [key, ids] of byKey) if (ids.size > 1) failures.push(`${key}: ${ids.size} different ids for one event`);
          for (const doc of await store.scan((m) => m.doc!)) {
            stats.migrations++;
            const outbox = doc.outbox ?? [];
            stats.events += outbox.length;
            for (const e of outbox) if (e.deliveredAt === null || e.dead) failures.push(`${doc.id}: ${e.type} #${e.seq} not delivered (${e.lastError})`);
            const arrivals = rx.accepted.filter((d) => (d.payload.data as { migrationId: string }).migrationId === doc.id);
            stats.repeats += arrivals.length - new Set(arrivals.map((a) => a.id)).size;
            const firstOrder = [...new Set(arrivals.map((a) => a.id))];
            const expected = [...outbox].sort((a, b) => a.seq - b.seq).map((e) => e.id);
            if (JSON.stringify(firstOrder) !== JSON.stringify(expected)) failures.push(`${doc.id}: arrival order ${firstOrder.length} ids differs from the outbox (${expected.length})`);
            // No event for a transition that did not happen: each names a history entry that says the same.
            for (const a of arrivals) {
              const data = a.payload.data as { historyEntry: number; state: string; at: string };
              const h = doc.history[data.historyEntry - 1];
              if (!h || h.to !== data.state || h.at !== data.at) failures.push(`${doc.id}: ${a.payload.type} names history entry ${data.historyEntry}, which says otherwise`);
            }
            const types = outbox.map((e) => e.type);
            if (types[0] !== 'migration.started' || types.at(-1) !== 'migration.completed' || !types.includes('migration.awaiting_code'))
              failures.push(`${doc.id}: events ${types.join(', ')}`);
            const done = arrivals.find((a) => a.payload.type === 'migration.completed');
            const oldId = `5${doc.input.phone.slice(1).padStart(14, '0')}`;
            if (done && (done.payload.data.previousPhoneNumberId !== oldId || done.payload.data.phoneNumberId === oldId)) failures.push(`${doc.id}: completed without the old and new ids`);
          }
        },
      });
      console.log(
        `\nCrash-anywhere with notifications\n${verdictTable(v)}\n| notifications | ${stats.events} events, ${rx.requests} POSTs, ${rx.deliveries.length - rx.accepted.length} refused while down, ${stats.repeats} repeats (same id) |\n| bad signatures | ${rx.badSignatures.length} |\n${v.failures.slice(0, 20).join('\n')}`,
      );
      expect(v.failures).toEqual([]);
      expect(v.completed).toBe(runs);
      expect(v.duplicateCreates + v.duplicateRegisters + v.corruptDocuments + v.historyGaps).toBe(0);
      expect(v.kills).toBeGreaterThan(runs / 2);
      expect(stats.migrations).toBe(runs);
      expect(stats.events).toBeGreaterThanOrEqual(runs * 3);
      expect(rx.badSignatures).toEqual([]);
      expect(rx.deliveries.length).toBeGreaterThan(rx.accepted.length); // the receiver did fail for a while
    } finally {
      await rx.stop();
    }
  });
});
