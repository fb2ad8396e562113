/**
 * The runner: loads a migration, restores the machine, drives it as far as it can go without a
 * person, and persists after **every** transition. Data flows one way: CLI → engine → machine →
 * step actors → Graph client.
 *
 * Exactly-once: each POST step records an intent in the machine's context; the step awaits
 * `durable()` (that snapshot is on disk) before sending. When a process restores a snapshot
 * whose intent is outstanding, XState re-invokes the in-flight actor; `mustReconcile` tells the
 * step to read Meta's state first and send only if the effect is not already there.
 */
import { userInfo } from 'node:os';
import type { Dispatcher } from 'undici';
import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate';

type MachineSnap = { value: unknown; context: MigrationContext; status: string };
import {
  migrationMachine,
  stateName,
  type AckOutput,
  type ChecksInput,
  type ConfirmInput,
  type CreateInput,
  type CreateOutput,
  type MigrationContext,
  type MigrationEvent,
  type RequestCodeInput,
  type RequestCodeOutput,
  type StateName,
  type StepInput,
} from '../../machines/migration.js';
import { DEFAULT_POLICY, type FailureInfo, type NumberLedger, type ChecksOutput, type ConfirmOutput, type CheckName, type CodeMethod, type Intent, type MigrationInput, type Policy } from '../../machines/types.js';
import { GraphClient, type CallSummary, type GraphClientOptions } from '../graph/client.js';
import { RateBudget, throttleMessage } from '../graph/rate-budget.js';
import type { GroupChecks } from '../steps/checks.js';
import { buildActors, type Secrets, type StepDeps } from '../steps/index.js';
import { OnPremClient, assertSafeOnPremUrl } from '../onprem/client.js';
import { redactUrl } from '../onprem/settings.js';
import { SCHEMA_VERSION, StateDocumentError, type HistoryEntry, type MigrationDocument } from '../store/document.js';
import { DuplicateMigrationError, UNFINISHED, type DocumentHandle, type Lease, type MigrationStore } from '../store/store.js';
import { MigrationLockedError } from '../store/lock.js';
import { InputError, parseCheckName, parseCode, parseCodeMethod, parseGraphId, parseLanguage, parseMigrationId, parsePhone, parsePin, parseVerifiedName } from './validate.js';
import { getHistory, getView, listViews } from './read.js';
import { addTransitionEvents } from '../notify/events.js';
import { RunNotifier, type NotifyOptions } from '../notify/deliver.js';
import { toView, type MigrationView } from './view.js';

export interface EngineOptions {
  /** Where migrations live: a FileStore (lowdb, one JSON document each) or your own. */
  store: MigrationStore;
  /** System-user access token. Kept in memory only. Not needed to read (get, list, history). */
  token?: string;
  graphUrl?: string;
  apiVersion?: string;
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  /** Longest retry wait this process sits through; a longer one returns (resume picks it up). Default 60 s. */
  maxWaitMs?: number;
  /** Who is acting, for the history. Default: the OS user. */
  operator?: string;
  /** Called after each transition is on disk. */
  onTransition?: (t: TransitionInfo) => void;
  /** Called after each Graph call. */
  onCall?: (c: CallSummary) => void;
  /** Called when this run waits in-process before its next request (a retry backoff within
   *  `maxWaitMs`, a pause Meta's rate limit asked for): whose, until when, and why. */
  onWait?: (w: WaitInfo) => void;
  /**
   * Stops a run before its next request (Ctrl-C, a worker shutting down): the machine is stopped
   * where it stands, what was written stays valid, and `start`/`resume` reject with
   * {@link RunInterruptedError} carrying the view (a `start` stopped before its migration was
   * created rejects with {@link StartStoppedError}: nothing was sent or written). A request in flight is abandoned; its intent is
   * on disk, so the next run reconciles it with Meta before sending anything again.
   */
  signal?: AbortSignal;
  /** Signed progress notifications (src/notify/): events are queued with each transition and
   *  this run tries to deliver them at once. A migration that has an outbox keeps queueing
   *  events even in runs without this option; a later `notify deliver` sends them. */
  notify?: NotifyOptions;
  /** On-Premises path (issue 12): its secrets, kept in memory only. */
  onprem?: OnPremSecrets;
  /** Meta's per-WABA rate limits: share one budget between every engine of a process. Default: one per engine. */
  rateBudget?: RateBudget;
}

/** Secrets of the On-Premises path: from env, files or a prompt, never flags, never stored. */
export interface OnPremSecrets {
  user?: string;
  password?: string;
  token?: string;
  backupPassword?: string;
  webhookVerifyToken?: string;
  /** The full webhook URL to carry (it may hold a shared secret in its query). */
  webhookUrl?: string;
}

export class RunInterruptedError extends Error {
  override readonly name = 'RunInterruptedError';
  constructor(
    readonly view: MigrationView,
    readonly reason: unknown,
  ) {
    super(`stopped in ${view.state} before the next request; the state is saved: waba-migrate resume ${view.id}`);
  }
}

