/**
 * The state document: one per migration, schema-versioned, validated on every load. A document
 * that fails validation is reported and never overwritten.
 */
import { z } from 'zod';
import { STATE_NAMES, stateName, type StateName } from '../../machines/migration.js';
import { CHECK_NAMES, type MigrationInput } from '../../machines/types.js';
import type { CallSummary } from '../graph/client.js';

export const SCHEMA_VERSION = 1;

export interface HistoryEntry {
  /** 1-based, gap-free. */
  n: number;
  at: string;
  from: StateName | null;
  to: StateName;
  /** Event type plus its non-secret fields. */
  event: { type: string } & Record<string, unknown>;
  /** Graph calls made since the previous entry. */
  calls: CallSummary[];
  /** The OS user running the process. */
  by: string;
  note?: string;
}

export interface MigrationDocument {
  schemaVersion: typeof SCHEMA_VERSION;
  id: string;
  createdAt: string;
  updatedAt: string;
  /** Same as the snapshot's top state, kept for people reading the file and for quick listing. */
  state: StateName;
  input: MigrationInput;
  /** XState persisted snapshot (`actor.getPersistedSnapshot()`). */
  snapshot: { value: unknown; context: unknown; status: string } & Record<string, unknown>;
  history: HistoryEntry[];
  /**
   * Notifications caused by this migration's transitions (src/notify/): written in the same
   * atomic write as the transition that caused them, so neither can exist without the other.
   * Absent on documents of migrations run without notifications.
   */
  outbox?: OutboxEntry[];
}

/** The signed JSON body a receiver gets (see README, "Notifications"). */
export interface EventPayload {
  type: string;
  version: 1;
  /** Stable across retries: the receiver's idempotency key (also the `webhook-id` header). */
  id: string;
  /** When the event happened (ISO 8601). */
  timestamp: string;
  data: Record<string, unknown>;
}

/** One notification waiting for, or done with, delivery. */
export interface OutboxEntry {
  id: string;
  /** 1-based, in the order the events happened; delivered in this order. */
  seq: number;
  type: string;
  payload: EventPayload;
  createdAt: string;
  /** Failed attempts so far (the linear backoff's n). */
  attempts: number;
  /** Not sent before this time (ISO 8601). */
  nextAttemptAt: string;
  deliveredAt: string | null;
  /** Given up (give-up age passed, or the receiver answered 410 Gone); shown, never sent again
   *  unless `notify retry` revives it. */
  dead: boolean;
  lastError: string | null;
  /** When `notify retry` last revived it: the give-up age counts from here. */
  revivedAt?: string;
  /** The payload's JSON text as first serialised, sent as it is on every attempt whatever the
   *  store did to the payload's key order (PostgreSQL keeps batch records as jsonb, which does
   *  not keep it). Kept for batch events; a migration's document keeps its text as written. */
  body?: string;
}

/**
 * A notification endpoint whose receiver answered 410 Gone: nothing is POSTed to it until an
 * operator re-enables it (`waba-migrate notify enable`). Stored by a hash of the URL; what is
 * shown is the URL without userinfo, query or long path segments (where secrets hide).
 */
export interface DisabledEndpoint {
  /** sha256 of the full URL (hex): the identity; the URL itself is never stored. */
  key: string;
  /** A secret-free rendering of the URL, for people (see `displayEndpoint`). */
  endpoint: string;
  /** When the 410 came (ISO 8601). */
  disabledAt: string;
  /** The event whose delivery got the 410. */
  eventId: string;
  /** The migration (or `batch:<id>`) that event belongs to. */
  owner: string | null;
}

const DisabledEndpointSchema = z.looseObject({
  key: z.string().regex(/^[0-9a-f]{64}$/),
  endpoint: z.string(),
  disabledAt: z.string(),
  eventId: z.string(),
  owner: z.string().nullable(),
});

