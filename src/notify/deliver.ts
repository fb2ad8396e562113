/**
 * Delivery of the outbox: signed POSTs, Meta's linear retry schedule, in order per migration, one
 * deliverer per migration at a time.
 *
 * - Who: the process that made a transition tries at once ({@link RunNotifier}, driven by the
 *   engine); anything left is delivered by {@link deliverPending} (`waba-migrate notify
 *   deliver`, the fleet worker). Every deliverer first takes the outbox's *delivery lock*
 *   (`store.lockDelivery`), so two processes never POST the same event at once; a deliverer that
 *   finds it held skips that outbox: its holder delivers. The POST itself never holds the
 *   migration's lock, so a slow receiver never keeps `resume` out: `deliverPending` takes the
 *   migration's lock only for the instant it records an outcome, and when a run holds it, leaves
 *   the outcome unrecorded (the event is sent again later with the same webhook-id: at least once).
 * - Order: an event is never sent before the earlier events of its migration are delivered or
 *   dead; a failure stops that migration's delivery until its next attempt is due.
 * - Schedule (On-Premises `callback_backoff_delay_ms` / `max_callback_backoff_delay_ms`, seed
 *   003): after the n-th failed attempt the next is due n × backoff later, capped at the max, and
 *   retries go on at the cap; optionally an event older than the give-up age is marked dead.
 *   `Retry-After` pushes the next attempt later, never sooner. 2xx = delivered.
 * - 410 Gone = the receiver disabled this endpoint: the endpoint (a hash of its URL, shown
 *   without secrets) is recorded as disabled in the store, with when and which event saw it.
 *   While it is disabled nothing is POSTed to it by any process; events stay pending (not dead)
 *   until `waba-migrate notify enable` forgets the 410.
 */
import { request, type Dispatcher } from 'undici';
import { InputError } from '../runner/validate.js';
import type { DisabledEndpoint, EventPayload, MigrationDocument, OutboxEntry } from '../store/document.js';
import type { Lease } from '../store/lock.js';
import type { MigrationStore } from '../store/store.js';
import { isPending, makePayload } from './events.js';
import { parseSecrets, signedHeaders, type SigningKey } from './sign.js';
import { displayEndpoint, endpointKey } from './endpoint.js';

export { disabledFor, disabledLabel, displayEndpoint, endpointKey } from './endpoint.js';

export const NOTIFY_DEFAULTS = { backoffMs: 3000, maxBackoffMs: 900_000, timeoutMs: 10_000 } as const;

export interface NotifyOptions {
  /** https, or http to a loopback host only. */
  url: string;
  /** From {@link parseSecrets}: `whsec_<base64>` (several for rotation). */
  keys: SigningKey[];
  /** Linear step (default 3000 ms). */
  backoffMs?: number;
  /** Cap; retries go on at it (default 900000 ms). */
  maxBackoffMs?: number;
  /** Age after which a failing event is marked dead; unset = never. */
  giveUpMs?: number | null;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** Injectable clock (ms since epoch) for the schedule and the signature timestamp. */
  now?: () => number;
  /** Aborts an attempt in flight and stops starting new ones. */
  signal?: AbortSignal;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Validates the notify URL: https, or plain http to a loopback host (tests, a local relay). */
export function parseNotifyUrl(raw: string, field = '--notify-url'): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(field, `"${raw}" is not a URL; give e.g. https://hooks.example.com/waba`);
  }
  const loopback = LOOPBACK.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) return url.toString();
  throw new InputError(field, `"${url.origin}" must use https (plain http only for a loopback host such as 127.0.0.1): notifications carry business identifiers`);
}

