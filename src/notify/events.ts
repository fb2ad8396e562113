/**
 * Which transitions become notifications, and what they say. Pure apart from the event id and
 * the clock: the engine calls {@link addTransitionEvents} inside `persist()`, so the events land in
 * the outbox of the very document write that records the transition (one atomic write, or one
 * transaction): a crash can neither lose an event nor emit one for a transition that did not happen.
 *
 * Payloads are built from an explicit list of non-secret fields, never by copying the context or
 * the event: the access token, PIN and verification code are never in the machine's context, and
 * nothing here could carry them even if they were.
 */
import { randomUUID } from 'node:crypto';
import type { MigrationContext, StateName } from '../../machines/migration.js';
import type { BatchRecord, DisabledEndpoint, EventPayload, HistoryEntry, MigrationDocument, OutboxEntry } from '../store/document.js';

export const PAYLOAD_VERSION = 1 as const;

export const MIGRATION_EVENTS = [
  'migration.started',
  'migration.blocked',
  'migration.awaiting_code',
  'migration.waiting_retry',
  'migration.failed',
  'migration.completed',
  'migration.cancelled',
] as const;
export const BATCH_EVENTS = ['batch.completed'] as const;
export type EventType = (typeof MIGRATION_EVENTS)[number] | (typeof BATCH_EVENTS)[number] | 'notify.test';

/** A fresh event id: random, so a re-used migration id never collides with an old event. */
export function newEventId(): string {
  return `evt_${randomUUID().replace(/-/g, '')}`;
}

export function makePayload(type: EventType, data: Record<string, unknown>, at: string, id = newEventId()): EventPayload {
  return { type, version: PAYLOAD_VERSION, id, timestamp: at, data };
}

/** Appends an event to an outbox (created if absent), due at once. */
export function enqueue(outbox: OutboxEntry[], type: EventType, data: Record<string, unknown>, at: string): OutboxEntry {
  const payload = makePayload(type, data, at);
  const entry: OutboxEntry = {
    id: payload.id,
    seq: (outbox.at(-1)?.seq ?? 0) + 1,
    type,
    payload,
    createdAt: at,
    attempts: 0,
    nextAttemptAt: at,
    deliveredAt: null,
    dead: false,
    lastError: null,
  };
  outbox.push(entry);
  return entry;
}

const iso = (ms: number | null | undefined) => (typeof ms === 'number' ? new Date(ms).toISOString() : null);

/**
 * The events one transition causes (usually none). `doc` is already updated to the state after
 * the transition (`doc.snapshot.context` is the new context); `from` is the state before it.
 */
