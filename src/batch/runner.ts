/**
 * Batches: many numbers as one piece of work. A batch is a stored record (rows → migration ids,
 * written before any migration starts), so `batch start` killed half-way and run again with the
 * same id continues; every row maps to one deterministic migration id, and the engine's
 * per-number lock keeps one live migration per number, so nothing is created twice.
 *
 * The prerequisite checks that belong to a (business, source, destination) group run once per
 * group per batch run and are shared (see {@link GroupCheckCache}); per-number work stays per number.
 */
import { userInfo } from 'node:os';
import type { StateName } from '../../machines/migration.js';
import type { Policy } from '../../machines/types.js';
import { throttleMessage } from '../graph/rate-budget.js';
import { buildInput, MigrationEngine, type EngineOptions, type StartRequest } from '../runner/engine.js';
import { InputError, parseCode, parseMigrationId, parsePin } from '../runner/validate.js';
import { nextAction, toView, type MigrationView } from '../runner/view.js';
import { runGroupChecks, type GroupChecks } from '../steps/checks.js';
import { UNFINISHED, type BatchRecord, type BatchRow, type GroupCheck, type MigrationDocument } from '../store/document.js';
import { ID_PATTERN, type Lease, type MigrationStore } from '../store/store.js';
import { NOT_SHARING, shareThrottles, type ThrottleSharing } from './throttles.js';
import { addBatchCompleted, countStates } from '../notify/events.js';
import { batchStatus, listBatches, needOf, type BatchRowStatus, type BatchSummary, type Need } from './read.js';
export { needOf, type BatchRowStatus, type BatchSummary, type Need };
import { BATCH_COLUMNS, BatchInputError, batchRowProblems, CODE_COLUMNS, parseYesNo, readRows, requiredFor, rowFrom, rowProblem, type RowProblem } from './input.js';

/** A batch row with everything needed to start its migration after a crash (no secrets). */
export interface FleetRow extends BatchRow {
  codeMethod?: string;
  language?: string;
  verifiedName?: string | null;
  confirm?: string[];
  /** Issue 12: a number on an On-Premises client (it stays in its WABA: source = destination). */
  from?: 'onprem';
  onpremUrl?: string;
  carryWebhook?: boolean;
  carrySettings?: boolean;
}

/** The rows of a batch that move off an On-Premises client (they need its secrets to run). */
export const onPremRows = (rows: BatchRow[]): FleetRow[] => (rows as FleetRow[]).filter((r) => r.from === 'onprem');

export type BatchEvent =
  | { type: 'row'; batch: string; line: number; phone: string; migrationId: string; state: StateName | 'pending'; view?: MigrationView; error?: string; errorName?: string }
  | { type: 'group'; batch: string; key: string; ref: string; ok: boolean; error?: string }
  | { type: 'throttle'; batch: string; waba: string; until: number; message: string };

export interface BatchRunnerOptions extends EngineOptions {
  /** Migrations run at once (default 8). */
  concurrency?: number;
  /** Per-row and per-group events, as they happen. */
  onEvent?: (e: BatchEvent) => void;
}

/** What a row needs from a person, if anything. */
export interface CodeRowResult {
  line: number;
  migrationId: string;
  phone: string;
  /** `refused`: Meta did not accept the code (wrong or expired); the migration still waits for one. */
  outcome: 'submitted' | 'skipped' | 'refused' | 'error';
  state: StateName | null;
  detail: string;
}

const operatorName = () => {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
};

export const groupKey = (r: { businessId: string | null; sourceWabaId: string; destWabaId: string }) => `${r.businessId ?? 'auto'}:${r.sourceWabaId}:${r.destWabaId}`;

/**
 * Runs each group's shared checks once (per instance = per batch run or worker run) and hands the
 * same result to every number of the group. A transient failure is not cached: the numbers then
 * run their own checks, and the machine's retry rules apply.
 */
export class GroupCheckCache {
  readonly #cache = new Map<string, Promise<GroupChecks | null>>();
  readonly #born = new Map<string, number>();
  /**
   * `snapshotDest`: also list the destination's numbers once (a batch run, which starts numbers
   * that are not there yet). `ttlMs`: how long a result is reused (a long-running worker re-checks).
   */
  constructor(
    private readonly engine: MigrationEngine,
    private readonly onResult?: (g: GroupCheck, ref: string) => Promise<void> | void,
    private readonly refPrefix = 'run',
    private readonly opts: { snapshotDest?: boolean; ttlMs?: number } = {},
  ) {}