/** Builds validated options from raw values (CLI flags, env). */
export function notifyOptions(raw: { url: string; secret: string; secretField?: string; backoffMs?: number; maxBackoffMs?: number; giveUpMs?: number | null; timeoutMs?: number }): NotifyOptions {
  const url = parseNotifyUrl(raw.url);
  const keys = parseSecrets(raw.secret, raw.secretField ?? 'WABA_NOTIFY_SECRET');
  const ms = (v: number | undefined | null, field: string, min: number) => {
    if (v === undefined || v === null) return undefined;
    if (!Number.isFinite(v) || v < min) throw new InputError(field, `must be a number of milliseconds ≥ ${min}`);
    return v;
  };
  const backoffMs = ms(raw.backoffMs, '--notify-backoff-ms', 1) ?? NOTIFY_DEFAULTS.backoffMs;
  const maxBackoffMs = ms(raw.maxBackoffMs, '--notify-max-backoff-ms', 1) ?? NOTIFY_DEFAULTS.maxBackoffMs;
  if (maxBackoffMs < backoffMs) throw new InputError('--notify-max-backoff-ms', `(${maxBackoffMs}) is below --notify-backoff-ms (${backoffMs}); the cap must be at least one step`);
  return { url, keys, backoffMs, maxBackoffMs, giveUpMs: ms(raw.giveUpMs, '--notify-give-up-ms', 1) ?? null, timeoutMs: ms(raw.timeoutMs, '--notify-timeout-ms', 1) ?? NOTIFY_DEFAULTS.timeoutMs };
}

/** Meta's schedule: the delay after the n-th consecutive failure is n × backoff, capped. */
export function backoffDelayMs(failures: number, backoffMs: number = NOTIFY_DEFAULTS.backoffMs, maxBackoffMs: number = NOTIFY_DEFAULTS.maxBackoffMs): number {
  return Math.min(Math.max(1, failures) * backoffMs, maxBackoffMs);
}

export type AttemptOutcome =
  | { ok: true; status: number }
  | { ok: false; status: number | null; error: string; retryAfterMs: number | null; gone: boolean; interrupted?: boolean };

/** `Retry-After`: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/** One signed POST. Never throws: every failure is an outcome. `body`: the event's serialised
 *  text when it was kept (batch events: see `addBatchCompleted`), so a retry sends the same bytes. */
export async function sendPayload(opts: NotifyOptions, payload: EventPayload, body: string = JSON.stringify(payload)): Promise<AttemptOutcome> {
  const now = opts.now ?? Date.now;
  const headers = signedHeaders(opts.keys, payload.id, Math.floor(now() / 1000), body);
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? NOTIFY_DEFAULTS.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    const res = await request(opts.url, { method: 'POST', headers: { ...headers, 'user-agent': 'waba-migrate-notify/1' }, body, signal, ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) });
    // The receiver's answer body is not ours to keep; read a little and drop it.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode };
    const gone = res.statusCode === 410;
    return {
      ok: false,
      status: res.statusCode,
      error: gone ? 'HTTP 410 Gone: the receiver disabled this endpoint' : `HTTP ${res.statusCode}`,
      retryAfterMs: parseRetryAfter(res.headers['retry-after'], now()),
      gone,
    };
  } catch (e) {
    const err = e as Error & { code?: string };
    const timedOut = timeout.aborted && !opts.signal?.aborted;
    // Cut short by our own shutdown: not the receiver's failure, and not an attempt at all.
    if (!timedOut && opts.signal?.aborted) return { ok: false, status: null, error: 'interrupted', retryAfterMs: null, gone: false, interrupted: true };
    const what = timedOut ? `no answer within ${opts.timeoutMs ?? NOTIFY_DEFAULTS.timeoutMs} ms` : `${err.code ?? err.name}: ${err.message}`;
    return { ok: false, status: null, error: what, retryAfterMs: null, gone: false };
  }
}

