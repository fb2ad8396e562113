/**
 * Meta's throttles shared by the processes of one store: Meta limits calls per app per WABA, not
 * per process, so when one worker is told 80007 (or 4, 130429) the others should pause that WABA
 * too instead of each drawing an 80007 of its own. This process's pauses are recorded in the store;
 * the others' are read back before work is taken on, at most once a second.
 */
import type { RateBudget, ThrottleEvent } from '../graph/rate-budget.js';
import type { MigrationStore } from '../store/store.js';

/** How often the store's throttles are read at most (ms). */
const REFRESH_MS = 1_000;

export interface ThrottleSharing {
  /** Learns the pauses other processes recorded (no more than once a second). */
  refresh(): Promise<void>;
  /** Stops recording this process's pauses; waits for the writes already started. */
  stop(): Promise<void>;
}

/** Before a run starts sharing (and outside one): nothing to learn, nothing to record. */
export const NOT_SHARING: ThrottleSharing = { refresh: async () => {}, stop: async () => {} };

export function shareThrottles(store: MigrationStore, budget: RateBudget): ThrottleSharing {
  const writes = new Set<Promise<void>>();
  let readAt = -Infinity;
  let reading: Promise<void> | null = null;
  const onThrottle = (t: ThrottleEvent) => {
    if (t.shared) return; // learnt from the store: already there
    // Advice to the other processes, never a reason to fail this one's run.
    const w = store.recordThrottle({ key: t.key, until: t.until, code: t.code }).catch(() => {});
    writes.add(w);
    void w.finally(() => writes.delete(w));
  };
  budget.on('throttle', onThrottle);
  return {
    refresh() {
      if (reading) return reading;
      if (performance.now() - readAt < REFRESH_MS) return Promise.resolve();
      readAt = performance.now();
      reading = store
        .throttles(Date.now())
        .then(
          (ts) => {
            for (const t of ts) budget.learnPause(t.key, t.until, t.code);
          },
          () => {}, // unreadable now: this process's own answers still teach it
        )
        .finally(() => {
          reading = null;
        });
      return reading;
    },
    async stop() {
      budget.off('throttle', onThrottle);
      await Promise.all(writes);
    },
  };
}