/** The run's signal stopped a `start` before its migration was created: nothing was sent or written. */
export class StartStoppedError extends Error {
  override readonly name = 'StartStoppedError';
  constructor(
    readonly id: string,
    readonly reason: unknown,
  ) {
    super(`stopped before migration ${id} was created: nothing was sent or written; start it again`);
  }
}

/** Another unfinished migration of the same number exists: two must never both run. */
export class NumberBusyError extends Error {
  override readonly name = 'NumberBusyError';
  constructor(
    readonly phone: string,
    readonly otherId: string,
    readonly otherState: StateName,
  ) {
    super(
      `phone: ${phone} already has an unfinished migration "${otherId}" (${otherState}); one number is migrated by one migration at a time. Continue it with \`waba-migrate resume ${otherId}\`, or cancel it first with \`waba-migrate cancel ${otherId}\``,
    );
    this.field = 'phone';
  }
  readonly field: string;
}

/** An in-process wait (see {@link EngineOptions.onWait}). */
export interface WaitInfo {
  id: string;
  /** `retry`: a backoff in waiting_retry before `step` runs again; `rate_limit`: a call of `step`
   *  waits for the pause Meta's rate limit asked for (X-Business-Use-Case-Usage, Retry-After). */
  kind: 'retry' | 'rate_limit';
  step: string;
  /** Epoch ms. */
  until: number;
  /** Why: the temporary failure (Meta's HTTP status, code and words) or the rate limit. */
  error: Pick<FailureInfo, 'kind' | 'message' | 'httpStatus' | 'code'>;
}

export interface TransitionInfo {
  id: string;
  from: StateName | null;
  to: StateName;
  event: string;
  entry: HistoryEntry;
  view: MigrationView;
}

export interface StartRequest {
  phone: string;
  sourceWabaId: string;
  destWabaId: string;
  businessId?: string | null;
  id?: string;
  codeMethod?: string;
  language?: string;
  verifiedName?: string | null;
  confirm?: string[];
  policy?: Partial<Policy>;
  /** Held in memory for this run only. */
  pin?: string;
  /** Issue 12: 'onprem' moves a number off an On-Premises client; `waba` is then its WABA (the
   *  source and destination WABA ids may be left out). */
  from?: 'waba' | 'onprem';
  waba?: string;
  onpremUrl?: string;
  /** true: carry the On-Premises webhooks.url; a string: carry that URL. */
  carryWebhook?: boolean | string;
  /** Apply the On-Premises show_security_notifications / notify_user_change_number on the Cloud API. */
  carrySettings?: boolean;
  /** The batch this migration belongs to (stored in the document, for `work --batch` and `batch status`). */
  batch?: string;
  /** Prerequisite checks already run for this (business, source, destination) group: the checks
   *  step then does only per-number work and records the reference in the history. */
  groupChecks?: GroupChecks;
}

export interface ResumeRequest {
  code?: string;
  pin?: string;
  confirm?: string[];
  resend?: boolean | { method?: string };
  overrideRegisterLimit?: boolean;
  groupChecks?: GroupChecks;
  /** The migration's lease, already taken (store.claimDue): the run uses it instead of taking the
   *  lock itself, and releases it when it ends, whatever happens. */
  lease?: Lease;
}

export class ResendTooSoonError extends Error {
  override readonly name = 'ResendTooSoonError';
  constructor(readonly allowedAt: Date) {
    super(`a new code can be requested after ${allowedAt.toISOString()} (Meta's cool-down); try again then`);
  }
}

export class WrongStateError extends Error {
  override readonly name = 'WrongStateError';
  constructor(
    readonly state: StateName,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The machine is provided once per process (building it costs more than a whole transition);
 * each run's step dependencies are found through its actor system.
 */
const DEPS_BY_SYSTEM = new WeakMap<object, StepDeps>();
const LIVE_MACHINE = migrationMachine.provide({
  actors: buildActors((system) => {
    const deps = DEPS_BY_SYSTEM.get(system);
    if (!deps) throw new Error('step dependencies missing for this actor system');
    return deps;
  }),
});
// Cancelling must not touch Meta: a restored in-flight step gets an actor that never settles.
const inert = <O, I>() => fromPromise<O, I>(() => new Promise<O>(() => {}));
const INERT_MACHINE = migrationMachine.provide({
  actors: {
    runChecks: inert<ChecksOutput, ChecksInput>(),
    createNumber: inert<CreateOutput, CreateInput>(),
    requestCode: inert<RequestCodeOutput, RequestCodeInput>(),
    verifyCode: inert<AckOutput, StepInput>(),
    register: inert<AckOutput, StepInput>(),
    confirm: inert<ConfirmOutput, ConfirmInput>(),
  },
});

const RESTING: ReadonlySet<StateName> = new Set(['blocked', 'awaiting_code', 'completed', 'cancelled', 'failed']);
const FINAL: ReadonlySet<StateName> = new Set(['completed', 'cancelled']);

/** Keys whose values never reach the history, whatever event carries them. */
const SECRET_KEYS = new Set(['pin', 'token', 'access_token', 'password', 'code_value']);

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // `code` is a secret when it is the 6-digit verification code; Graph error codes are numbers.
    if (SECRET_KEYS.has(k) || (k === 'code' && typeof v === 'string')) out[k] = '[redacted]';
    else out[k] = redact(v, depth + 1);
  }
  return out;
}

