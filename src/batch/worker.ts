/**
 * `work`: drives every migration that can move without a person. It asks the store what is due
 * (`listDue`), resumes each under its lock (a migration locked by another worker is skipped: that
 * is how several workers share the work, on one host or on PostgreSQL), and sleeps until the next
 * due time or until any process writes a migration (`store.watch`), never polling.
 *
 * Secrets stay out of the store: a migration held for the register PIN moves only in a worker that
 * holds the PIN; the others leave it resting for `resume` or `batch codes`.
 */
import { MigrationEngine, type EngineOptions } from '../runner/engine.js';
import type { MigrationView } from '../runner/view.js';
import type { DueMigration } from '../store/document.js';
import type { Lease, MigrationStore } from '../store/store.js';
import { deliverPending } from '../notify/deliver.js';
import { GroupCheckCache, noteBatchFinished } from './runner.js';
import { NOT_SHARING, shareThrottles, type ThrottleSharing } from './throttles.js';

export interface WorkerOptions extends EngineOptions {
  /** Migrations driven at once (default 4). */
  concurrency?: number;
  /** One pass over what is due now, then return. */
  once?: boolean;
  /** Only this batch's migrations. */
  batch?: string;
  /** The register PIN, in memory only; without it, PIN-held migrations are left resting. */
  pin?: string;
  /** Stops the worker: no new migration is picked up; runs in flight stop before their next request. */
  signal?: AbortSignal;
  onEvent?: (e: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'picked'; id: string; state: string }
  | { type: 'done'; id: string; view: MigrationView }
  | { type: 'skipped'; id: string; reason: string }
  | { type: 'error'; id: string; error: string }
  | { type: 'sleep'; until: number | null }
  | { type: 'throttle'; waba: string; until: number; message: string }
  | { type: 'notify'; delivered: number; failed: number; pending: number; disabled: boolean };

export interface WorkerReport {
  runs: number;
  completed: number;
  errors: number;
  skippedLocked: number;
}

/** Shortest pause between two scans of the store when writes keep waking us. */
const MIN_RESCAN_MS = 50;
/** Shortest pause between two notification passes woken by writes (a run delivers its own
 *  events at once; the worker's pass catches what is left: a killed run's, a retry that is due). */
const MIN_DELIVERY_GAP_MS = 2_000;

export class Worker {
  readonly engine: MigrationEngine;
  readonly store: MigrationStore;
  readonly #opts: WorkerOptions;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #groups: GroupCheckCache;
  readonly #report: WorkerReport = { runs: 0, completed: 0, errors: 0, skippedLocked: 0 };
  /** Migrations this worker left alone until the given time (locked elsewhere, throttled). */
  readonly #backoff = new Map<string, number>();

  constructor(opts: WorkerOptions) {
    this.#opts = opts;
    this.engine = new MigrationEngine(opts);
    this.store = opts.store;
    // Re-checked every 10 minutes: a worker may run for days.
    this.#groups = new GroupCheckCache(this.engine, undefined, 'work', { ttlMs: 10 * 60_000 });
  }

  #emit(e: WorkerEvent): void {
    this.#opts.onEvent?.(e);
  }

