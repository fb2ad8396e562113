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

const Digits = z.string().regex(/^\d+$/);
const Call = z.looseObject({ method: z.string(), path: z.string() });
const DocumentSchema = z.looseObject({
  schemaVersion: z.literal(SCHEMA_VERSION),
  id: z.string().min(1),
  createdAt: z.string(),
  updatedAt: z.string(),
  state: z.enum(STATE_NAMES),
  input: z.looseObject({
    id: z.string(),
    phone: z.string(),
    cc: Digits,
    nationalNumber: Digits,
    sourceWabaId: Digits,
    destWabaId: Digits,
    businessId: Digits.nullable(),
    codeMethod: z.enum(['SMS', 'VOICE']),
    language: z.string(),
    verifiedName: z.string().nullable(),
    policy: z.looseObject({}),
    confirmations: z.array(z.looseObject({ check: z.enum(CHECK_NAMES), by: z.string(), at: z.string() })),
  }),
  snapshot: z.looseObject({ value: z.unknown(), context: z.looseObject({}), status: z.string() }),
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
});

/** Validates parsed JSON as a state document; throws StateDocumentError saying what is wrong. */
export function validateDocument(raw: unknown, file: string): MigrationDocument {
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
  return doc;
}