export function eventsFor(doc: MigrationDocument, from: StateName | null, to: StateName, entry: HistoryEntry): { type: EventType; data: Record<string, unknown> }[] {
  const ctx = doc.snapshot.context as Partial<MigrationContext> & { sourcePhoneNumberId?: string | null };
  const base = {
    migrationId: doc.id,
    phone: doc.input.phone,
    sourceWabaId: doc.input.sourceWabaId,
    destWabaId: doc.input.destWabaId,
    state: to,
    previousState: from,
    historyEntry: entry.n,
    at: entry.at,
    ...((doc as { batch?: string | null }).batch ? { batchId: (doc as { batch?: string | null }).batch } : {}),
  };
  const out: { type: EventType; data: Record<string, unknown> }[] = [];
  if (from === null) {
    out.push({
      type: 'migration.started',
      data: { ...base, businessId: doc.input.businessId, codeMethod: doc.input.codeMethod, confirmations: doc.input.confirmations.map((c) => ({ check: c.check, by: c.by, at: c.at })) },
    });
  }
  // A resumed run's first entry stays in place (from === to): nothing happened to tell anyone.
  if (from === to) return out;
  switch (to) {
    case 'blocked':
      out.push({
        type: 'migration.blocked',
        data: {
          ...base,
          failingChecks: (ctx.checks ?? []).filter((c) => c.status !== 'pass').map((c) => ({ name: c.name, status: c.status, detail: c.detail, remedy: c.remedy })),
        },
      });
      break;
    case 'awaiting_code': {
      const c = ctx.code ?? null;
      out.push({
        type: 'migration.awaiting_code',
        data: {
          ...base,
          phoneNumberId: ctx.phoneNumberId ?? null,
          reason: from === 'verifying_code' ? 'code_rejected' : 'code_requested',
          verification: c
            ? {
                method: c.method,
                requestedAt: iso(c.requestedAt),
                resendAllowedAt: iso(c.resendAllowedAt),
                staleAt: iso(c.staleAt),
                // The request's answer was lost: a code may or may not be on its way.
                uncertain: c.uncertain === true,
                requests: c.requests,
                wrongAttempts: ctx.codeAttempts ?? 0,
              }
            : null,
        },
      });
      break;
    }
    case 'waiting_retry': {
      const r = ctx.retry ?? null;
      out.push({
        type: 'migration.waiting_retry',
        data: {
          ...base,
          step: r?.step ?? null,
          retryAt: iso(r?.retryAt),
          attempt: r ? (ctx.attempts?.[r.step] ?? null) : null,
          error: r ? graphError(r.error) : null,
        },
      });
      break;
    }
    case 'failed': {
      const f = ctx.failure ?? null;
      out.push({ type: 'migration.failed', data: { ...base, step: f?.step ?? null, error: f ? graphError(f) : null, remedy: f?.remedy ?? null } });
      break;
    }
    case 'completed': {
      const r = ctx.result ?? null;
      out.push({
        type: 'migration.completed',
        data: {
          ...base,
          // The number's id in the source WABA (null when it was not seen there, e.g. the number
          // was already in the destination when the migration started).
          previousPhoneNumberId: ctx.sourcePhoneNumberId ?? null,
          phoneNumberId: ctx.phoneNumberId ?? null,
          adopted: ctx.adopted === true,
          displayPhoneNumber: r?.displayPhoneNumber ?? null,
          verifiedName: r?.verifiedName ?? null,
          qualityRating: r?.qualityRating ?? null,
          warnings: r?.warnings ?? [],
        },
      });
      break;
    }
    case 'cancelled': {
      const ev = entry.event as { by?: unknown; reason?: unknown };
      out.push({ type: 'migration.cancelled', data: { ...base, by: typeof ev.by === 'string' ? ev.by : entry.by, reason: typeof ev.reason === 'string' ? ev.reason : null } });
      break;
    }
    default:
      break;
  }
  return out;
}

function graphError(e: { message: string; code: number | null; subcode: number | null; fbtraceId: string | null; httpStatus: number | null; kind: string }) {
  return { message: e.message, code: e.code, subcode: e.subcode, fbtraceId: e.fbtraceId, httpStatus: e.httpStatus, kind: e.kind };
}

/** The engine's one call: queue this transition's events in the document's outbox. */
export function addTransitionEvents(doc: MigrationDocument, from: StateName | null, to: StateName, entry: HistoryEntry): void {
  const outbox = (doc.outbox ??= []);
  for (const e of eventsFor(doc, from, to, entry)) enqueue(outbox, e.type, e.data, entry.at);
}

/** Counts of a batch's migrations by outcome, for `batch.completed`. */
export interface BatchCounts {
  total: number;
  completed: number;
  failed: number;
  blocked: number;
  cancelled: number;
  /** Anything else (awaiting a code, a PIN, a retry). */
  unfinished: number;
}

/**
 * For the fleet layer: queue `batch.completed` in the batch record, then save the record (one
 * atomic write carries both). Delivered by `deliverPending` like migration events.
 */