  get(row: { businessId: string | null; sourceWabaId: string; destWabaId: string }): Promise<GroupChecks | null> {
    const key = groupKey(row);
    let p = this.#cache.get(key);
    const born = this.#born.get(key) ?? 0;
    if (p && this.opts.ttlMs !== undefined && Date.now() - born > this.opts.ttlMs) p = undefined;
    if (!p) {
      this.#born.set(key, Date.now());
      p = (async () => {
        const at = new Date().toISOString();
        try {
          const client = this.engine.graphClient();
          const [result, destNumbers, sourceNumbers] = await Promise.all([
            runGroupChecks(client, row),
            this.opts.snapshotDest ? client.listPhoneNumbers(row.destWabaId) : Promise.resolve(undefined),
            // A source WABA we cannot list (another BSP's) leaves each number to look for itself.
            this.opts.snapshotDest ? client.listPhoneNumbers(row.sourceWabaId).catch(() => undefined) : Promise.resolve(undefined),
          ]);
          if (destNumbers) result.destNumbers = destNumbers;
          if (sourceNumbers) result.sourceNumbers = sourceNumbers;
          const ref = `${this.refPrefix}#${key}@${at}`;
          // The record keeps the checks, not the number list (memory only).
          await this.onResult?.({ key, at, businessId: result.businessId, sourceWabaId: row.sourceWabaId, destWabaId: row.destWabaId, checks: result.checks, requestedBusinessId: row.businessId, ref } as GroupCheck, ref);
          return { ref, sourceWabaId: row.sourceWabaId, destWabaId: row.destWabaId, requestedBusinessId: row.businessId, result };
        } catch {
          this.#cache.delete(key);
          return null;
        }
      })();
      this.#cache.set(key, p);
    }
    return p;
  }
}

/** States in which a run has nothing to do without a person (or a secret this run lacks). */
function restsFor(doc: MigrationDocument, hasPin: boolean): boolean {
  const ctx = doc.snapshot.context as { hold?: string | null };
  if (doc.state === 'awaiting_code') return true;
  if (doc.state === 'registering' && ctx.hold === 'register_limit') return true;
  if (doc.state === 'registering' && ctx.hold === 'pin' && !hasPin) return true;
  return !UNFINISHED(doc.state);
}


/** A row the stop reached before its run began: as it was (no document: it stays `pending`). */
function notStarted(batchId: string, doc: MigrationDocument | null): MigrationView {
  if (doc) return toView(doc);
  throw new Error(`stopped before this row started; nothing was sent: waba-migrate batch resume ${batchId} starts it`);
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>, stop?: () => boolean): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
      while (next < items.length && !stop?.()) await fn(items[next++]!);
    }),
  );
}

export class BatchRunner {
  readonly engine: MigrationEngine;
  readonly store: MigrationStore;
  readonly #opts: BatchRunnerOptions;
  readonly #operator: string;
  #throttles: ThrottleSharing = NOT_SHARING;

  constructor(opts: BatchRunnerOptions) {
    this.#opts = opts;
    this.engine = new MigrationEngine(opts);
    this.store = opts.store;
    this.#operator = opts.operator ?? operatorName();
  }