/** Records an attempt's outcome on the entry (the schedule lives here). */
export function applyOutcome(entry: OutboxEntry, outcome: AttemptOutcome, opts: NotifyOptions, nowMs: number): void {
  const at = new Date(nowMs).toISOString();
  if (!outcome.ok && outcome.interrupted) return; // our shutdown aborted it: the event stays as it was, due
  if (outcome.ok) {
    entry.deliveredAt = at;
    entry.lastError = null;
    return;
  }
  entry.attempts += 1;
  entry.lastError = `${at} ${outcome.error}`;
  if (outcome.gone) {
    // Not the event's fault: it stays pending (and due) until the endpoint is enabled again.
    entry.lastError = `${at} ${outcome.error}; events wait until \`waba-migrate notify enable\``;
    return;
  }
  const delay = Math.max(backoffDelayMs(entry.attempts, opts.backoffMs, opts.maxBackoffMs), outcome.retryAfterMs ?? 0);
  entry.nextAttemptAt = new Date(nowMs + delay).toISOString();
  const since = Date.parse(entry.revivedAt ?? entry.createdAt);
  if (opts.giveUpMs != null && nowMs - since >= opts.giveUpMs) {
    entry.dead = true;
    entry.lastError = `${at} ${outcome.error}; gave up after ${entry.attempts} attempts (older than --notify-give-up-ms ${opts.giveUpMs})`;
  }
}

export interface PassResult {
  attempted: number;
  delivered: number;
  failed: number;
  dead: number;
  /** The receiver answered 410: stop sending anything in this pass. */
  gone: boolean;
  /** The endpoint was already disabled (an earlier 410): nothing was sent. */
  disabled: boolean;
  /** When this outbox's first pending event is next due (ms), or null if none is pending. */
  nextAt: number | null;
  /** What went wrong beside the POSTs (a 410 the store could not record). */
  problems: string[];
}

const emptyPass = (): PassResult => ({ attempted: 0, delivered: 0, failed: 0, dead: 0, gone: false, disabled: false, nextAt: null, problems: [] });

/** How a deliverer learns of, and records, a disabled endpoint (the store, for `opts.url`). */
export interface EndpointGate {
  /** The record holding this endpoint back, or null. */
  disabled(): Promise<DisabledEndpoint | null>;
  /** Called on a 410 for `entry`: records the endpoint as disabled. */
  gone(entry: OutboxEntry, owner: string, nowMs: number): Promise<void>;
}

/** 410s this process saw but could not record in a store (per store, by endpoint key): it sends
 *  nothing more to those endpoints while it lasts, and records them once the store takes it. */
const goneUnrecorded = new WeakMap<MigrationStore, Map<string, DisabledEndpoint>>();

/** The gate of `opts.url` in `store`. */
export function storeGate(store: MigrationStore, opts: NotifyOptions): EndpointGate {
  const key = endpointKey(opts.url);
  const held = () => goneUnrecorded.get(store) ?? goneUnrecorded.set(store, new Map()).get(store)!;
  return {
    disabled: async () => {
      const stored = (await store.disabledEndpoints()).find((d) => d.key === key) ?? null;
      const mine = goneUnrecorded.get(store)?.get(key);
      if (!mine) return stored;
      if (!stored) {
        try {
          await store.disableEndpoint(mine); // the 410 this process could not record: again now
        } catch {
          return mine; // still refused: still held back here
        }
      }
      held().delete(key);
      return stored ?? mine;
    },
    gone: async (entry, owner, nowMs) => {
      const d: DisabledEndpoint = { key, endpoint: displayEndpoint(opts.url), disabledAt: new Date(nowMs).toISOString(), eventId: entry.id, owner };
      held().set(key, d); // held back in this process whatever the write below does
      await store.disableEndpoint(d);
      held().delete(key);
    },
  };
}

/** Records a 410 through the gate; a store that refuses the write does not undo the 410 (the
 *  gate holds it for this process): returns what to report, or null. */
async function recordGone(gate: EndpointGate, entry: OutboxEntry, owner: string, nowMs: number): Promise<string | null> {
  try {
    await gate.gone(entry, owner, nowMs);
    return null;
  } catch (e) {
    return `could not record the endpoint as disabled (${(e as Error).message}): this process sends nothing more to it and records it when the store allows`;
  }
}

/** When the first pending event of an outbox is due (ms), or null: order makes it the only one that matters. */
export function firstDue(outbox: OutboxEntry[] | undefined): number | null {
  const first = (outbox ?? []).filter(isPending).sort((a, b) => a.seq - b.seq)[0];
  return first ? Date.parse(first.nextAttemptAt) : null;
}

/**
 * Sends an outbox's due events in order, calling `save` after each outcome. Stops at the first
 * failure (later events wait for it), at the first event not yet due, or past `upToSeq` (the
 * last event known to be on disk: an event is never sent before its transition is written).
 */