/** A compact, secret-free record of the event that caused a transition. */
function describeEvent(event: { type: string } & Record<string, unknown>): HistoryEntry['event'] {
  const { type } = event;
  if (type.startsWith('xstate.error.actor')) {
    const e = (event.error ?? {}) as Record<string, unknown>;
    return { type, error: redact({ message: e.message, kind: e.kind, code: e.code, subcode: e.subcode, fbtraceId: e.fbtraceId, httpStatus: e.httpStatus, transient: e.transient }) as Record<string, unknown> };
  }
  if (type.startsWith('xstate.done.actor')) {
    const out = event.output as Record<string, unknown> | undefined;
    if (type.endsWith('.checks') && out) {
      const checks = (out.checks as { name: string; status: string }[]) ?? [];
      return { type, checks: Object.fromEntries(checks.map((c) => [c.name, c.status])), existing: out.existing ?? null, ...(out.groupCheck ? { groupCheck: out.groupCheck } : {}) };
    }
    return { type, output: redact(out) };
  }
  const rest: Record<string, unknown> = { ...event };
  delete rest.type;
  return { type, ...(redact(rest) as Record<string, unknown>) };
}

export class MigrationEngine {
  readonly store: MigrationStore;
  readonly #opts: EngineOptions;
  readonly #operator: string;
  /** Shared by every run of this engine (and of any engine given the same budget). */
  readonly rateBudget: RateBudget;

  constructor(opts: EngineOptions) {
    this.store = opts.store;
    this.#opts = opts;
    this.#operator = opts.operator ?? safeUser();
    this.rateBudget = opts.rateBudget ?? new RateBudget();
  }