export function addBatchCompleted(batch: BatchRecord, counts: BatchCounts, at = new Date().toISOString()): OutboxEntry {
  const entry = enqueue((batch.outbox ??= []), 'batch.completed', { batchId: batch.id, counts, migrations: batch.rows.map((r) => r.migrationId), at }, at);
  // The body text is kept with the event: a batch record may be stored as jsonb (key order not
  // kept), and every attempt must send the same bytes. (A migration's document keeps its text.)
  entry.body = JSON.stringify(entry.payload);
  return entry;
}

/** Counts a batch's migrations by state. */
export function countStates(states: StateName[]): BatchCounts {
  const c: BatchCounts = { total: states.length, completed: 0, failed: 0, blocked: 0, cancelled: 0, unfinished: 0 };
  for (const s of states) {
    if (s === 'completed' || s === 'failed' || s === 'blocked' || s === 'cancelled') c[s]++;
    else c.unfinished++;
  }
  return c;
}

/** Pending = neither delivered nor dead. */
export const isPending = (e: OutboxEntry) => e.deliveredAt === null && !e.dead;

/** What `status` shows: counts, the next attempt and the last error of the first stuck event. */
export interface NotificationSummary {
  pending: number;
  dead: number;
  delivered: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  /** Pending events are held back: their endpoint answered 410 Gone (`notify enable` lifts it). */
  endpointDisabled: { endpoint: string; disabledAt: string; eventId: string; owner: string | null; label: string } | null;
}

export function outboxSummary(outbox: OutboxEntry[] | undefined, disabled: DisabledEndpoint | null = null): NotificationSummary | null {
  if (!outbox) return null;
  const pending = outbox.filter(isPending).sort((a, b) => a.seq - b.seq);
  const dead = outbox.filter((e) => e.dead);
  const first = pending[0];
  return {
    pending: pending.length,
    dead: dead.length,
    delivered: outbox.filter((e) => e.deliveredAt !== null).length,
    nextAttemptAt: first ? first.nextAttemptAt : null,
    lastError: first?.lastError ?? dead.at(-1)?.lastError ?? null,
    endpointDisabled:
      first && disabled ? { endpoint: disabled.endpoint, disabledAt: disabled.disabledAt, eventId: disabled.eventId, owner: disabled.owner, label: `endpoint disabled (410 at ${disabled.disabledAt})` } : null,
  };
}

/** One event as the dashboard's Notifications panel (and its API) shows it. */
export interface NotificationRow {
  /** The event id: the `webhook-id` header, the receiver's idempotency key. */
  id: string;
  seq: number;
  type: string;
  state: 'delivered' | 'pending' | 'dead' | 'endpoint-disabled';
  attempts: number;
  createdAt: string;
  /** When it is next tried (pending only; null when delivered, dead or held by a disabled endpoint). */
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  lastError: string | null;
}

export interface NotificationPanel {
  endpointDisabled: { endpoint: string; disabledAt: string; eventId: string; owner: string | null; label: string } | null;
  events: NotificationRow[];
}

/** Every event of an outbox, in order, with its delivery state; null without an outbox. */
export function notificationPanel(outbox: OutboxEntry[] | undefined, disabled: DisabledEndpoint | null = null): NotificationPanel | null {
  if (!outbox) return null;
  const held = disabled && outbox.some(isPending) ? disabled : null;
  return {
    endpointDisabled: held ? { endpoint: held.endpoint, disabledAt: held.disabledAt, eventId: held.eventId, owner: held.owner, label: `endpoint disabled (410 at ${held.disabledAt})` } : null,
    events: [...outbox]
      .sort((a, b) => a.seq - b.seq)
      .map((e) => {
        const state: NotificationRow['state'] = e.deliveredAt !== null ? 'delivered' : e.dead ? 'dead' : held ? 'endpoint-disabled' : 'pending';
        return { id: e.id, seq: e.seq, type: e.type, state, attempts: e.attempts, createdAt: e.createdAt, nextAttemptAt: state === 'pending' ? e.nextAttemptAt : null, deliveredAt: e.deliveredAt, lastError: e.lastError };
      }),
  };
}