  #emit(e: BatchEvent): void {
    this.#opts.onEvent?.(e);
  }

  // ---- validation -----------------------------------------------------------------------------

  /**
   * Reads and validates a batch file against the store; returns the record it would write.
   * Throws BatchInputError (one line per bad row) or InputError; writes nothing.
   */
  async prepare(text: string, opts: { id?: string; name?: string; concurrency?: number; policy?: Partial<Policy> } = {}): Promise<{ record: BatchRecord; existing: BatchRecord | null }> {
    const id = opts.id !== undefined ? parseMigrationId(opts.id, '--id') : generateBatchId();
    const raw = readRows(text, { allowed: BATCH_COLUMNS, required: requiredFor, ...(opts.name ? { name: opts.name } : {}) });
    const width = String(raw.length).length;
    if (!ID_PATTERN.test(`${id}-${'9'.repeat(width)}`)) throw new InputError('--id', `"${id}" is too long for a batch of ${raw.length} rows: its migrations are named <batch id>-<row>; use at most ${63 - width} characters`);
    const problems: RowProblem[] = [];
    const rows: FleetRow[] = [];
    const phones = new Map<string, number>();
    const ids = new Map<string, number>();
    raw.forEach((r, i) => {
      const c = r.cells;
      const migrationId = c.id ?? `${id}-${i + 1}`;
      // What the row's `from` makes wrong in it; a bad `from` leaves nothing else to check.
      const fromProblems = batchRowProblems(r);
      problems.push(...fromProblems);
      if (fromProblems.some((p) => p.column === 'from')) return;
      const onprem = rowFrom(c) === 'onprem';
      const req: StartRequest = {
        phone: c.phone ?? '',
        sourceWabaId: c.source_waba ?? '',
        destWabaId: c.dest_waba ?? '',
        ...(onprem
          ? {
              from: 'onprem' as const,
              waba: c.waba ?? '',
              onpremUrl: c.onprem_url ?? '',
              ...(parseYesNo(c.carry_webhook) ? { carryWebhook: true } : {}),
              ...(parseYesNo(c.carry_settings) ? { carrySettings: true } : {}),
            }
          : {}),
        businessId: c.business ?? null,
        id: migrationId,
        ...(c.code_method ? { codeMethod: c.code_method } : {}),
        ...(c.language ? { language: c.language } : {}),
        verifiedName: c.verified_name ?? null,
        confirm: c.confirm ? c.confirm.split(';').map((s) => s.trim()).filter(Boolean) : [],
        ...(opts.policy ? { policy: opts.policy } : {}),
      };
      // The engine's own validators: a row is valid exactly when `start` would accept it.
      const fields: [string, () => void][] = [['all', () => buildInput(req, this.#operator)]];
      try {
        fields[0]![1]();
      } catch (e) {
        if (e instanceof InputError) {
          problems.push(rowProblem(r.line, e));
          // Report every bad cell of the row, not only the first: check the others one by one.
          for (const [col, probe] of onprem ? ONPREM_ROW_PROBES : ROW_PROBES) {
            if (col === rowProblem(r.line, e).column) continue;
            try {
              probe(req, this.#operator);
            } catch (e2) {
              if (e2 instanceof InputError) problems.push(rowProblem(r.line, e2));
            }
          }
          return;
        }
        throw e;
      }
      const input = buildInput(req, this.#operator);
      const dupPhone = phones.get(input.phone);
      if (dupPhone !== undefined) problems.push({ line: r.line, column: 'phone', message: `${input.phone} is also on line ${dupPhone}: a number can be in a batch once; remove one of the rows` });
      else phones.set(input.phone, r.line);
      const dupId = ids.get(migrationId);
      if (dupId !== undefined) problems.push({ line: r.line, column: 'id', message: `"${migrationId}" is also on line ${dupId}: give each row its own id (or leave id empty)` });
      else ids.set(migrationId, r.line);
      rows.push({
        line: r.line,
        phone: input.phone,
        migrationId,
        sourceWabaId: input.sourceWabaId,
        destWabaId: input.destWabaId,
        businessId: input.businessId,
        codeMethod: input.codeMethod,
        language: input.language,
        verifiedName: input.verifiedName,
        confirm: input.confirmations.map((x) => x.check),
        ...(onprem ? { from: 'onprem' as const, onpremUrl: input.onpremUrl!, ...(req.carryWebhook ? { carryWebhook: true } : {}), ...(req.carrySettings ? { carrySettings: true } : {}) } : {}),
      });
    });

    // Against the store: one pass over every migration (not one per row).
    const live = new Map<string, { id: string; state: StateName }>();
    const taken = new Map<string, { batch: string | null; phone: string }>();
    await this.store.scan((m) => {
      if (!m.doc) return null;
      taken.set(m.doc.id, { batch: (m.doc as { batch?: string | null }).batch ?? null, phone: m.doc.input.phone });
      if (UNFINISHED(m.doc.state)) live.set(m.doc.input.phone, { id: m.doc.id, state: m.doc.state });
      return null;
    });
    for (const row of rows) {
      const t = taken.get(row.migrationId);
      if (t && (t.batch !== id || t.phone !== row.phone))
        problems.push({ line: row.line, column: row.migrationId.startsWith(`${id}-`) ? 'phone' : 'id', message: `migration id "${row.migrationId}" is already used by another migration${t.batch ? ` (batch ${t.batch})` : ''}: give this row another id, or the batch another --id` });
      const other = live.get(row.phone);
      if (other && other.id !== row.migrationId)
        problems.push({ line: row.line, column: 'phone', message: `${row.phone} already has an unfinished migration "${other.id}" (${other.state}): finish it (waba-migrate resume ${other.id}) or cancel it (waba-migrate cancel ${other.id}), or remove this row` });
    }
    if (problems.length) throw new BatchInputError(problems.sort((a, b) => a.line - b.line));

    let existing: BatchRecord | null = null;
    try {
      existing = await this.store.loadBatch(id);
    } catch (e) {
      if ((e as Error).name !== 'BatchNotFoundError') throw e;
    }
    if (existing) {
      const same = (a: BatchRow[], b: BatchRow[]) =>
        a.length === b.length &&
        a.every(
          (x, i) =>
            x.phone === b[i]!.phone &&
            x.migrationId === b[i]!.migrationId &&
            x.sourceWabaId === b[i]!.sourceWabaId &&
            x.destWabaId === b[i]!.destWabaId &&
            x.businessId === b[i]!.businessId &&
            (x as FleetRow).from === (b[i] as FleetRow).from &&
            (x as FleetRow).onpremUrl === (b[i] as FleetRow).onpremUrl,
        );
      if (!same(existing.rows, rows))
        throw new InputError('--id', `a batch "${id}" already exists with other rows: continue it with \`waba-migrate batch resume ${id}\`, or start this file under another --id`);
      if (existing.cancelled) throw new InputError('--id', `batch "${id}" was cancelled on ${existing.cancelled.at}; start this file under another --id`);
    }
    const now = new Date().toISOString();
    const record: BatchRecord = existing ?? {
      schemaVersion: 1,
      id,
      createdAt: now,
      createdBy: this.#operator,
      updatedAt: now,
      options: { concurrency: opts.concurrency ?? this.#opts.concurrency ?? 8, ...(opts.name ? { file: opts.name.split('/').pop() } : {}), ...(opts.policy && Object.keys(opts.policy).length ? { policy: opts.policy } : {}) },
      rows,
      groupChecks: [],
      cancelled: null,
    };
    return { record, existing };
  }

  // ---- operations -----------------------------------------------------------------------------

  /** Validates the file, writes the batch record, then runs every row as far as it goes. */
  async start(text: string, opts: { id?: string; name?: string; concurrency?: number; pin?: string; policy?: Partial<Policy> } = {}): Promise<BatchSummary> {
    const pin = opts.pin !== undefined ? parsePin(opts.pin) : undefined;
    this.engine.graphClient(); // token and URL checked before anything is written
    let { record, existing } = await this.prepare(text, opts);
    const lease = await this.store.lockBatch(record.id);
    try {
      // Under the lock, again: another process may have created (or cancelled) this batch since
      // it was read; validating again then refuses other rows or a cancelled batch, or continues it.
      const now = await this.#loadBatchOrNull(record.id);
      if (now && (!existing || now.cancelled)) ({ record, existing } = await this.prepare(text, { ...opts, id: record.id }));
      // Rows and their migration ids are on disk before the first migration starts.
      if (!existing) await this.store.saveBatch(record);
      await this.#run(record, lease, { pin, concurrency: opts.concurrency });
      await noteBatchFinished(this.store, record.id, lease);
    } finally {
      await lease.release();
    }
    return this.status(record.id);
  }

  /** Continues every row that can move without a person (a killed start, a retry now due). */
  async resume(id: string, opts: { pin?: string; concurrency?: number } = {}): Promise<BatchSummary> {
    parseMigrationId(id, 'batch');
    const pin = opts.pin !== undefined ? parsePin(opts.pin) : undefined;
    this.engine.graphClient();
    const record = await this.store.loadBatch(id);
    if (record.cancelled) throw new InputError('batch', `batch "${id}" was cancelled on ${record.cancelled.at}; nothing to resume`);
    const lease = await this.store.lockBatch(id);
    try {
      // Read again under the lock: a `batch cancel` may have finished between the check and the lock.
      const locked = await this.store.loadBatch(id);
      if (locked.cancelled) throw new InputError('batch', `batch "${id}" was cancelled on ${locked.cancelled.at}; nothing to resume`);
      await this.#run(locked, lease, { pin, concurrency: opts.concurrency });
      await noteBatchFinished(this.store, id, lease);
    } finally {
      await lease.release();
    }
    return this.status(id);
  }

  async #run(record: BatchRecord, lease: Lease, opts: { pin?: string | undefined; concurrency?: number | undefined }): Promise<void> {
    const signal = this.#opts.signal;
    let saving: Promise<void> = Promise.resolve();
    const groups = new GroupCheckCache(
      this.engine,
      (g) => {
        // One writer per batch (we hold its lock): serialise the record's saves.
        saving = saving.then(async () => {
          await lease.assertHeld();
          record.groupChecks = [...record.groupChecks.filter((x) => x.key !== g.key), g];
          record.updatedAt = new Date().toISOString();
          await this.store.saveBatch(record);
        });
        this.#emit({ type: 'group', batch: record.id, key: g.key, ref: (g as GroupCheck & { ref: string }).ref, ok: true });
        return saving;
      },
      `batch:${record.id}`,
      { snapshotDest: true },
    );
    const budget = this.engine.rateBudget;
    const seen = new Set<string>();
    const onThrottle = (t: { key: string; until: number; message: string }) => {
      const k = `${t.key}@${t.until}`;
      if (seen.has(k)) return;
      seen.add(k);
      this.#emit({ type: 'throttle', batch: record.id, waba: t.key, until: t.until, message: t.message });
    };
    budget.on('throttle', onThrottle);
    const sharing = shareThrottles(this.store, budget);
    this.#throttles = sharing;
    const concurrency = opts.concurrency ?? (record.options.concurrency as number | undefined) ?? this.#opts.concurrency ?? 8;
    try {
      await pool(
        record.rows as FleetRow[],
        concurrency,
        async (row) => {
          const ev = { type: 'row' as const, batch: record.id, line: row.line, phone: row.phone, migrationId: row.migrationId };
          try {
            const view = await this.#runRow(record.id, row, groups, opts.pin, record.options.policy as Partial<Policy> | undefined);
            this.#emit({ ...ev, state: view.state, view });
          } catch (e) {
            const name = (e as Error).name;
            const state = name === 'RunInterruptedError' ? (e as { view: MigrationView }).view.state : 'pending';
            this.#emit({ ...ev, state: (await this.#stateOf(row.migrationId)) ?? state, error: (e as Error).message });
          }
        },
        () => signal?.aborted === true,
      );
    } finally {
      budget.off('throttle', onThrottle);
      await sharing.stop();
      await saving;
    }
  }

  async #loadBatchOrNull(id: string): Promise<BatchRecord | null> {
    try {
      return await this.store.loadBatch(id);
    } catch (e) {
      if ((e as Error).name === 'BatchNotFoundError') return null;
      throw e;
    }
  }

  async #stateOf(id: string): Promise<StateName | null> {
    try {
      return (await this.store.load(id)).state;
    } catch {
      return null;
    }
  }

  async #runRow(batchId: string, row: FleetRow, groups: GroupCheckCache, pin: string | undefined, policy: Partial<Policy> | undefined): Promise<MigrationView> {
    let doc: MigrationDocument | null = null;
    try {
      doc = await this.store.load(row.migrationId);
    } catch (e) {
      if ((e as Error).name !== 'MigrationNotFoundError') throw e;
    }
    if (doc && restsFor(doc, pin !== undefined)) return toView(doc);
    // Do not start work on a WABA Meta has paused: wait for the time it gave.
    await this.#admit(row.destWabaId);
    // Stopped meanwhile (Ctrl-C, SIGTERM): this row sends nothing and writes nothing.
    if (this.#opts.signal?.aborted) return notStarted(batchId, doc);
    const needsChecks = !doc || ['checking', 'blocked', 'failed'].includes(doc.state) || (doc.state === 'waiting_retry' && (doc.snapshot.context as { retry?: { step?: string } }).retry?.step === 'checking');
    // The On-Premises path has no group checks (its checks are per number and per client).
    const group = needsChecks && row.from !== 'onprem' ? await groups.get(row) : null;
    if (this.#opts.signal?.aborted) return notStarted(batchId, doc);
    const shared = group ? { groupChecks: group } : {};
    if (!doc) {
      try {
        return await this.engine.start({
          id: row.migrationId,
          phone: row.phone,
          sourceWabaId: row.sourceWabaId,
          destWabaId: row.destWabaId,
          businessId: row.businessId,
          ...(row.codeMethod ? { codeMethod: row.codeMethod } : {}),
          ...(row.language ? { language: row.language } : {}),
          verifiedName: row.verifiedName ?? null,
          confirm: row.confirm ?? [],
          ...(row.from === 'onprem'
            ? { from: 'onprem' as const, waba: row.destWabaId, onpremUrl: row.onpremUrl ?? '', ...(row.carryWebhook ? { carryWebhook: true } : {}), ...(row.carrySettings ? { carrySettings: true } : {}) }
            : {}),
          batch: batchId,
          ...(policy ? { policy } : {}),
          ...(pin ? { pin } : {}),
          ...shared,
        });
      } catch (e) {
        // Another process started it meanwhile: continue it instead.
        if ((e as Error).name !== 'DuplicateMigrationError') throw e;
      }
    }
    return this.engine.resume(row.migrationId, { ...(pin ? { pin } : {}), ...shared });
  }

  async #admit(waba: string): Promise<void> {
    const signal = this.#opts.signal;
    // Pauses other processes learnt from Meta apply here too, before this row's first call.
    await this.#throttles.refresh();
    for (;;) {
      const until = this.engine.rateBudget.pausedUntil(waba);
      if (until === null || signal?.aborted) return;
      await new Promise<void>((r) => {
        const done = () => {
          clearTimeout(t);
          signal?.removeEventListener('abort', done);
          r();
        };
        const t = setTimeout(done, Math.min(until - Date.now(), 2 ** 31 - 1));
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Where every row stands; reads only (no lock, no token): see ./read.ts. */
  status(id: string): Promise<BatchSummary> {
    return batchStatus(this.store, id);
  }

  /** Every batch, oldest first, with its counts (./read.ts). */
  list(): ReturnType<typeof listBatches> {
    return listBatches(this.store);
  }

  /** Marks the batch cancelled (nothing more starts) and cancels every unfinished migration. */
  async cancel(id: string, reason = 'batch cancelled by operator'): Promise<BatchSummary> {
    parseMigrationId(id, 'batch');
    const record = await this.store.loadBatch(id);
    const lease = await this.store.lockBatch(id);
    try {
      record.cancelled ??= { by: this.#operator, at: new Date().toISOString(), reason };
      record.updatedAt = new Date().toISOString();
      await this.store.saveBatch(record);
      await pool(record.rows, this.#opts.concurrency ?? 8, async (row) => {
        try {
          const doc = await this.store.load(row.migrationId);
          if (!UNFINISHED(doc.state)) return;
          const view = await this.engine.cancel(row.migrationId, reason);
          this.#emit({ type: 'row', batch: id, line: row.line, phone: row.phone, migrationId: row.migrationId, state: view.state, view });
        } catch (e) {
          if ((e as Error).name === 'MigrationNotFoundError') return; // never started: the batch mark covers it
          this.#emit({ type: 'row', batch: id, line: row.line, phone: row.phone, migrationId: row.migrationId, state: (await this.#stateOf(row.migrationId)) ?? 'pending', error: (e as Error).message, errorName: (e as Error).name });
        }
      });
    } finally {
      await lease.release();
    }
    return this.status(id);
  }

  /**
   * Submits codes from a file (`phone,code` or `id,code`, optional `pin`). Every row is validated
   * first (exit 2, nothing sent). Codes and PINs stay in memory: never in the store.
   */
  async codes(id: string, text: string, opts: { name?: string; pin?: string; concurrency?: number } = {}): Promise<{ results: CodeRowResult[]; summary: BatchSummary }> {
    parseMigrationId(id, 'batch');
    const defaultPin = opts.pin !== undefined ? parsePin(opts.pin) : undefined;
    this.engine.graphClient();
    const record = await this.store.loadBatch(id);
    if (record.cancelled) throw new InputError('batch', `batch "${id}" was cancelled on ${record.cancelled.at}`);
    const raw = readRows(text, { allowed: CODE_COLUMNS, required: ['code'], source: 'codes file', ...(opts.name ? { name: opts.name } : {}) });
    const byPhone = new Map(record.rows.map((r) => [r.phone, r]));
    const byId = new Map(record.rows.map((r) => [r.migrationId, r]));
    const problems: RowProblem[] = [];
    const jobs: { line: number; row: BatchRow; code: string; pin: string | undefined }[] = [];
    const used = new Map<string, number>();
    for (const r of raw) {
      const c = r.cells;
      let row: BatchRow | undefined;
      if (c.id) {
        row = byId.get(c.id);
        if (!row) problems.push({ line: r.line, column: 'id', message: `"${c.id}" is not a migration of batch ${id}: use the ids shown by \`waba-migrate batch status ${id}\`` });
      } else if (c.phone) {
        const e164 = c.phone.trim().replace(/[\s().-]/g, '');
        row = byPhone.get(e164);
        if (!row) problems.push({ line: r.line, column: 'phone', message: `${c.phone} is not a number of batch ${id}: use the E.164 number as in the batch file` });
      } else problems.push({ line: r.line, column: 'phone', message: 'give the number (phone) or the migration id (id) this code is for' });
      let code: string | undefined;
      try {
        code = parseCode(c.code, 'code');
      } catch (e) {
        if (e instanceof InputError) problems.push(rowProblem(r.line, e));
        else throw e;
      }
      let pin: string | undefined = defaultPin;
      if (c.pin !== undefined) {
        try {
          pin = parsePin(c.pin, 'pin');
        } catch (e) {
          if (e instanceof InputError) problems.push(rowProblem(r.line, e));
          else throw e;
        }
      }
      if (row) {
        const dup = used.get(row.migrationId);
        if (dup !== undefined) problems.push({ line: r.line, column: c.id ? 'id' : 'phone', message: `${row.phone} already has a code on line ${dup}: keep only the latest code` });
        else used.set(row.migrationId, r.line);
      }
      if (row && code) jobs.push({ line: r.line, row, code, pin });
    }
    if (problems.length) throw new BatchInputError(problems, 'codes file');

    const results: CodeRowResult[] = [];
    // Submitting codes drives verify, register and confirm: Meta's pauses are shared here too.
    const sharing = shareThrottles(this.store, this.engine.rateBudget);
    try {
      await pool(jobs, opts.concurrency ?? this.#opts.concurrency ?? 8, async (j) => {
        const base = { line: j.line, migrationId: j.row.migrationId, phone: j.row.phone };
        let doc: MigrationDocument;
        try {
          doc = await this.store.load(j.row.migrationId);
        } catch (e) {
          results.push({ ...base, outcome: 'skipped', state: null, detail: (e as Error).name === 'MigrationNotFoundError' ? 'not started yet: run `batch resume` first' : (e as Error).message });
          return;
        }
        // Verified earlier without a PIN: with one now, it registers (the code is not sent again).
        const pinOnly = doc.state === 'registering' && (doc.snapshot.context as { hold?: string | null }).hold === 'pin' && j.pin !== undefined;
        if (doc.state !== 'awaiting_code' && !pinOnly) {
          results.push({ ...base, outcome: 'skipped', state: doc.state, detail: `not waiting for a code (${doc.state}): ${nextAction(doc)}` });
          return;
        }
        try {
          await sharing.refresh();
          const view = await this.engine.resume(j.row.migrationId, pinOnly ? { pin: j.pin! } : { code: j.code, ...(j.pin ? { pin: j.pin } : {}) });
          // Still waiting for a code after one was given: Meta refused it (wrong or expired).
          if (!pinOnly && view.state === 'awaiting_code') {
            results.push({ ...base, outcome: 'refused', state: view.state, detail: `Meta refused the code (wrong or expired): ${view.nextAction}` });
            this.#emit({ type: 'row', batch: id, ...base, state: view.state, view, error: 'Meta refused the code' });
            return;
          }
          results.push({ ...base, outcome: 'submitted', state: view.state, detail: view.nextAction });
          this.#emit({ type: 'row', batch: id, ...base, state: view.state, view });
        } catch (e) {
          results.push({ ...base, outcome: 'error', state: await this.#stateOf(j.row.migrationId), detail: (e as Error).message });
        }
      });
    } finally {
      await sharing.stop();
    }
    results.sort((a, b) => a.line - b.line);
    await noteBatchFinished(this.store, id);
    return { results, summary: await this.status(id) };
  }
}

/** Checks one column of a row on its own (to list every bad cell of a row, not only the first). */
const ROW_PROBES: [string, (req: StartRequest, op: string) => void][] = [
  ['phone', (r, op) => buildInput({ ...PROBE_OK, phone: r.phone }, op)],
  ['source_waba', (r, op) => buildInput({ ...PROBE_OK, sourceWabaId: r.sourceWabaId, destWabaId: r.sourceWabaId === '2' ? '3' : '2' }, op)],
  ['dest_waba', (r, op) => buildInput({ ...PROBE_OK, destWabaId: r.destWabaId, sourceWabaId: r.destWabaId === '1' ? '3' : '1' }, op)],
  ['business', (r, op) => buildInput({ ...PROBE_OK, businessId: r.businessId ?? null }, op)],
  ['code_method', (r, op) => buildInput({ ...PROBE_OK, ...(r.codeMethod !== undefined ? { codeMethod: r.codeMethod } : {}) }, op)],
  ['language', (r, op) => buildInput({ ...PROBE_OK, ...(r.language !== undefined ? { language: r.language } : {}) }, op)],
  ['verified_name', (r, op) => buildInput({ ...PROBE_OK, verifiedName: r.verifiedName ?? null }, op)],
  ['confirm', (r, op) => buildInput({ ...PROBE_OK, confirm: r.confirm ?? [] }, op)],
  ['id', (r, op) => buildInput({ ...PROBE_OK, ...(r.id !== undefined ? { id: r.id } : {}) }, op)],
];
const PROBE_OK: StartRequest = { phone: '+16315551000', sourceWabaId: '1', destWabaId: '2', id: 'probe' };
/** The same for a row with from = onprem. */
const ONPREM_ROW_PROBES: [string, (req: StartRequest, op: string) => void][] = [
  ['phone', (r, op) => buildInput({ ...PROBE_ONPREM, phone: r.phone }, op)],
  ['waba', (r, op) => buildInput({ ...PROBE_ONPREM, ...(r.waba !== undefined ? { waba: r.waba } : {}) }, op)],
  ['onprem_url', (r, op) => buildInput({ ...PROBE_ONPREM, ...(r.onpremUrl !== undefined ? { onpremUrl: r.onpremUrl } : {}) }, op)],
  ['business', (r, op) => buildInput({ ...PROBE_ONPREM, businessId: r.businessId ?? null }, op)],
  ['language', (r, op) => buildInput({ ...PROBE_ONPREM, ...(r.language !== undefined ? { language: r.language } : {}) }, op)],
  ['confirm', (r, op) => buildInput({ ...PROBE_ONPREM, confirm: r.confirm ?? [] }, op)],
  ['id', (r, op) => buildInput({ ...PROBE_ONPREM, ...(r.id !== undefined ? { id: r.id } : {}) }, op)],
];
const PROBE_ONPREM: StartRequest = { phone: '+16315551000', sourceWabaId: '', destWabaId: '', from: 'onprem', waba: '1', onpremUrl: 'https://onprem.example.com', id: 'probe' };

/**
 * Queues `batch.completed` (src/notify/) in the batch record once no row is unfinished (every
 * migration completed, failed, blocked or cancelled), under the batch's lock. Returns whether it
 * queued it. `lease`: the batch lock already held by the caller.
 */
export async function noteBatchFinished(store: MigrationStore, batchId: string, lease?: Lease): Promise<boolean> {
  let own: Lease | null = null;
  if (!lease) {
    try {
      own = await store.lockBatch(batchId);
    } catch (e) {
      if ((e as Error).name === 'MigrationLockedError') return false; // its holder will see it
      throw e;
    }
  }
  try {
    const record = await store.loadBatch(batchId);
    if ((record.outbox ?? []).some((e) => e.type === 'batch.completed')) return false;
    const states: StateName[] = [];
    for (const r of record.rows) {
      try {
        states.push((await store.load(r.migrationId)).state);
      } catch {
        return false; // not started (or unreadable): not finished
      }
    }
    const counts = countStates(states);
    if (counts.unfinished > 0) return false;
    addBatchCompleted(record, counts);
    record.updatedAt = new Date().toISOString();
    await (lease ?? own)!.assertHeld();
    await store.saveBatch(record);
    return true;
  } finally {
    await own?.release();
  }
}

function generateBatchId(): string {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `b-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

export { BatchInputError, throttleMessage };