  /**
   * A Graph client with this engine's settings and rate budget (the batch layer's shared checks).
   * Its calls are reported to the engine's `onCall` and stopped by its `signal`, like a run's,
   * unless `extra` says otherwise.
   */
  graphClient(extra: { onCall?: (c: CallSummary) => void; signal?: AbortSignal; rateScope?: (id: string) => string; onBudgetWait?: GraphClientOptions['onBudgetWait'] } = {}): GraphClient {
    return new GraphClient({
      token: this.#opts.token ?? '',
      baseUrl: this.#opts.graphUrl,
      apiVersion: this.#opts.apiVersion,
      dispatcher: this.#opts.dispatcher,
      timeoutMs: this.#opts.timeoutMs,
      budget: this.rateBudget,
      maxBudgetWaitMs: this.#opts.maxWaitMs ?? 60_000,
      ...(this.#opts.onCall ? { onCall: this.#opts.onCall } : {}),
      ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
      ...extra,
    });
  }

  // ---- library API ---------------------------------------------------------------------------

  /** Validates, creates and runs a new migration as far as it can go (normally `awaiting_code`). */
  async start(req: StartRequest): Promise<MigrationView> {
    const input = buildInput(req, this.#operator);
    const pin = req.pin !== undefined ? parsePin(req.pin) : undefined;
    const batch = req.batch !== undefined ? parseMigrationId(req.batch, 'batch') : undefined;
    new GraphClient({ token: this.#opts.token ?? '', baseUrl: this.#opts.graphUrl, apiVersion: this.#opts.apiVersion }); // validates token, URL and version before anything is written
    // A taken id or a busy number is bad input: refuse it before the lock, which would otherwise
    // hold another migration's (or another number's) lock for a moment, or leave a lock file
    // (checked again under the lock by store.create and #numberUnderLock, for a race with another process).
    const signal = this.#opts.signal;
    if (signal?.aborted) throw new StartStoppedError(input.id, signal.reason);
    if (await this.store.exists(input.id)) throw new DuplicateMigrationError(input.id);
    await this.#refuseOtherLive(input.phone, input.id);
    const leases = await this.#lockBoth(input.id, input.phone);
    try {
      // Again under both locks: another process may have started this id or number meanwhile.
      const ledger = await this.#numberUnderLock(input.phone, input.id);
      const now = new Date().toISOString();
      const doc: MigrationDocument = {
        schemaVersion: SCHEMA_VERSION,
        id: input.id,
        createdAt: now,
        updatedAt: now,
        state: 'checking',
        input,
        snapshot: { value: 'checking', context: {}, status: 'active' },
        history: [],
        ...(batch ? { batch } : {}),
      };
      // Stopped while the checks and locks above took their time: nothing is created.
      if (signal?.aborted) throw new StartStoppedError(input.id, signal.reason);
      const handle = await this.store.create(doc);
      const webhookUrl = typeof req.carryWebhook === 'string' ? req.carryWebhook : undefined;
      return await this.#drive(handle, false, { pin, leases, ledger, ...(webhookUrl ? { webhookUrl } : {}), groupChecks: req.groupChecks });
    } finally {
      await releaseAll(leases);
    }
  }

  /** Takes the migration's lock, then its number's; both are released on any failure. */
  async #lockBoth(id: string, phone: string): Promise<Lease[]> {
    const first = await this.store.lock(id);
    try {
      return [first, await this.store.lockNumber(phone, { with: first })];
    } catch (e) {
      await first.release();
      throw e;
    }
  }

  /** Refuses when another unfinished migration of this number exists (whatever its id), or one
   *  that cannot be read: it may be live, and its register calls count against the number. */
  async #refuseOtherLive(phone: string, id: string, docs?: MigrationDocument[]): Promise<void> {
    const all = docs ?? (await this.#ofNumber(phone, id));
    const other = all.find((d) => d.id !== id && UNFINISHED(d.state));
    if (other) throw new NumberBusyError(phone, other.id, other.state);
  }

  /** The number's migrations; a damaged one (other than `id`) is refused, never taken for absent. */
  async #ofNumber(phone: string, id: string): Promise<MigrationDocument[]> {
    const damaged: StateDocumentError[] = [];
    // This migration's own damage is reported by its own load; another's blocks the number.
    const docs = await this.store.byPhone(phone, { except: id, onDamaged: (other, e) => void (other !== id && damaged.push(e)) });
    const [d] = damaged;
    if (d) throw new StateDocumentError(d.problem, d.file, `${d.message} It is a migration of ${phone} and may still be live: restore or repair it before another migration of this number runs (nothing was written).`);
    return docs;
  }

  /** Under the number's lock, one read of its migrations: refuses another live one, and returns
   *  what the others spent on register. */
  async #numberUnderLock(phone: string, id: string): Promise<NumberLedger> {
    const docs = await this.#ofNumber(phone, id);
    await this.#refuseOtherLive(phone, id, docs);
    return ledgerOf(docs, id);
  }

  /** Continues a saved migration; `code`, `pin`, `confirm`, `resend` feed it what it waits for. */
  async resume(id: string, req: ResumeRequest = {}): Promise<MigrationView> {
    try {
      return await this.#resume(id, req);
    } finally {
      await req.lease?.release(); // a claimed lease is the run's to release, even on bad input
    }
  }

  async #resume(id: string, req: ResumeRequest): Promise<MigrationView> {
    parseMigrationId(id);
    const code = req.code !== undefined ? parseCode(req.code) : undefined;
    const pin = req.pin !== undefined ? parsePin(req.pin) : undefined;
    const confirm = (req.confirm ?? []).map((c) => parseCheckName(c));
    const resendMethod = typeof req.resend === 'object' && req.resend.method ? parseCodeMethod(req.resend.method) : undefined;
    new GraphClient({ token: this.#opts.token ?? '', baseUrl: this.#opts.graphUrl, apiVersion: this.#opts.apiVersion });
    // Unknown, damaged, or asked something it cannot do: refused by a read, before the lock on a
    // store whose locks are files (a lock file stays), under it on one whose locks leave nothing.
    const checkResend = (doc: MigrationDocument) => {
      if (!req.resend) return;
      if (doc.state !== 'awaiting_code') throw new WrongStateError(doc.state, `migration ${id} is in ${doc.state}: a code can be resent only while awaiting_code`);
      const allowed = (doc.snapshot.context as MigrationContext).code?.resendAllowedAt ?? 0;
      if (Date.now() < allowed) throw new ResendTooSoonError(new Date(allowed));
    };
    let leases: Lease[];
    let handle: DocumentHandle | null = null;
    if (req.lease) {
      // Claimed by a worker: the migration's lock is ours already; read under it, then the number's.
      leases = [req.lease];
      try {
        handle = await this.store.open(id);
        leases.push(await this.store.lockNumber(handle.data.input.phone, { with: req.lease }));
      } catch (e) {
        await releaseAll(leases);
        throw e;
      }
    } else if (this.store.ephemeralLocks) {
      // Locks that leave nothing behind: take the migration's first, then read it once under it
      // (a read before the lock would be repeated under it anyway: a whole document and its
      // history), then its number's. Nothing is written for an unknown or finished migration.
      let first: Lease;
      try {
        first = await this.store.lock(id);
      } catch (e) {
        // Held elsewhere: a finished migration is still only read; an unknown one is not found.
        if (e instanceof MigrationLockedError) {
          const before = await this.store.load(id);
          if (FINAL.has(before.state)) return toView(before);
          checkResend(before);
        }
        throw e;
      }
      leases = [first];
      try {
        handle = await this.store.open(id);
        if (FINAL.has(handle.data.state)) {
          await releaseAll(leases);
          return toView(handle.data);
        }
        checkResend(handle.data);
        leases.push(await this.store.lockNumber(handle.data.input.phone, { with: first }));
      } catch (e) {
        await releaseAll(leases);
        throw e;
      }
    } else {
      const before = await this.store.load(id);
      // A finished migration has nothing to do: resuming it is a read, never a write.
      if (FINAL.has(before.state)) return toView(before);
      checkResend(before);
      leases = await this.#lockBoth(id, before.input.phone);
    }
    try {
      handle ??= await this.store.open(id);
      if (FINAL.has(handle.data.state)) return toView(handle.data);
      checkResend(handle.data); // again, under the lock
      const ledger = await this.#numberUnderLock(handle.data.input.phone, id);
      return await this.#drive(handle, true, {
        leases,
        ledger,
        code,
        pin,
        confirm,
        resend: req.resend ? { method: resendMethod } : undefined,
        override: req.overrideRegisterLimit === true,
        retry: true,
        groupChecks: req.groupChecks,
      });
    } finally {
      await releaseAll(leases);
    }
  }

