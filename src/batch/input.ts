/**
 * Batch files: CSV (RFC 4180, parsed by csv-parse) or JSON Lines, one number per row. Every row is
 * validated before anything is written; each problem names its line, its column and the fix.
 */
import { parse as parseCsv, CsvError } from 'csv-parse/sync';
import { InputError } from '../runner/validate.js';

export const BATCH_COLUMNS = ['phone', 'source_waba', 'dest_waba', 'business', 'id', 'code_method', 'language', 'verified_name', 'confirm', 'from', 'waba', 'onprem_url', 'carry_webhook', 'carry_settings'] as const;
/** A row from another WABA (`from` empty or `waba`). */
export const REQUIRED_COLUMNS = ['phone', 'source_waba', 'dest_waba'] as const;
/** A row from an On-Premises client (`from` = `onprem`): the number stays in `waba`. */
export const ONPREM_REQUIRED_COLUMNS = ['phone', 'waba', 'onprem_url'] as const;
const ONPREM_ONLY = ['waba', 'onprem_url', 'carry_webhook', 'carry_settings'] as const;
const WABA_ONLY = ['source_waba', 'dest_waba', 'code_method', 'verified_name'] as const;

/** `from` of a row: `waba` (the default) or `onprem`; anything else is reported by {@link batchRowProblems}. */
export const rowFrom = (cells: Record<string, string>): 'waba' | 'onprem' => (cells.from?.trim().toLowerCase() === 'onprem' ? 'onprem' : 'waba');

/** The columns a batch row must have, by its `from`. */
export const requiredFor = (cells: Record<string, string>): readonly string[] => {
  const from = cells.from?.trim().toLowerCase();
  if (from && from !== 'waba' && from !== 'onprem') return ['phone']; // the bad from is reported by batchRowProblems
  return from === 'onprem' ? ONPREM_REQUIRED_COLUMNS : REQUIRED_COLUMNS;
};

/** A yes/no cell (carry_webhook, carry_settings): true, false, or undefined when empty; else null. */
export function parseYesNo(raw: string | undefined): boolean | undefined | null {
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = raw.trim().toLowerCase();
  if (['true', 'yes', 'y', '1'].includes(v)) return true;
  if (['false', 'no', 'n', '0'].includes(v)) return false;
  return null;
}

/** What a batch row's `from` makes wrong in it (beyond the required columns). */
export function batchRowProblems(r: RawRow): RowProblem[] {
  const c = r.cells;
  const out: RowProblem[] = [];
  const from = c.from?.trim().toLowerCase();
  if (from !== undefined && from !== '' && from !== 'waba' && from !== 'onprem')
    return [{ line: r.line, column: 'from', message: `${JSON.stringify(c.from)} is not a source: use waba (another WABA, the default) or onprem (an On-Premises API client)` }];
  if (from === 'onprem') {
    for (const col of WABA_ONLY)
      if (c[col]) out.push({ line: r.line, column: col, message: `is not used when from is onprem (the number stays in its WABA, no code is sent): leave it empty${col.endsWith('waba') ? ' and give the WABA in column waba' : ''}` });
  } else {
    for (const col of ONPREM_ONLY) if (c[col]) out.push({ line: r.line, column: col, message: 'is only for rows with from = onprem: leave it empty, or set from to onprem' });
  }
  for (const col of ['carry_webhook', 'carry_settings'])
    if (parseYesNo(c[col]) === null) out.push({ line: r.line, column: col, message: `${JSON.stringify(c[col])} must be yes or no (true/false)` });
  return out;
}
export const CODE_COLUMNS = ['phone', 'id', 'code', 'pin'] as const;

/** One data row as read: its 1-based line in the file and its cells by column name. */
export interface RawRow {
  line: number;
  cells: Record<string, string>;
}

export interface RowProblem {
  line: number;
  column: string;
  message: string;
}

/** Bad rows (or a bad file): exit 2, nothing written. The message has one line per problem. */
export class BatchInputError extends Error {
  override readonly name = 'BatchInputError';
  constructor(
    readonly problems: RowProblem[],
    readonly source = 'batch file',
  ) {
    super(
      `${source}: ${problems.length} bad row${problems.length === 1 ? '' : 's'}; nothing was written. Fix them and run the command again:\n` +
        problems.map((p) => `  line ${p.line}, column ${p.column}: ${p.message}`).join('\n'),
    );
  }
}

const normalise = (h: string) => h.trim().toLowerCase().replace(/[\s-]+/g, '_');

/** JSON Lines when the name says so or the first non-blank character is `{`; CSV otherwise. */
export function detectFormat(text: string, name?: string): 'csv' | 'jsonl' {
  if (name && /\.(jsonl|ndjson)$/i.test(name)) return 'jsonl';
  if (name && /\.csv$/i.test(name)) return 'csv';
  return text.trimStart().startsWith('{') ? 'jsonl' : 'csv';
}

/**
 * Reads the rows of a batch or codes file. `allowed` lists the columns it may have; `required`
 * the ones it must have (a codes file needs `phone` or `id`, checked by the caller).
 */