  async run(): Promise<WorkerReport> {
    const signal = this.#opts.signal;
    const concurrency = Math.max(1, this.#opts.concurrency ?? 4);
    let wake: () => void = () => {};
    let dirty = true;
    const poke = () => {
      dirty = true;
      wake();
    };
    const unwatch = this.store.watch(() => {
      this.#writtenSinceDelivery = true;
      poke();
    });
    this.#pokeLoop = poke;
    const onAbort = () => wake();
    signal?.addEventListener('abort', onAbort);
    const onThrottle = (t: { key: string; until: number; message: string }) => this.#emit({ type: 'throttle', waba: t.key, until: t.until, message: t.message });
    this.engine.rateBudget.on('throttle', onThrottle);
    this.#throttles = shareThrottles(this.store, this.engine.rateBudget);
    try {
      for (;;) {
        if (signal?.aborted) break;
        dirty = false;
        const started = Date.now();
        if (this.#opts.once) {
          // One pass: every migration due when it began, each driven once to where it rests, then
          // exit. Whenever slots are free the store claims the next due ones nobody holds (their
          // locks taken in the same step: SKIP LOCKED), so workers on several hosts share the pass
          // instead of colliding on the same rows. A run that writes moves its migration past the
          // cutoff; one that does not (an error, a lock held elsewhere) is excluded by id.
          const cutoff = Date.now();
          for (;;) {
            if (!signal?.aborted) await this.#dispatch(concurrency, cutoff);
            if (this.#inFlight.size === 0 || signal?.aborted) break;
            await Promise.race(this.#inFlight.values());
          }
          // And one pass over the notifications still pending (a killed run's, a failed POST's).
          if (this.#opts.notify && !signal?.aborted) await this.#deliveryPass();
          break;
        }
        const dispatchNext = await this.#dispatch(concurrency);
        if (signal?.aborted) break;
        const notifyNext = this.#deliverIfDue();
        const nextAt = dispatchNext === null ? notifyNext : notifyNext === null ? dispatchNext : Math.min(dispatchNext, notifyNext);
        // Sleep until the next due time, a write by any process, a free slot, or shutdown.
        const wait = nextAt === null ? null : Math.max(0, nextAt - Date.now());
        if (!dirty && wait !== 0) {
          this.#emit({ type: 'sleep', until: nextAt });
          await new Promise<void>((resolve) => {
            const t = wait === null ? null : setTimeout(resolve, Math.min(wait, 2 ** 31 - 1));
            wake = () => {
              if (t) clearTimeout(t);
              wake = () => {};
              resolve();
            };
            // Stopped while saying it sleeps (an onEvent handler may stop it): do not sleep.
            if (signal?.aborted || dirty) wake();
          });
        }
        // Our own writes wake us too: do not rescan more often than this.
        const since = Date.now() - started;
        if (since < MIN_RESCAN_MS && !signal?.aborted) await new Promise((r) => setTimeout(r, MIN_RESCAN_MS - since));
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      unwatch();
      this.engine.rateBudget.off('throttle', onThrottle);
      // Shutdown: runs in flight stop before their next request (the engine's signal), write
      // their state and release their locks; wait for that.
      await Promise.all(this.#inFlight.values());
      // A pause they learnt meanwhile is still recorded for the other processes.
      await this.#throttles.stop();
      await Promise.all(this.#batchChecks.values());
      await this.#delivering;
    }
    return { ...this.#report };
  }

  /** Starts what is due and free (up to the concurrency); returns when the next item is due. */
  /** Runs that left their migration due as it was (nothing written: an error, its number locked
   *  elsewhere, an interruption): not claimed again in this `--once` pass. */
  readonly #stuck = new Set<string>();
  #throttles: ThrottleSharing = NOT_SHARING;

  /**
   * Claims due migrations for the free slots (store.claimDue: their locks taken with the listing)
   * and starts a run on each. Returns when this worker should look again: the earliest future due
   * time, a backoff's end, or null (a run's end or any write wakes the loop).
   */
  async #dispatch(concurrency: number, cutoff?: number): Promise<number | null> {
    // Pauses other processes learnt from Meta apply here too, before any run is taken on.
    await this.#throttles.refresh();
    const now = Date.now();
    let nextAt: number | null = null;
    const later = (t: number) => {
      nextAt = nextAt === null ? t : Math.min(nextAt, t);
    };
    // Running here already (its lease may be released a moment before its run settles), or left
    // as it was earlier in this --once pass: not claimed again.
    const exclude = new Set([...this.#stuck, ...this.#inFlight.keys()]);
    for (const [id, until] of this.#backoff) {
      if (until > now) {
        exclude.add(id);
        later(until);
      } else this.#backoff.delete(id);
    }
    const free = concurrency - this.#inFlight.size;
    if (free <= 0) return nextAt;
    const { claimed, nextAt: storeNext } = await this.store.claimDue(cutoff ?? now, free, {
      exclude,
      ...(this.#opts.batch !== undefined ? { batch: this.#opts.batch } : {}),
      withPin: Boolean(this.#opts.pin),
      // A migration whose lock cannot even be tried (a planted symlink, EACCES): reported, and
      // left alone for a minute, as a failing run is; the others are still claimed.
      onError: (id, e) => {
        this.#report.errors++;
        this.#backoff.set(id, Date.now() + 60_000);
        if (cutoff !== undefined) this.#stuck.add(id);
        this.#emit({ type: 'error', id, error: e.message });
      },
    });
    for (const { due: d, lease } of claimed) {
      if (this.#opts.signal?.aborted) {
        await lease.release().catch(() => {});
        continue;
      }
      const p: Promise<void> = this.#drive(d, lease).finally(() => {
        if (this.#inFlight.get(d.id) === p) this.#inFlight.delete(d.id);
        this.#pokeLoop();
      });
      this.#inFlight.set(d.id, p);
    }
    // Slots left free: nothing more is due now; sleep until the next one is.
    if (cutoff === undefined && storeNext !== null) later(storeNext);
    return nextAt;
  }

  #pokeLoop: () => void = () => {};

  // ---- notifications (issue 13): `work` delivers what is pending, so nothing waits for the next
  // migration to move. deliverPending takes each outbox's delivery lock: two workers never send
  // one event at once.
  #delivering: Promise<void> | null = null;
  #notifyNext: number | null = null;
  #lastDelivery = 0;
  /** A write (by any process) since the last pass: it may have queued events. */
  #writtenSinceDelivery = false;

  /**
   * Starts a delivery pass in the background when one is due: the first, a pending event's due
   * time, or writes since the last pass (at most one pass per MIN_DELIVERY_GAP_MS). Returns when
   * the next one is due; null when nothing is pending and nothing was written (no polling).
   */
  #deliverIfDue(): number | null {
    if (!this.#opts.notify) return null;
    if (this.#delivering) return this.#notifyNext;
    const now = Date.now();
    const gapOver = this.#lastDelivery + MIN_DELIVERY_GAP_MS;
    const due = this.#lastDelivery === 0 || (this.#notifyNext !== null && this.#notifyNext <= now) || (this.#writtenSinceDelivery && gapOver <= now);
    if (!due) return this.#writtenSinceDelivery ? Math.min(gapOver, this.#notifyNext ?? gapOver) : this.#notifyNext;
    this.#delivering = this.#deliveryPass().finally(() => {
      this.#delivering = null;
      this.#pokeLoop();
    });
    return this.#notifyNext;
  }

  async #deliveryPass(): Promise<void> {
    this.#lastDelivery = Date.now();
    this.#writtenSinceDelivery = false;
    try {
      const sum = await deliverPending(this.store, { ...this.#opts.notify!, ...(this.#opts.signal ? { signal: this.#opts.signal } : {}) });
      // A disabled endpoint (410) waits for `notify enable`, not for a time.
      this.#notifyNext = sum.disabledEndpoint ? null : sum.nextAt;
      if (sum.attempted) this.#emit({ type: 'notify', delivered: sum.delivered, failed: sum.failed, pending: sum.pending, disabled: sum.disabledEndpoint !== null });
    } catch (e) {
      this.#notifyNext = Date.now() + MIN_DELIVERY_GAP_MS;
      this.#emit({ type: 'error', id: 'notifications', error: (e as Error).message });
    }
  }

  /** Batches to look at once the runs in flight settle (one look per batch per burst). */
  readonly #batchChecks = new Map<string, Promise<void>>();

  #checkBatch(batch: string): void {
    if (this.#batchChecks.has(batch)) return;
    const p = new Promise<void>((r) => setTimeout(r, 200))
      .then(() => noteBatchFinished(this.store, batch))
      .then(
        () => undefined,
        (e: unknown) => this.#emit({ type: 'error', id: `batch ${batch}`, error: (e as Error).message }),
      )
      .finally(() => this.#batchChecks.delete(batch));
    this.#batchChecks.set(batch, p);
  }

  /** Batch records read for their cancel mark: the reason (null: not cancelled) and when read. A
   *  cancel is never undone; "not cancelled" is read again after a second (a record of 10,000 rows
   *  is not parsed once per run). */
  readonly #batchMarks = new Map<string, { reason: string | null; at: number }>();

  /** The cancel reason of `batch` when it is cancelled, else null. */
  async #batchCancelled(batch: string): Promise<string | null> {
    const known = this.#batchMarks.get(batch);
    if (known && (known.reason !== null || performance.now() - known.at < 1_000)) return known.reason;
    let reason: string | null = null;
    try {
      reason = (await this.store.loadBatch(batch)).cancelled?.reason ?? null;
    } catch (e) {
      if ((e as Error).name !== 'BatchNotFoundError') throw e; // no record (e.g. copied alone): nothing cancelled it
    }
    this.#batchMarks.set(batch, { reason, at: performance.now() });
    return reason;
  }

  /** Runs one claimed migration; the run (engine.resume) releases its lease. */
  async #drive(d: DueMigration, lease: Lease): Promise<void> {
    let handed = false;
    try {
      this.#emit({ type: 'picked', id: d.id, state: d.state });
      this.#report.runs++;
      // A migration of a cancelled batch (busy elsewhere when `batch cancel` ran) is not driven
      // on: it is cancelled, as the batch record says every unfinished one is.
      const cancelled = d.batch ? await this.#batchCancelled(d.batch) : null;
      if (cancelled !== null) {
        handed = true;
        await lease.release();
        const view = await this.engine.cancel(d.id, `batch ${d.batch} cancelled: ${cancelled}`);
        this.#emit({ type: 'done', id: d.id, view });
        this.#checkBatch(d.batch!);
        return;
      }
      // Shared prerequisite checks for a migration that will run them (once per group per worker run).
      // The On-Premises path has none (its checks are per number and per client), as in `batch start`.
      let groupChecks;
      if (d.state === 'checking' || d.state === 'waiting_retry') {
        const doc = await this.store.load(d.id);
        const retryStep = (doc.snapshot.context as { retry?: { step?: string } | null }).retry?.step;
        if (doc.input.from !== 'onprem' && (doc.state === 'checking' || retryStep === 'checking')) groupChecks = (await this.#groups.get(doc.input)) ?? undefined;
      }
      handed = true;
      const view = await this.engine.resume(d.id, { lease, ...(this.#opts.pin ? { pin: this.#opts.pin } : {}), ...(groupChecks ? { groupChecks } : {}) });
      if (this.#opts.once && Date.parse(view.updatedAt) <= d.dueAt) this.#stuck.add(d.id); // not written: still due
      if (view.state === 'completed') this.#report.completed++;
      this.#emit({ type: 'done', id: d.id, view });
      // The last row of a batch to finish queues the batch's `batch.completed` notification.
      if (d.batch && ['completed', 'failed', 'blocked', 'cancelled'].includes(view.state)) this.#checkBatch(d.batch);
    } catch (e) {
      if (!handed) await lease.release().catch(() => {});
      if (this.#opts.once) this.#stuck.add(d.id); // a long-running worker retries it after its backoff
      const name = (e as Error).name;
      if (name === 'MigrationLockedError') {
        // Another worker (or a person) has it: look again a little later.
        this.#report.skippedLocked++;
        this.#backoff.set(d.id, Date.now() + 1_000);
        this.#emit({ type: 'skipped', id: d.id, reason: (e as Error).message });
        return;
      }
      if (name === 'RunInterruptedError') return;
      this.#report.errors++;
      // Do not hammer a migration that keeps failing to load or run: retry it in a minute.
      this.#backoff.set(d.id, Date.now() + 60_000);
      this.#emit({ type: 'error', id: d.id, error: (e as Error).message });
    }
  }
}