  submitCode(id: string, code: string, pin?: string): Promise<MigrationView> {
    return this.resume(id, { code, ...(pin ? { pin } : {}) });
  }

  resendCode(id: string, method?: CodeMethod | string): Promise<MigrationView> {
    return this.resume(id, { resend: method ? { method } : true });
  }

  confirmCheck(id: string, check: CheckName | string): Promise<MigrationView> {
    return this.resume(id, { confirm: [check] });
  }

  async cancel(id: string, reason?: string): Promise<MigrationView> {
    parseMigrationId(id);
    const checkLive = (doc: MigrationDocument) => {
      if (FINAL.has(doc.state)) throw new WrongStateError(doc.state, `migration ${id} is already ${doc.state}`);
    };
    checkLive(await this.store.load(id));
    const lease = await this.store.lock(id);
    try {
      const handle = await this.store.open(id);
      checkLive(handle.data);
      return await this.#drive(handle, true, { cancel: reason ?? 'cancelled by operator', leases: [lease] });
    } finally {
      await lease.release();
    }
  }

  get(id: string): Promise<MigrationView> {
    return getView(this.store, id);
  }

  history(id: string): Promise<HistoryEntry[]> {
    return getHistory(this.store, id);
  }

  /** Every readable migration's view; a damaged document is passed to `onProblem`, not listed. */
  list(onProblem?: (e: StateDocumentError) => void): Promise<MigrationView[]> {
    return listViews(this.store, onProblem);
  }

  // ---- the driver ----------------------------------------------------------------------------