export function validateDisabledEndpoint(raw: unknown, where: string): DisabledEndpoint {
  const parsed = DisabledEndpointSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new StateDocumentError('invalid', where, `${where} is not a valid disabled-endpoint record (${i.path.join('.') || 'root'}: ${i.message}); it was left untouched.`);
  }
  return parsed.data as DisabledEndpoint;
}

export type DocumentProblem = 'corrupt' | 'unknown_schema' | 'invalid';

export class StateDocumentError extends Error {
  override readonly name = 'StateDocumentError';
  constructor(
    readonly problem: DocumentProblem,
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

/** JSON.parse of a stored record; text that is not JSON is a 'corrupt' StateDocumentError naming
 *  `where` (`remedy` is appended to the message). */
export function parseStoredJson(text: string, where: string, remedy = ''): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new StateDocumentError('corrupt', where, `${where} is not valid JSON (${(e as Error).message}); it was left untouched.${remedy ? ` ${remedy}` : ''}`);
  }
}

const Digits = z.string().regex(/^\d{1,32}$/);
const E164 = z.string().regex(/^\+[1-9]\d{6,14}$/);
const Call = z.looseObject({ method: z.string(), path: z.string() });
const OutboxSchema = z.array(
  z.looseObject({
    id: z.string().min(1),
    seq: z.number().int().positive(),
    type: z.string().min(1),
    payload: z.looseObject({ type: z.string(), version: z.literal(1), id: z.string(), timestamp: z.string(), data: z.looseObject({}) }),
    createdAt: z.string(),
    attempts: z.number().int().nonnegative(),
    nextAttemptAt: z.string(),
    deliveredAt: z.string().nullable(),
    dead: z.boolean(),
    lastError: z.string().nullable(),
  }),
);
/**
 * An object whose keys this schema leaves to others (the machine's context, a policy): checked to
 * be an object and passed through as it is. `z.looseObject({})` walks every key of it for its
 * catch-all on each read, a fifth of `batch status` over 10,000 documents.
 */
const AnyObject = z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), { message: 'expected an object' });

const DocumentSchema = z.looseObject({
  schemaVersion: z.literal(SCHEMA_VERSION),
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  createdAt: z.string(),
  updatedAt: z.string(),
  state: z.enum(STATE_NAMES),
  input: z.looseObject({
    id: z.string(),
    phone: E164,
    cc: Digits,
    nationalNumber: Digits,
    sourceWabaId: Digits,
    destWabaId: Digits,
    businessId: Digits.nullable(),
    codeMethod: z.enum(['SMS', 'VOICE']),
    language: z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/),
    verifiedName: z.string().min(2).max(75).nullable(),
    policy: AnyObject,
    confirmations: z.array(z.looseObject({ check: z.enum(CHECK_NAMES), by: z.string(), at: z.string() })),
  }),
  snapshot: z.looseObject({ value: z.unknown(), context: AnyObject, status: z.string() }),
  history: z.array(
    z.looseObject({
      n: z.number().int(),
      at: z.string(),
      from: z.enum(STATE_NAMES).nullable(),
      to: z.enum(STATE_NAMES),
      event: z.looseObject({ type: z.string() }),
      calls: z.array(Call),
      by: z.string(),
    }),
  ),
  outbox: OutboxSchema.optional(),
});

/** States a migration does not leave on its own: no worker picks them up. */
export const UNFINISHED = (state: StateName) => state !== 'completed' && state !== 'cancelled';

/** Work a worker may pick up: see {@link dueOf}. */
export interface DueMigration {
  id: string;
  state: StateName;
  /** When it can move (ms since epoch). */
  dueAt: number;
  /** Set when it can move only with a secret the worker may hold (the register PIN). */
  hold: 'pin' | null;
  phone: string;
  batch: string | null;
}

/**
 * When a migration can move without a person, or null if it needs one (a code, a confirmation,
 * a fix) or is over. `waiting_retry` is due at its retry time; a step state with no run attached
 * (left by a killed process) is due now; `registering` held for a PIN is due for a worker that
 * holds the PIN. Pure: stores compute it on write (PostgreSQL keeps it as a column).
 */