export async function deliverOutbox(outbox: OutboxEntry[], opts: NotifyOptions, save: () => Promise<void>, upToSeq = Infinity, gate?: { gate: EndpointGate; owner: string }): Promise<PassResult> {
  const now = opts.now ?? Date.now;
  const r = emptyPass();
  for (const entry of [...outbox].sort((a, b) => a.seq - b.seq)) {
    if (!isPending(entry)) continue;
    if (entry.seq > upToSeq) break; // not on disk yet: its transition could still be lost
    if (opts.signal?.aborted || Date.parse(entry.nextAttemptAt) > now()) break;
    if (gate && (await gate.gate.disabled())) {
      r.disabled = true;
      break;
    }
    const outcome = await sendPayload(opts, entry.payload, entry.body);
    if (!outcome.ok && outcome.interrupted) break; // our shutdown: not an attempt, nothing to record
    r.attempted++;
    applyOutcome(entry, outcome, opts, now());
    const unrecorded = !outcome.ok && outcome.gone && gate ? await recordGone(gate.gate, entry, gate.owner, now()) : null;
    if (unrecorded) {
      entry.lastError = `${entry.lastError}; ${unrecorded}`;
      r.problems.push(`${gate!.owner}: HTTP 410 Gone; ${unrecorded}`);
    }
    await save();
    if (outcome.ok) {
      r.delivered++;
      continue;
    }
    if (entry.dead) r.dead++;
    else r.failed++;
    if (outcome.gone) r.gone = true;
    // In order: a later event never overtakes one still failing. A dead one no longer holds them
    // back, except after a 410, which stops the pass.
    if (!entry.dead || outcome.gone) break;
  }
  r.nextAt = firstDue(outbox);
  return r;
}

/**
 * Delivery by the run that made the transitions: kicked after each write. It never delays the
 * migration: attempts run beside it, and their results ride on the run's next write (a crash
 * before then only means a repeat with the same id). With a store it first takes the outbox's
 * delivery lock and keeps it until `finish` (so no other process sends from a copy of the outbox
 * older than this run's); while another process holds it (its POST in flight), it tries again
 * shortly. It sends nothing while the endpoint is disabled, and records a 410 in the store.
 * `finish` makes a last pass, writes the delivery state, and releases the delivery lock.
 */
export class RunNotifier {
  #running: Promise<void> | null = null;
  #busy = false;
  /** The highest outbox seq known to be written: nothing later is sent. */
  #written = 0;
  #again = false;
  #changed = false;
  #stopped = false;
  /** The receiver answered 410 (or the endpoint is disabled): this run sends nothing more. */
  #gone = false;
  /** A failed event's next attempt (or the delivery lock's next try), while the run lasts. */
  #timer: NodeJS.Timeout | null = null;
  #lease: Lease | null = null;
  readonly #gate: EndpointGate | null;

  constructor(
    private readonly doc: MigrationDocument,
    private readonly opts: NotifyOptions,
    private readonly store: MigrationStore | null = null,
  ) {
    this.#gate = store ? storeGate(store, opts) : null;
  }