  async #drive(
    handle: DocumentHandle,
    restored: boolean,
    cmd: {
      code?: string | undefined;
      pin?: string | undefined;
      confirm?: CheckName[];
      resend?: { method?: CodeMethod | undefined } | undefined;
      override?: boolean;
      retry?: boolean;
      cancel?: string;
      webhookUrl?: string;
      /** The locks this run holds: each is checked before every request that changes Meta. */
      leases: Lease[];
      ledger?: NumberLedger;
      groupChecks?: GroupChecks | undefined;
    },
  ): Promise<MigrationView> {
    const signal = this.#opts.signal;
    if (signal?.aborted) {
      // A new migration never saved has no state to resume from (and no view to show).
      if (!restored && handle.data.history.length === 0) throw new StartStoppedError(handle.data.id, signal.reason);
      throw new RunInterruptedError(toView(handle.data), signal.reason);
    }
    const doc = handle.data;
    const op = this.#opts.onprem ?? {};
    const secrets: Secrets = {
      code: cmd.code,
      pin: cmd.pin,
      ...(op.backupPassword ? { backupPassword: op.backupPassword } : {}),
      ...(op.webhookVerifyToken ? { webhookVerifyToken: op.webhookVerifyToken } : {}),
      ...((cmd.webhookUrl ?? op.webhookUrl) ? { webhookUrl: cmd.webhookUrl ?? op.webhookUrl } : {}),
    };
    const pendingCalls: CallSummary[] = [];
    const restoredIntent: Intent | null = restored ? ((doc.snapshot.context as MigrationContext).intent ?? null) : null;
    let queue: Promise<void> = Promise.resolve();
    let writeQueued = false;
    const pendingEntries: { from: StateName | null; to: StateName; entry: HistoryEntry }[] = [];
    let persistError: unknown = null;
    const notifier = this.#opts.notify ? new RunNotifier(doc, { ...this.#opts.notify, ...(signal ? { signal } : {}) }, this.store) : null;

    // Meta counts a call against the WABA it touches: the WABAs and businesses by their own id,
    // everything else this migration calls (its phone number ids) against the destination WABA.
    const own = new Set([doc.input.sourceWabaId, doc.input.destWabaId, doc.input.businessId, cmd.groupChecks?.result.businessId].filter((x): x is string => Boolean(x)));
    const rateScope = (id: string) => (own.has(id) ? id : doc.input.destWabaId);
    // A cancel makes no Graph call: it gets the inert machine and no client at all.
    const deps: StepDeps | null = cmd.cancel
      ? null
      : {
          client: this.graphClient({
            ...(signal ? { signal } : {}),
            rateScope,
            onCall: (c) => {
              pendingCalls.push(c);
              this.#opts.onCall?.(c);
            },
            ...(this.#opts.onWait
              ? {
                  onBudgetWait: (b: { key: string; until: number; code: number | null }) =>
                    this.#opts.onWait?.({ id: doc.id, kind: 'rate_limit', step: doc.state, until: b.until, error: { kind: 'graph', message: throttleMessage(b.key, b.until), httpStatus: null, code: b.code } }),
                }
              : {}),
          }),
          secrets,
          onprem:
            doc.input.from === 'onprem' && doc.input.onpremUrl
              ? new OnPremClient({
                  baseUrl: doc.input.onpremUrl,
                  auth: op.token ? { token: op.token } : op.user && op.password ? { user: op.user, password: op.password } : null,
                  timeoutMs: this.#opts.timeoutMs,
                  dispatcher: this.#opts.dispatcher,
                  onCall: (c) => {
                    pendingCalls.push(c);
                    this.#opts.onCall?.(c);
                  },
                })
              : null,
          ...(cmd.groupChecks ? { groupChecks: cmd.groupChecks } : {}),
          durable: async () => {
            // Let the transition that recorded the intent reach the persist queue, then wait for it.
            await new Promise((r) => setImmediate(r));
            await queue;
            if (persistError) throw persistError;
            // The last gate before a request that changes Meta's state: still ours? If not, this
            // process stops here: nothing more is sent and nothing more is written.
            try {
              for (const l of cmd.leases) await l.assertHeld({ beforeRequest: true });
            } catch (e) {
              persistError = e;
              wake();
              throw e;
            }
          },
          mustReconcile: (i) => i.attempt > 1 || (restoredIntent !== null && restoredIntent.seq === i.seq && restoredIntent.attempt === i.attempt),
          wasInFlight: (i) => restoredIntent !== null && restoredIntent.seq === i.seq && restoredIntent.attempt === i.attempt,
        };
    const machine = cmd.cancel ? INERT_MACHINE : LIVE_MACHINE;

    let actor!: Actor<typeof LIVE_MACHINE>;
    let last: MachineSnap | null = null;
    let wake: () => void = () => {};
    let initialEvent: HistoryEntry['event'] | null = restored
      ? { type: 'resume' }
      : { type: 'start', phone: doc.input.phone, confirmations: doc.input.confirmations.map((c) => ({ check: c.check, by: c.by, at: c.at })) };

    const persist = (snapshot: MachineSnap, event: { type: string } & Record<string, unknown>) => {
      const from: StateName | null = doc.history.length ? doc.state : null;
      const to = stateName(snapshot.value);
      const entry: HistoryEntry = {
        n: doc.history.length + 1,
        at: new Date().toISOString(),
        from,
        to,
        event: initialEvent ?? describeEvent(event),
        calls: pendingCalls.splice(0),
        by: this.#operator,
      };
      initialEvent = null;
      doc.state = to;
      doc.updatedAt = entry.at;
      doc.snapshot = actor.getPersistedSnapshot() as unknown as MigrationDocument['snapshot'];
      doc.history.push(entry);
      if (this.#opts.notify || doc.outbox) addTransitionEvents(doc, from, to, entry); // same write as the transition
      // One write carries every transition made before it started: a transition that arrives
      // while a write is still waiting its turn rides along with it instead of queueing another.
      pendingEntries.push({ from, to, entry });
      if (writeQueued) return;
      writeQueued = true;
      queue = queue.then(async () => {
        // One tick's grace: transitions of the same burst (a resume and the event it feeds)
        // share this write; each still reaches disk before anything acts on it.
        await new Promise((r) => setImmediate(r));
        writeQueued = false;
        const written = pendingEntries.splice(0);
        if (persistError) return;
        // Durable (fsynced) when it matters: an intent is outstanding (a request that changes
        // Meta's state follows) or the run may stop here waiting for a person or a timer.
        const ctx = doc.snapshot.context as MigrationContext;
        const durable = ctx.intent !== null || RESTING.has(doc.state) || doc.state === 'waiting_retry' || ctx.hold !== null;
        const carried = doc.outbox?.at(-1)?.seq ?? 0; // events this write is sure to carry: only those may be sent
        try {
          // A process that lost its lock never writes again.
          for (const l of cmd.leases) await l.assertHeld({ beforeWrite: true });
          await handle.save({ durable });
        } catch (e) {
          persistError = e;
          wake();
          return;
        }
        notifier?.kick(carried);
        if (this.#opts.onTransition) {
          const view = toView(doc);
          for (const w of written) this.#opts.onTransition({ id: doc.id, from: w.from, to: w.to, event: w.entry.event.type, entry: w.entry, view });
        }
      });
    };

    const inspect = (ev: InspectionEvent) => {
      if (ev.type !== '@xstate.snapshot' || ev.actorRef !== actor) return;
      const snap = ev.snapshot as unknown as MachineSnap;
      // Stopping the actor at the end of a run is not a transition of the migration.
      if (snap.status === 'stopped' || (ev.event as { type: string }).type === 'xstate.stop') return;
      if (last && last.value === snap.value && last.context === snap.context) return;
      // A restored actor's first snapshot is the stored one: record the resume without a change.
      last = snap;
      if (persistError) return;
      persist(snap, ev.event as { type: string } & Record<string, unknown>);
      wake();
    };

    actor = restored
      ? createActor(machine, { snapshot: doc.snapshot as never, input: doc.input, inspect })
      : createActor(machine, { input: doc.input, inspect });
    if (deps) DEPS_BY_SYSTEM.set(actor.system, deps);

    let timer: NodeJS.Timeout | null = null;
    // An operator's resume retries a migration that *starts* blocked or failed; one that fails
    // during this run stops there (a permanent error is not retried blindly).
    const startedIn = restored ? doc.state : null;
    const once = { retry: cmd.retry === true && (startedIn === 'blocked' || startedIn === 'failed'), resend: cmd.resend, override: cmd.override === true, confirm: cmd.confirm ?? [], cancel: cmd.cancel };
    const maxWait = this.#opts.maxWaitMs ?? 60_000;

    /** Decides the next event when the machine waits; returns true when this run is over. */
    const step = (): boolean => {
      const snap = actor.getSnapshot();
      if (snap.status === 'error') throw snap.error;
      const state = stateName(snap.value);
      const ctx = snap.context;
      if (once.confirm.length) {
        for (const check of once.confirm.splice(0)) actor.send({ type: 'CONFIRM_CHECK', check, by: this.#operator, at: new Date().toISOString() });
        return false;
      }
      if (once.cancel) {
        const reason = once.cancel;
        once.cancel = undefined;
        actor.send({ type: 'CANCEL', by: this.#operator, reason });
        return false;
      }
      if (FINAL.has(state)) return true;
      if (state === 'awaiting_code') {
        if (secrets.code) {
          actor.send({ type: 'CODE_SUBMITTED' });
          return false;
        }
        if (once.resend) {
          const { method } = once.resend;
          once.resend = undefined;
          actor.send({ type: 'RESEND_CODE', ...(method ? { method } : {}) });
          return false;
        }
        return true;
      }
      if (state === 'registering' && ctx.hold) {
        if (ctx.hold === 'pin' && secrets.pin) {
          actor.send({ type: 'PIN_PROVIDED' });
          return false;
        }
        if (ctx.hold === 'register_limit' && once.override) {
          once.override = false;
          actor.send({ type: 'OVERRIDE_REGISTER_LIMIT', by: this.#operator, at: new Date().toISOString() });
          return false;
        }
        return true;
      }
      if (state === 'blocked' || state === 'failed') {
        if (once.retry) {
          once.retry = false;
          actor.send({ type: 'RETRY' });
          return false;
        }
        return true;
      }
      if (state === 'waiting_retry' && ctx.retry) {
        const wait = ctx.retry.retryAt - Date.now();
        if (wait > maxWait) return true;
        if (!timer) {
          timer = setTimeout(() => {
            timer = null;
            actor.send({ type: 'RETRY' });
          }, Math.max(0, wait));
          this.#opts.onWait?.({ id: doc.id, kind: 'retry', step: ctx.retry.step, until: ctx.retry.retryAt, error: ctx.retry.error });
        }
        return false;
      }
      return false; // a step is running: wait for its transition
    };

    let interrupted = false;
    let onAbort: (() => void) | null = null;
    try {
      actor.start();
      // Meta counts register calls per number: tell the machine what other migrations spent.
      const ledger = cmd.ledger;
      if (ledger && (ledger.registerCalls.length || ledger.blockedUntil !== null)) {
        const cur = actor.getSnapshot().context.numberLedger ?? null;
        if (JSON.stringify(cur) !== JSON.stringify(ledger)) actor.send({ type: 'NUMBER_LEDGER', ledger });
      }
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        if (signal) {
          onAbort = () => {
            if (settled) return;
            settled = true;
            interrupted = true;
            // Stop where it stands: no further transition is recorded and no new request starts
            // (the client refuses once the signal is aborted).
            actor.stop();
            resolve();
          };
          signal.addEventListener('abort', onAbort, { once: true });
        }
        wake = () => {
          if (settled) return;
          // Evaluate after the current macrostep has finished.
          queueMicrotask(() => {
            if (settled) return;
            if (persistError) {
              settled = true;
              reject(persistError);
              return;
            }
            try {
              const snap = actor.getSnapshot();
              const name = stateName(snap.value);
              const resting = RESTING.has(name) || name === 'waiting_retry' || (name === 'registering' && snap.context.hold !== null) || snap.status !== 'active';
              if (resting && step()) {
                settled = true;
                resolve();
              }
            } catch (e) {
              settled = true;
              reject(e);
            }
          });
        };
        wake();
      });
    } finally {
      // A call of a step that already failed (a sibling in a Promise.all) must not retry after the run.
      deps?.client.close();
      if (timer) clearTimeout(timer);
      if (signal && onAbort) signal.removeEventListener('abort', onAbort);
      actor.stop();
      await queue;
      // Delivery state is written only while the locks are still ours (never over another holder's writes).
      if (!persistError) await notifier?.finish(async () => { for (const l of cmd.leases) await l.assertHeld(); await handle.save(); });
      else await notifier?.abandon();
    }
    if (persistError) throw persistError;
    if (interrupted) throw new RunInterruptedError(toView(doc), signal?.reason);
    return toView(doc);
  }
}

/** Releases every lease at once (a store may release locks of one session in one round trip);
 *  each is released even when another fails, and the first failure is then thrown. */
async function releaseAll(leases: Lease[]): Promise<void> {
  const failed = (await Promise.allSettled([...leases].reverse().map((l) => l.release()))).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** Validates a start request into the stored, secret-free input. Throws InputError. */
export function buildInput(req: StartRequest, operator: string): MigrationInput {
  if (req.from === 'onprem') return buildOnPremInput(req, operator);
  if (req.from !== undefined && req.from !== 'waba') throw new InputError('from', `must be "waba" or "onprem", not ${JSON.stringify(req.from)}`);
  const phone = parsePhone(req.phone, 'phone');
  const sourceWabaId = parseGraphId(req.sourceWabaId, 'source-waba');
  const destWabaId = parseGraphId(req.destWabaId, 'dest-waba');
  if (sourceWabaId === destWabaId) throw new InputError('dest-waba', 'is the same as --source-waba: the number must move to a different WABA');
  const businessId = req.businessId === undefined || req.businessId === null ? null : parseGraphId(req.businessId, 'business');
  const id = req.id !== undefined ? parseMigrationId(req.id, 'id') : generateId(phone.e164);
  const at = new Date().toISOString();
  const policy: Policy = { ...DEFAULT_POLICY, ...(req.policy ?? {}) };
  for (const [k, v] of Object.entries(policy)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InputError(`policy.${k}`, 'must be a non-negative number');
  }
  return {
    id,
    phone: phone.e164,
    cc: phone.cc,
    nationalNumber: phone.nationalNumber,
    sourceWabaId,
    destWabaId,
    businessId,
    codeMethod: req.codeMethod !== undefined ? parseCodeMethod(req.codeMethod) : 'SMS',
    language: req.language !== undefined ? parseLanguage(req.language) : 'en_US',
    verifiedName: parseVerifiedName(req.verifiedName),
    policy,
    confirmations: [...new Set((req.confirm ?? []).map((c) => parseCheckName(c)))].map((check) => ({ check, by: operator, at })),
  };
}

/** The On-Premises path: one WABA (the number stays in it), the client's URL, what to carry. */
function buildOnPremInput(req: StartRequest, operator: string): MigrationInput {
  const waba = parseGraphId(req.waba ?? req.destWabaId ?? req.sourceWabaId, 'waba');
  if (typeof req.onpremUrl !== 'string' || !req.onpremUrl) throw new InputError('onprem-url', 'is required with --from onprem: the On-Premises client’s base URL, e.g. https://wa.example.com:9090');
  try {
    assertSafeOnPremUrl(req.onpremUrl);
  } catch (e) {
    throw new InputError('onprem-url', (e as Error).message);
  }
  if (typeof req.carryWebhook === 'string') {
    let u: URL | null = null;
    try {
      u = new URL(req.carryWebhook);
    } catch {
      /* below */
    }
    if (!u || u.protocol !== 'https:') throw new InputError('carry-webhook', 'must be an https URL (Meta sends webhooks over https only)');
  }
  const base = buildInput({ ...req, from: 'waba', sourceWabaId: waba, destWabaId: '1', codeMethod: undefined }, operator);
  return {
    ...base,
    destWabaId: waba,
    from: 'onprem',
    onpremUrl: req.onpremUrl,
    // The URL the operator gave may hold a secret in its query: stored redacted, used from memory.
    carryWebhook: req.carryWebhook ? { url: typeof req.carryWebhook === 'string' ? redactUrl(req.carryWebhook) : null } : null,
    ...(req.carrySettings === true ? { carrySettings: true } : {}),
  };
}

function generateId(e164: string): string {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `m-${e164.slice(1)}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

export type { MigrationEvent };

/** Register calls and 133016 blocks of this number's other migrations (Meta counts per number). */
function ledgerOf(docs: MigrationDocument[], id: string): NumberLedger {
  const ledger: NumberLedger = { registerCalls: [], blockedUntil: null };
  for (const d of docs) {
    if (d.id === id) continue;
    const ctx = d.snapshot.context as Partial<MigrationContext>;
    ledger.registerCalls.push(...(ctx.registerCalls ?? []));
    const b = ctx.registerBlockedUntil ?? null;
    if (b !== null) ledger.blockedUntil = Math.max(ledger.blockedUntil ?? 0, b);
  }
  ledger.registerCalls.sort((a, b) => a - b);
  return ledger;
}
