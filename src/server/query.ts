/** The list's filters, sort and paging: parsed once (with a message naming the field), applied to the index. */
import { z } from 'zod';
import { STATE_NAMES, type StateName } from '../../machines/migration.js';
import type { MigrationSummary } from './live.js';

export const SORT_FIELDS = ['updatedAt', 'createdAt', 'id', 'state', 'phone'] as const;
export type SortField = (typeof SORT_FIELDS)[number];

export interface ListQuery {
  states: StateName[];
  /** Digits to find anywhere in the E.164 number ("+1631" and "1631" both match). */
  phone: string | null;
  batch: string | null;
  updatedSince: string | null;
  attention: boolean;
  sort: SortField;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

export class QueryError extends Error {
  override readonly name = 'QueryError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const blank = (v: unknown) => (v === '' ? undefined : v);
const Query = z.object({
  state: z.preprocess(blank, z.string().optional()),
  phone: z.preprocess(blank, z.string().max(20).regex(/^\+?\d+$/, 'use digits, optionally with a leading +').optional()),
  batch: z.preprocess(blank, z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'not a batch id').optional()),
  updatedSince: z.preprocess(
    blank,
    z
      .string()
      .refine((s) => !Number.isNaN(Date.parse(s)), 'use an ISO 8601 date or time, e.g. 2026-11-23 or 2026-11-23T08:00:00Z')
      .optional(),
  ),
  attention: z.preprocess(blank, z.enum(['true', 'false', '1', '0']).optional()),
  sort: z.preprocess(blank, z.enum(SORT_FIELDS).optional()),
  order: z.preprocess(blank, z.enum(['asc', 'desc']).optional()),
  limit: z.preprocess(blank, z.coerce.number().int().min(1).max(500).optional()),
  offset: z.preprocess(blank, z.coerce.number().int().min(0).optional()),
  page: z.preprocess(blank, z.coerce.number().int().min(1).optional()),
});

export function parseListQuery(raw: Record<string, unknown>): ListQuery {
  const parsed = Query.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new QueryError(String(i.path[0] ?? 'query'), i.message);
  }
  const q = parsed.data;
  const states = q.state ? q.state.split(',').map((s) => s.trim()) : [];
  for (const s of states) if (!(STATE_NAMES as readonly string[]).includes(s)) throw new QueryError('state', `"${s}" is not a state: use one of ${STATE_NAMES.join(', ')}`);
  const limit = q.limit ?? 50;
  return {
    states: states as StateName[],
    phone: q.phone ? q.phone.replace(/^\+/, '') : null,
    batch: q.batch ?? null,
    updatedSince: q.updatedSince ? new Date(Date.parse(q.updatedSince)).toISOString() : null,
    attention: q.attention === 'true' || q.attention === '1',
    sort: q.sort ?? 'updatedAt',
    order: q.order ?? (q.sort && q.sort !== 'updatedAt' && q.sort !== 'createdAt' ? 'asc' : 'desc'),
    limit,
    offset: q.offset ?? (q.page ? (q.page - 1) * limit : 0),
  };
}

export interface Page {
  total: number;
  offset: number;
  limit: number;
  items: MigrationSummary[];
}

/** `batchOf` adds membership known from batch records (a row naming the migration). */
export function applyQuery(all: Iterable<MigrationSummary>, q: ListQuery, batchOf: (id: string) => string | null = () => null): Page {
  const states = q.states.length ? new Set(q.states) : null;
  const matched: MigrationSummary[] = [];
  for (const m of all) {
    if (states && !states.has(m.state)) continue;
    if (q.phone && !m.phone.includes(q.phone)) continue;
    if (q.batch && (m.batch ?? batchOf(m.id)) !== q.batch) continue;
    if (q.updatedSince && m.updatedAt < q.updatedSince) continue;
    if (q.attention && !m.attention) continue;
    matched.push(m);
  }
  const dir = q.order === 'asc' ? 1 : -1;
  const key = q.sort;
  matched.sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { total: matched.length, offset: q.offset, limit: q.limit, items: matched.slice(q.offset, q.offset + q.limit) };
}