export function readRows(
  text: string,
  opts: { name?: string; allowed: readonly string[]; required: readonly string[] | ((cells: Record<string, string>) => readonly string[]); source?: string },
): RawRow[] {
  const source = opts.source ?? 'batch file';
  const format = detectFormat(text, opts.name);
  const rows = format === 'jsonl' ? readJsonl(text, source) : readCsv(text, source);
  const problems: RowProblem[] = [];
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.cells)) seen.add(k);
  const unknown = [...seen].filter((c) => !opts.allowed.includes(c));
  for (const c of unknown) problems.push({ line: 1, column: c, message: `is not a column of this file: use ${opts.allowed.join(', ')}` });
  const requiredOf = (cells: Record<string, string>) => (typeof opts.required === 'function' ? opts.required(cells) : opts.required);
  if (rows.length === 0) problems.push({ line: 1, column: '-', message: `the file has no data rows: give a header (${requiredOf({}).join(', ')}, …) and one row per number` });
  for (const r of rows) {
    for (const c of requiredOf(r.cells)) {
      if (!r.cells[c]?.trim()) problems.push({ line: r.line, column: c, message: `is required and empty: give the ${describe(c)}${c === 'waba' || c === 'onprem_url' ? ' (this row has from = onprem)' : ''}` });
    }
  }
  if (problems.length) throw new BatchInputError(problems, source);
  return rows;
}

function describe(c: string): string {
  return (
    {
      phone: 'number in E.164 form, e.g. +16315551000',
      source_waba: 'WABA ID the number is on now (digits)',
      dest_waba: 'WABA ID to move it to (digits)',
      waba: 'WABA ID the number is in (digits); it stays there',
      onprem_url: 'On-Premises client base URL, e.g. https://wa.example.com:9090',
      code: '6-digit code Meta sent',
    } as Record<string, string>
  )[c] ?? 'value';
}

function readCsv(text: string, source: string): RawRow[] {
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(text, {
      columns: (header: string[]) => header.map(normalise),
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
      relax_column_count: false,
    }) as unknown as typeof records;
  } catch (e) {
    if (e instanceof CsvError) {
      const line = (e as CsvError & { lines?: number }).lines ?? 1;
      // csv-parse may quote the cell's text ("value is …"): it can be a code or a PIN, never echoed.
      const why = e.message.replace(/^Invalid [^:]*: /, '').replace(/,? value is .*$/s, '').replace(/ got ".*?"/s, ' got an unexpected character');
      throw new BatchInputError([{ line, column: '-', message: `not valid CSV (${why}): quote cells that contain commas or quotes ("…", "" for a quote), one row per line` }], source);
    }
    throw e;
  }
  return records.map(({ record, info }) => ({ line: info.lines, cells: Object.fromEntries(Object.entries(record).filter(([, v]) => v !== '')) }));
}

function readJsonl(text: string, source: string): RawRow[] {
  const out: RawRow[] = [];
  const problems: RowProblem[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      // V8 quotes the text around the fault ("…"pin":'246810'…"): it can be a code or a PIN, never echoed.
      const why = (e as Error).message.replace(/^(Unexpected token '.*?'),.*$/s, '$1');
      problems.push({ line, column: '-', message: `not valid JSON (${why}): one JSON object per line, e.g. {"phone":"+16315551000","source_waba":"1111","dest_waba":"2222"}` });
      return;
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      problems.push({ line, column: '-', message: 'must be a JSON object, e.g. {"phone":"+16315551000","source_waba":"1111","dest_waba":"2222"}' });
      return;
    }
    const cells: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj)) {
      if (v === null || v === undefined || v === '') continue;
      const key = normalise(k);
      if (Array.isArray(v) && key === 'confirm') cells[key] = v.map(String).join(';');
      else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') cells[key] = String(v);
      else problems.push({ line, column: key, message: 'must be a string (or, for confirm, a list of strings)' });
    }
    out.push({ line, cells });
  });
  if (problems.length) throw new BatchInputError(problems, source);
  return out;
}

/** Engine field names (as InputError names them) → file columns. */
const FIELD_TO_COLUMN: Record<string, string> = {
  phone: 'phone',
  'source-waba': 'source_waba',
  'dest-waba': 'dest_waba',
  business: 'business',
  id: 'id',
  'code-method': 'code_method',
  language: 'language',
  'verified-name': 'verified_name',
  confirm: 'confirm',
  from: 'from',
  waba: 'waba',
  'onprem-url': 'onprem_url',
  'carry-webhook': 'carry_webhook',
  code: 'code',
  pin: 'pin',
};

/** An InputError from the engine's validators as a problem of one row. */
export function rowProblem(line: number, e: InputError): RowProblem {
  const column = FIELD_TO_COLUMN[e.field] ?? e.field;
  const prefix = `${e.field}: `;
  return { line, column, message: e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message };
}

/** How many rows of a batch file say from = onprem (0 when the file does not parse: its problems are reported later). */
export function countOnPremRows(text: string, name?: string): number {
  try {
    return readRows(text, { allowed: BATCH_COLUMNS, required: [], ...(name ? { name } : {}) }).filter((r) => rowFrom(r.cells) === 'onprem').length;
  } catch {
    return 0;
  }
}