export function dueOf(doc: MigrationDocument): DueMigration | null {
  const ctx = doc.snapshot.context as { retry?: { retryAt: number } | null; hold?: string | null };
  const base = { id: doc.id, state: doc.state, phone: doc.input.phone, batch: (doc as { batch?: string | null }).batch ?? null };
  switch (doc.state) {
    case 'waiting_retry':
      return ctx.retry ? { ...base, dueAt: ctx.retry.retryAt, hold: null } : { ...base, dueAt: Date.parse(doc.updatedAt), hold: null };
    case 'checking':
    case 'creating':
    case 'requesting_code':
    case 'verifying_code':
    case 'confirming':
      return { ...base, dueAt: Date.parse(doc.updatedAt), hold: null };
    case 'registering':
      if (ctx.hold === 'register_limit') return null;
      return { ...base, dueAt: Date.parse(doc.updatedAt), hold: ctx.hold === 'pin' ? 'pin' : null };
    default:
      return null;
  }
}

export class BatchNotFoundError extends Error {
  override readonly name = 'BatchNotFoundError';
  constructor(readonly id: string) {
    super(`no batch "${id}" in this store; run \`waba-migrate batch list\` to see the ids`);
  }
}

/** One row of a batch: the input line it came from and the migration it became. */
export interface BatchRow {
  /** 1-based line number in the input file (for messages). */
  line: number;
  phone: string;
  migrationId: string;
  sourceWabaId: string;
  destWabaId: string;
  businessId: string | null;
}

/** A shared prerequisite check: run once per (business, source, destination) group per batch run. */
export interface GroupCheck {
  key: string;
  at: string;
  businessId: string | null;
  sourceWabaId: string;
  destWabaId: string;
  checks: unknown[];
}

export interface BatchRecord {
  schemaVersion: 1;
  id: string;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  /** Non-secret options the batch was started with (concurrency, code method, …). */
  options: Record<string, unknown>;
  rows: BatchRow[];
  groupChecks: GroupCheck[];
  cancelled: { by: string; at: string; reason: string } | null;
  /** Batch notifications (`batch.completed`), written with the record that causes them. */
  outbox?: OutboxEntry[];
}

const BatchSchema = z.looseObject({
  schemaVersion: z.literal(1),
  id: z.string().min(1),
  createdAt: z.string(),
  createdBy: z.string(),
  updatedAt: z.string(),
  options: z.looseObject({}),
  rows: z.array(
    z.looseObject({
      line: z.number().int(),
      phone: z.string().regex(/^\+[1-9]\d{6,14}$/),
      migrationId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      sourceWabaId: Digits,
      destWabaId: Digits,
      businessId: Digits.nullable(),
    }),
  ),
  groupChecks: z.array(z.looseObject({ key: z.string(), at: z.string(), checks: z.array(z.unknown()) })),
  cancelled: z.looseObject({ by: z.string(), at: z.string(), reason: z.string() }).nullable(),
  outbox: OutboxSchema.optional(),
});

export function validateBatch(raw: unknown, file: string, expectedId: string): BatchRecord {
  const parsed = BatchSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new StateDocumentError('invalid', file, `${file} is not a valid batch record (${i.path.join('.') || 'root'}: ${i.message}); it was left untouched.`);
  }
  if (parsed.data.id !== expectedId)
    throw new StateDocumentError('invalid', file, `${file} claims to be batch "${parsed.data.id}", not "${expectedId}": it was copied or edited; it was left untouched.`);
  return parsed.data as unknown as BatchRecord;
}

/** Validates parsed JSON as a state document; throws StateDocumentError saying what is wrong.
 *  With `expectedId`, a document whose id is not that one (a copied file) is refused. */
