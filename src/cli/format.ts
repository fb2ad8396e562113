/**
 * Shared display rules: times with seconds (UTC, or local with --local-time), audit events in
 * words, and tables that fit the terminal (a stacked "key: value" layout at 80 columns or less,
 * never truncating an id).
 */

/** `2026-05-01 18:38:05 UTC` or the local equivalent. `roundUp` for times that say "after". */
export function formatTime(iso: string | number, local: boolean, roundUp = false): string {
  let ms = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!Number.isFinite(ms)) return String(iso);
  if (roundUp) ms = Math.ceil(ms / 1000) * 1000;
  const d = new Date(ms);
  if (!local) return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  const pad = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off >= 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zone}`;
}

/** Rewrites the ISO instants inside an engine sentence (next action) to the chosen display. */
export function localizeSentence(text: string, local: boolean, now = Date.now()): string {
  const iso = text.replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z\b/g, (m) => formatTime(m, local, true));
  if (!local) return iso;
  // The view's clock times ("18:38:05 UTC") are within hours of now: place them on the nearest day.
  return iso.replace(/\b(\d{2}):(\d{2}):(\d{2}) UTC\b/g, (_m, h: string, mi: string, se: string) => {
    const d = new Date(now);
    d.setUTCHours(Number(h), Number(mi), Number(se), 0);
    let t = d.getTime();
    if (t - now > 12 * 3600_000) t -= 86_400_000;
    else if (now - t > 12 * 3600_000) t += 86_400_000;
    return formatTime(t, true).slice(11);
  });
}

const STEP_WORDS: Record<string, string> = {
  runChecks: 'checks',
  checks: 'checks',
  createNumber: 'migrate_phone_number (create)',
  requestCode: 'request_code',
  verifyCode: 'verify_code',
  register: 'register',
  confirm: 'confirmation',
};

type EventLike = { type: string } & Record<string, unknown>;

/** An audit event as a person says it: "checks passed", "verify_code failed: wrong code". */
export function eventInWords(e: EventLike, by?: string): string {
  const t = e.type;
  const done = /^xstate\.done\.actor\.(.+)$/.exec(t);
  if (done) {
    const step = STEP_WORDS[done[1]!] ?? done[1]!;
    if (step === 'checks' && e.checks && typeof e.checks === 'object') {
      const open = Object.entries(e.checks as Record<string, string>).filter(([, s]) => s !== 'pass');
      return open.length ? `checks done: ${open.map(([n, s]) => `${n} ${s}`).join(', ')}` : 'checks passed';
    }
    return `${step} succeeded`;
  }
  const err = /^xstate\.error\.actor\.(.+)$/.exec(t);
  if (err) {
    const step = STEP_WORDS[err[1]!] ?? err[1]!;
    const x = (e.error ?? {}) as { message?: string; code?: number; transient?: boolean };
    return `${step} failed${x.transient ? ' (temporary)' : ''}: ${x.message ?? 'unknown error'}${x.code ? ` (code ${x.code})` : ''}`;
  }
  switch (t) {
    case 'start':
      return 'migration started';
    case 'resume':
      return 'resumed';
    case 'CONFIRM_CHECK':
      return `check ${String(e.check)} confirmed by ${String(e.by ?? by ?? 'operator')}`;
    case 'CODE_SUBMITTED':
      return 'verification code submitted';
    case 'RESEND_CODE':
      return `new code requested${e.method ? ` by ${String(e.method).toLowerCase()}` : ''}`;
    case 'PIN_PROVIDED':
      return 'register PIN supplied';
    case 'OVERRIDE_REGISTER_LIMIT':
      return `register limit overridden by ${String(e.by ?? by ?? 'operator')}`;
    case 'RETRY':
      return 'retried';
    case 'CANCEL':
      return `cancelled by ${String(e.by ?? by ?? 'operator')}${e.reason ? `: ${String(e.reason)}` : ''}`;
    default:
      return t;
  }
}

/** The terminal's width; a pipe has none (natural widths, nothing wrapped) unless COLUMNS says. */
export function terminalColumns(): number {
  const fromEnv = Number(process.env.COLUMNS);
  if (process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : Number.POSITIVE_INFINITY;
}

/**
 * Column widths that fill `total` columns: `fixed` columns (ids) get their longest value in full,
 * the others share what is left in proportion to `weights`. Returns null when the fixed columns
 * alone do not fit (the caller stacks instead).
 */
export function fitWidths(rows: string[][], head: string[], fixed: boolean[], weights: number[], total: number): number[] | null {
  const n = head.length;
  const border = n + 1; // cli-table3 draws one border char per column plus one
  const padding = 2 * n;
  const natural = head.map((h, i) => Math.max(h.length, ...rows.map((r) => Math.max(...(r[i] ?? '').split('\n').map((l) => l.length)))));
  const fixedSum = natural.reduce((a, w, i) => a + (fixed[i] ? w + 2 : 0), 0);
  let left = total - border - fixedSum;
  const flex = natural.map((_, i) => i).filter((i) => !fixed[i]);
  if (left < flex.length * 8) return null;
  const widths = natural.map((w) => w + 2);
  // Flexible columns shrink only if they must, in proportion to their weight.
  const want = flex.reduce((a, i) => a + natural[i]! + 2, 0);
  if (want <= left) return widths;
  const wsum = flex.reduce((a, i) => a + weights[i]!, 0);
  for (const i of flex) {
    widths[i] = Math.max(8, Math.floor((left * weights[i]!) / wsum));
  }
  left -= flex.reduce((a, i) => a + widths[i]!, 0);
  void padding;
  return widths;
}

/** `key: value` blocks, one per row, for narrow terminals. */
export function stacked(head: string[], rows: string[][]): string {
  const w = Math.max(...head.map((h) => h.length));
  return rows.map((r) => head.map((h, i) => `${h.padEnd(w)}  ${(r[i] ?? '').replace(/\n/g, `\n${' '.repeat(w + 2)}`)}`).join('\n')).join('\n\n');
}

/** A table that fits the terminal, or the stacked layout at ≤ 80 columns. */
export async function renderTable(head: string[], rows: string[][], opts: { fixed: boolean[]; weights: number[] }): Promise<string> {
  const cols = terminalColumns();
  const widths = cols > 80 ? fitWidths(rows, head, opts.fixed, opts.weights, cols) : null;
  if (!widths) return stacked(head, rows);
  const { default: Table } = await import('cli-table3');
  // cli-table3 lays a table out in time quadratic in its rows (10,000 rows: 10 s), so a long
  // table is drawn in slices of the same column widths, joined where one's bottom border meets
  // the next one's top border: the same table (a test compares them), in linear time.
  const SLICE = 200;
  const parts: string[] = [];
  for (let i = 0; i === 0 || i < rows.length; i += SLICE) {
    const t = new Table({ head: i === 0 ? head : [], colWidths: widths, wordWrap: true, wrapOnWordBoundary: false, style: { head: [], border: [] } });
    for (const r of rows.slice(i, i + SLICE)) t.push(r);
    const lines = t.toString().split('\n');
    if (i > 0) lines.shift(); // this slice's top border
    // Its bottom border becomes the line between two rows: the next slice goes on.
    if (i + SLICE < rows.length) lines.push(lines.pop()!.replace('└', '├').replaceAll('┴', '┼').replace('┘', '┤'));
    parts.push(lines.join('\n'));
  }
  return parts.join('\n');
}
