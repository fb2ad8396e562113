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
import { DEFAULT_POLICY, type ChecksOutput, type ConfirmOutput, type CheckName, type CodeMethod, type Intent, type MigrationInput, type Policy } from '../../machines/types.js';
import { GraphClient, type CallSummary } from '../graph/client.js';
import { buildActors, type Secrets, type StepDeps } from '../steps/index.js';
import { SCHEMA_VERSION, type HistoryEntry, type MigrationDocument, type StateDocumentError } from '../store/document.js';
import { DuplicateMigrationError, type DocumentHandle, type MigrationStore } from '../store/store.js';
import { InputError, parseCheckName, parseCode, parseCodeMethod, parseGraphId, parseLanguage, parseMigrationId, parsePhone, parsePin, parseVerifiedName } from './validate.js';
import { getHistory, getView, listViews } from './read.js';
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
}

export interface ResumeRequest {
  code?: string;
  pin?: string;
  confirm?: string[];
  resend?: boolean | { method?: string };
  overrideRegisterLimit?: boolean;
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
      return { type, checks: Object.fromEntries(checks.map((c) => [c.name, c.status])), existing: out.existing ?? null };
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

  constructor(opts: EngineOptions) {
    this.store = opts.store;
    this.#opts = opts;
    this.#operator = opts.operator ?? safeUser();
  }

  // ---- library API ---------------------------------------------------------------------------

  /** Validates, creates and runs a new migration as far as it can go (normally `awaiting_code`). */
  async start(req: StartRequest): Promise<MigrationView> {
    const input = buildInput(req, this.#operator);
    const pin = req.pin !== undefined ? parsePin(req.pin) : undefined;
    new GraphClient({ token: this.#opts.token ?? '', baseUrl: this.#opts.graphUrl }); // validates token and URL before anything is written
    // A taken id is bad input: refuse it before the lock touches the directory (checked again
    // under the lock by store.create, for a race with another process).
    if (await this.store.exists(input.id)) throw new DuplicateMigrationError(input.id);
    const release = await this.store.lock(input.id);
    try {
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
      };
      const handle = await this.store.create(doc);
      return await this.#drive(handle, false, { pin });
    } finally {
      await release();
    }
  }

  /** Continues a saved migration; `code`, `pin`, `confirm`, `resend` feed it what it waits for. */
  async resume(id: string, req: ResumeRequest = {}): Promise<MigrationView> {
    parseMigrationId(id);
    const code = req.code !== undefined ? parseCode(req.code) : undefined;
    const pin = req.pin !== undefined ? parsePin(req.pin) : undefined;
    const confirm = (req.confirm ?? []).map((c) => parseCheckName(c));
    const resendMethod = typeof req.resend === 'object' && req.resend.method ? parseCodeMethod(req.resend.method) : undefined;
    new GraphClient({ token: this.#opts.token ?? '', baseUrl: this.#opts.graphUrl });
    // Unknown, damaged, or asked something it cannot do: refuse before the lock touches anything.
    const checkResend = (doc: MigrationDocument) => {
      if (!req.resend) return;
      if (doc.state !== 'awaiting_code') throw new WrongStateError(doc.state, `migration ${id} is in ${doc.state}: a code can be resent only while awaiting_code`);
      const allowed = (doc.snapshot.context as MigrationContext).code?.resendAllowedAt ?? 0;
      if (Date.now() < allowed) throw new ResendTooSoonError(new Date(allowed));
    };
    checkResend(await this.store.load(id));
    const release = await this.store.lock(id);
    try {
      const handle = await this.store.open(id);
      checkResend(handle.data); // again, under the lock
      return await this.#drive(handle, true, {
        code,
        pin,
        confirm,
        resend: req.resend ? { method: resendMethod } : undefined,
        override: req.overrideRegisterLimit === true,
        retry: true,
      });
    } finally {
      await release();
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
    const release = await this.store.lock(id);
    try {
      const handle = await this.store.open(id);
      checkLive(handle.data);
      return await this.#drive(handle, true, { cancel: reason ?? 'cancelled by operator' });
    } finally {
      await release();
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
    },
  ): Promise<MigrationView> {
    const doc = handle.data;
    const secrets: Secrets = { code: cmd.code, pin: cmd.pin };
    const pendingCalls: CallSummary[] = [];
    const restoredIntent: Intent | null = restored ? ((doc.snapshot.context as MigrationContext).intent ?? null) : null;
    let queue: Promise<void> = Promise.resolve();
    let writeQueued = false;
    const pendingEntries: { from: StateName | null; to: StateName; entry: HistoryEntry }[] = [];
    let persistError: unknown = null;

    // A cancel makes no Graph call: it gets the inert machine and no client at all.
    const deps: StepDeps | null = cmd.cancel
      ? null
      : {
          client: new GraphClient({
            token: this.#opts.token ?? '',
            baseUrl: this.#opts.graphUrl,
            apiVersion: this.#opts.apiVersion,
            dispatcher: this.#opts.dispatcher,
            timeoutMs: this.#opts.timeoutMs,
            onCall: (c) => {
              pendingCalls.push(c);
              this.#opts.onCall?.(c);
            },
          }),
          secrets,
          durable: async () => {
            // Let the transition that recorded the intent reach the persist queue, then wait for it.
            await new Promise((r) => setImmediate(r));
            await queue;
            if (persistError) throw persistError;
          },
          mustReconcile: (i) => i.attempt > 1 || (restoredIntent !== null && restoredIntent.seq === i.seq && restoredIntent.attempt === i.attempt),
        };
    const machine = cmd.cancel ? INERT_MACHINE : LIVE_MACHINE;

    let actor!: Actor<typeof LIVE_MACHINE>;
    let last: MachineSnap | null = null;
    let wake: () => void = () => {};
    let initialEvent: HistoryEntry['event'] | null = restored
      ? { type: 'resume' }
      : { type: 'start', confirmations: doc.input.confirmations.map((c) => ({ check: c.check, by: c.by, at: c.at })) };

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
        try {
          await handle.save({ durable });
        } catch (e) {
          persistError = e;
          wake();
          return;
        }
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
        }
        return false;
      }
      return false; // a step is running: wait for its transition
    };

    try {
      actor.start();
      await new Promise<void>((resolve, reject) => {
        let settled = false;
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
      if (timer) clearTimeout(timer);
      actor.stop();
      await queue;
    }
    if (persistError) throw persistError;
    return toView(doc);
  }
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

function generateId(e164: string): string {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `m-${e164.slice(1)}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

export type { MigrationEvent };