  /** After a write that carried the outbox up to `writtenSeq`. */
  kick(writtenSeq = this.#written): void {
    this.#written = Math.max(this.#written, writtenSeq);
    if (this.#stopped || this.#gone) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#running = this.#loop();
  }

  /** The delivery lock, taken once and kept for the run; false while another process holds it. */
  async #own(): Promise<boolean> {
    if (!this.store || this.#lease) return true;
    try {
      this.#lease = await this.store.lockDelivery('migration', this.doc.id);
      return true;
    } catch (e) {
      if ((e as Error).name !== 'MigrationLockedError') throw e;
      return false;
    }
  }

  async #loop(): Promise<void> {
    try {
      do {
        this.#again = false;
        const outbox = this.doc.outbox;
        if (!outbox?.some(isPending)) break;
        if (!(await this.#own())) {
          // Another deliverer's POST is in flight; it lets go right after.
          if (!this.#stopped) this.#retryAt((this.opts.now ?? Date.now)() + 200);
          break;
        }
        const r = await deliverOutbox(
          outbox,
          this.opts,
          async () => {
            this.#changed = true;
          },
          this.#written,
          this.#gate ? { gate: this.#gate, owner: this.doc.id } : undefined,
        );
        if (r.gone || r.disabled) this.#gone = true;
        // A failure, or a first pending event not yet due (a timer may fire a little before the
        // clock reaches its due time): come back when it is due, or nothing would send it until
        // the next write.
        const now = (this.opts.now ?? Date.now)();
        const waiting = r.nextAt !== null && (r.failed > 0 || r.nextAt > now);
        if (waiting && !r.gone && !r.disabled && !this.#stopped) this.#retryAt(r.nextAt!);
        if (r.gone || r.disabled || r.failed) break;
      } while (this.#again && !this.#stopped);
    } catch {
      // Never let delivery touch the migration; what was not sent stays pending.
    } finally {
      this.#busy = false; // synchronously after the loop: no kick can fall between
    }
  }

  #retryAt(at: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    const wait = Math.max(0, at - (this.opts.now ?? Date.now)());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.kick();
    }, wait);
    this.#timer.unref(); // a pending retry never keeps the process alive
  }

  /** Waits for the attempt in flight, makes one last pass, saves what changed, and lets go of
   *  the delivery lock. Never throws. */
  async finish(save: () => Promise<void>): Promise<void> {
    try {
      if (this.#timer) clearTimeout(this.#timer);
      await this.#running;
      this.kick();
      await this.#running;
      this.#stopped = true;
      if (this.#timer) clearTimeout(this.#timer);
      if (this.#changed) await save();
    } catch {
      // Delivery state not written: those events are sent again later, with the same ids.
    } finally {
      await this.#lease?.release().catch(() => {});
      this.#lease = null;
    }
  }

  /** The run ends without writing (its lock was lost): stop, and let go of the delivery lock. */
  async abandon(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running?.catch(() => {});
    await this.#lease?.release().catch(() => {});
    this.#lease = null;
  }
}

export interface DeliverySummary extends Omit<PassResult, 'nextAt'> {
  /** Outboxes whose delivery lock another process held: that process delivers. */
  skippedLocked: string[];
  /** POSTs whose outcome could not be recorded because a run held the migration's lock at that
   *  moment: those events are sent again later with the same webhook-id (at least once). */
  unrecorded: string[];
  /** Records that could not be read or written this pass (damaged, removed): the rest went on. */
  problems: string[];
  /** Events still pending after this pass (over everything scanned). */
  pending: number;
  /** Earliest time a pending event is due (ms), or null. */
  nextAt: number | null;
  /** The endpoint is disabled (a 410, now or earlier): nothing more is sent until it is enabled. */
  disabledEndpoint: DisabledEndpoint | null;
}

/** How long `deliverPending` tries to take a migration's lock to record one outcome. */
const RECORD_TRIES = 5;
const RECORD_WAIT_MS = 30;

interface Target {
  kind: 'migration' | 'batch';
  id: string;
  /** Reads the outbox as stored (no lock). */
  read(): Promise<OutboxEntry[]>;
  /** Applies `change` to the stored entry under the owner's lock, briefly; returns the outbox
   *  as now stored, or null when the lock was busy (nothing recorded). */
  record(entryId: string, change: (e: OutboxEntry) => void): Promise<OutboxEntry[] | null>;
}

function migrationTarget(store: MigrationStore, id: string): Target {
  return {
    kind: 'migration',
    id,
    read: async () => (await store.load(id)).outbox ?? [],
    record: (entryId, change) =>
      underLock(
        () => store.lock(id),
        async () => {
          const h = await store.open(id);
          const e = h.data.outbox?.find((x) => x.id === entryId);
          if (e && isPending(e)) {
            change(e);
            await h.save();
          }
          return h.data.outbox ?? [];
        },
      ),
  };
}

function batchTarget(store: MigrationStore, id: string): Target {
  return {
    kind: 'batch',
    id,
    read: async () => (await store.loadBatch(id)).outbox ?? [],
    record: (entryId, change) =>
      underLock(
        () => store.lockBatch(id),
        async () => {
          const b = await store.loadBatch(id);
          const e = b.outbox?.find((x) => x.id === entryId);
          if (e && isPending(e)) {
            change(e);
            await store.saveBatch(b);
          }
          return b.outbox ?? [];
        },
      ),
  };
}

/** Runs `fn` under a lock taken with a few short tries; null when it stayed busy. */
async function underLock<T>(take: () => Promise<Lease>, fn: () => Promise<T>): Promise<T | null> {
  let lease: Lease | null = null;
  for (let i = 0; i < RECORD_TRIES && !lease; i++) {
    try {
      lease = await take();
    } catch (e) {
      if ((e as Error).name !== 'MigrationLockedError') throw e;
      await new Promise((r) => setTimeout(r, RECORD_WAIT_MS));
    }
  }
  if (!lease) return null;
  try {
    return await fn();
  } finally {
    await lease.release();
  }
}

/**
 * Delivers one stored outbox in order under its delivery lock: each POST is made holding only
 * that lock; its outcome is then recorded under the owner's lock, taken briefly.
 */
async function deliverStored(t: Target, opts: NotifyOptions, gate: EndpointGate, store: MigrationStore): Promise<PassResult & { locked: boolean; unrecorded: boolean }> {
  const now = opts.now ?? Date.now;
  const r = { ...emptyPass(), locked: false, unrecorded: false };
  let lease: Lease;
  try {
    lease = await store.lockDelivery(t.kind, t.id);
  } catch (e) {
    if ((e as Error).name !== 'MigrationLockedError') throw e;
    r.locked = true;
    return r;
  }
  const owner = t.kind === 'batch' ? `batch:${t.id}` : t.id;
  try {
    let outbox = await t.read();
    for (;;) {
      const entry = outbox.filter(isPending).sort((a, b) => a.seq - b.seq)[0];
      if (!entry || opts.signal?.aborted || Date.parse(entry.nextAttemptAt) > now()) break;
      if (await gate.disabled()) {
        r.disabled = true;
        break;
      }
      const outcome = await sendPayload(opts, entry.payload, entry.body);
      if (!outcome.ok && outcome.interrupted) break; // our shutdown: not an attempt, nothing to record
      r.attempted++;
      const unrecorded = !outcome.ok && outcome.gone ? await recordGone(gate, entry, owner, now()) : null;
      if (unrecorded) r.problems.push(`${t.kind === 'batch' ? `batch ${t.id}` : t.id}: HTTP 410 Gone; ${unrecorded}`);
      let after: OutboxEntry | undefined;
      const stored = await t.record(entry.id, (e) => {
        applyOutcome(e, outcome, opts, now());
        if (unrecorded) e.lastError = `${e.lastError}; ${unrecorded}`;
        after = e;
      });
      if (stored === null) {
        // A run holds the migration: it (or the next pass) sends this event again, same id.
        r.unrecorded = true;
        break;
      }
      outbox = stored;
      if (outcome.ok) {
        if (after) r.delivered++;
        continue;
      }
      if (after?.dead) r.dead++;
      else r.failed++;
      if (outcome.gone) {
        r.gone = true;
        break;
      }
      // In order: a later event never overtakes one still failing; a dead one no longer holds them.
      if (!after?.dead) break;
    }
    r.nextAt = firstDue(outbox);
  } finally {
    await lease.release();
  }
  return r;
}

/**
 * One pass over every migration and batch with a due event: delivers each outbox in order under
 * its delivery lock (skipping those another process is delivering), without holding the
 * migration's lock during a POST. For `notify deliver` and the fleet worker (call again at `nextAt`).
 */
export async function deliverPending(store: MigrationStore, opts: NotifyOptions, options: { concurrency?: number } = {}): Promise<DeliverySummary> {
  const now = opts.now ?? Date.now;
  const gate = storeGate(store, opts);
  const sum: DeliverySummary = { attempted: 0, delivered: 0, failed: 0, dead: 0, gone: false, disabled: false, skippedLocked: [], unrecorded: [], problems: [], pending: 0, nextAt: null, disabledEndpoint: null };
  const later = (t: number | null) => {
    if (t !== null) sum.nextAt = sum.nextAt === null ? t : Math.min(sum.nextAt, t);
  };
  const candidates = (await store.scan((m) => (m.doc?.outbox?.some(isPending) ? { id: m.id, due: firstDue(m.doc.outbox)!, pending: m.doc.outbox.filter(isPending).length } : null))).filter(
    (c): c is { id: string; due: number; pending: number } => c !== null,
  );
  const batches = await store.listBatches();
  // What was pending when the pass began; what it delivered or gave up is subtracted at the end.
  const pendingBefore = candidates.reduce((a, c) => a + c.pending, 0) + batches.reduce((a, b) => a + (b.outbox ?? []).filter(isPending).length, 0);
  const stopped = () => sum.gone || sum.disabled || opts.signal?.aborted === true;
  const disabled = await gate.disabled();
  if (disabled) {
    // Nothing is sent while the endpoint is disabled: everything stays pending, shown as such.
    sum.disabled = true;
    sum.disabledEndpoint = disabled;
    sum.pending = pendingBefore;
    return sum;
  }
  const run = async (t: Target, due: number, label: string) => {
    if (stopped()) {
      later(due);
      return;
    }
    try {
      const r = await deliverStored(t, opts, gate, store);
      if (r.locked) {
        sum.skippedLocked.push(label);
        return;
      }
      sum.attempted += r.attempted;
      sum.delivered += r.delivered;
      sum.failed += r.failed;
      sum.dead += r.dead;
      sum.problems.push(...r.problems);
      if (r.gone) sum.gone = true;
      if (r.disabled) sum.disabled = true;
      if (r.unrecorded) sum.unrecorded.push(label);
      later(r.nextAt);
    } catch (e) {
      // One damaged or vanished record must not stop everyone else's notifications.
      sum.problems.push(`${t.kind === 'batch' ? `batch ${t.id}` : t.id}: ${(e as Error).message}`);
    }
  };
  const queue = candidates.filter((c) => c.due <= now());
  for (const c of candidates) if (c.due > now()) later(c.due);
  const worker = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) await run(migrationTarget(store, c.id), c.due, c.id);
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));

  for (const b of batches) {
    if (!b.outbox?.some(isPending)) continue;
    const due = firstDue(b.outbox)!;
    if (due > now()) {
      later(due);
      continue;
    }
    await run(batchTarget(store, b.id), due, `batch:${b.id}`);
  }
  if (sum.gone || sum.disabled) sum.disabledEndpoint = await gate.disabled();
  sum.pending = Math.max(0, pendingBefore - sum.delivered - sum.dead);
  return sum;
}

/** `notify retry` / `notify enable`: delivers one migration's or batch's outbox now (under its
 *  delivery lock, like {@link deliverPending}). */
export async function deliverOne(store: MigrationStore, kind: 'migration' | 'batch', id: string, opts: NotifyOptions): Promise<PassResult & { locked: boolean; unrecorded: boolean }> {
  return deliverStored(kind === 'batch' ? batchTarget(store, id) : migrationTarget(store, id), opts, storeGate(store, opts), store);
}

/**
 * `notify retry`: dead events become pending again (their give-up age restarts) and pending ones
 * are due now. Returns how many changed.
 */
export function revive(outbox: OutboxEntry[], eventId: string | null, nowMs: number): number {
  let n = 0;
  const at = new Date(nowMs).toISOString();
  for (const e of outbox) {
    if (e.deliveredAt !== null || (eventId !== null && e.id !== eventId)) continue;
    if (e.dead) {
      e.dead = false;
      e.revivedAt = at;
      e.attempts = 0;
    }
    e.nextAttemptAt = at;
    n++;
  }
  return n;
}

/** `notify test`: a signed ping that is not stored anywhere. */
export function testPayload(nowMs: number): EventPayload {
  return makePayload('notify.test', { message: 'waba-migrate notification test: if you can read this, your receiver verified the signature.' }, new Date(nowMs).toISOString());
}