export function validateDocument(raw: unknown, file: string, expectedId?: string): MigrationDocument {
  if (raw && typeof raw === 'object' && 'schemaVersion' in raw && (raw as { schemaVersion: unknown }).schemaVersion !== SCHEMA_VERSION) {
    throw new StateDocumentError(
      'unknown_schema',
      file,
      `${file} has schemaVersion ${JSON.stringify((raw as { schemaVersion: unknown }).schemaVersion)}; this waba-migrate reads version ${SCHEMA_VERSION}. Upgrade waba-migrate; the file was left untouched.`,
    );
  }
  const parsed = DocumentSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new StateDocumentError('invalid', file, `${file} is not a valid state document (${i.path.join('.') || 'root'}: ${i.message}); it was left untouched.`);
  }
  const doc = parsed.data as unknown as MigrationDocument;
  let snapState: StateName;
  try {
    snapState = stateName(doc.snapshot.value);
  } catch {
    throw new StateDocumentError('invalid', file, `${file}: the saved machine state ${JSON.stringify(doc.snapshot.value)} is not a state of this machine; it was left untouched.`);
  }
  if (snapState !== doc.state) {
    throw new StateDocumentError('invalid', file, `${file}: "state" says ${doc.state} but the saved machine is in ${snapState}; the file was edited or damaged and was left untouched.`);
  }
  if (expectedId !== undefined && doc.id !== expectedId) {
    throw new StateDocumentError('invalid', file, `${file} claims to be migration "${doc.id}", not "${expectedId}": a copied or renamed document is never used (it would run one number twice). It was left untouched; remove it.`);
  }
  checkConsistency(doc, file);
  return doc;
}

/** Context fields that end up in a URL path or drive a request: as strict as user input. */
// Only checked, never used as data: a plain (stripping) object, which does not walk the other keys.
const ContextSchema = z.object({
  phoneNumberId: Digits.nullable().optional(),
  sourcePhoneNumberId: Digits.nullable().optional(),
  businessId: Digits.nullable().optional(),
  existing: z.looseObject({ id: Digits }).nullable().optional(),
  input: AnyObject.optional(),
  registerCalls: z.array(z.number()).optional(),
});

/** The document's parts must tell one story: the input the machine runs on is the stored input,
 *  and the history's start names the same number. An edited phone or WABA is refused. */
function checkConsistency(doc: MigrationDocument, file: string): void {
  const bad = (what: string) => {
    throw new StateDocumentError('invalid', file, `${file}: ${what}; the file was edited or damaged and was left untouched.`);
  };
  const ctx = ContextSchema.safeParse(doc.snapshot.context);
  if (!ctx.success) {
    const i = ctx.error.issues[0]!;
    bad(`snapshot.context.${i.path.join('.')} is not valid (${i.message})`);
  }
  const cin = (doc.snapshot.context as { input?: Record<string, unknown> }).input;
  if (cin && Object.keys(cin).length) {
    for (const k of ['id', 'phone', 'cc', 'nationalNumber', 'sourceWabaId', 'destWabaId'] as const) {
      if (cin[k] !== doc.input[k]) bad(`input.${k} (${JSON.stringify(doc.input[k])}) differs from the machine's (${JSON.stringify(cin[k])})`);
    }
  }
  if (doc.input.id !== doc.id) bad(`input.id "${doc.input.id}" is not the document id "${doc.id}"`);
  if (`+${doc.input.cc}${doc.input.nationalNumber}` !== doc.input.phone) bad(`input.phone ${doc.input.phone} does not match cc + nationalNumber`);
  doc.history.forEach((h, i) => {
    if (h.n !== i + 1) bad(`history entry ${i + 1} is numbered ${h.n} (the history must be numbered 1, 2, 3… without gaps)`);
  });
  const start = doc.history[0]?.event as { phone?: unknown } | undefined;
  if (start && typeof start.phone === 'string' && start.phone !== doc.input.phone) bad(`input.phone ${doc.input.phone} is not the number this migration started with (${start.phone})`);
}
