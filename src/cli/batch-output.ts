/**
 * Rendering for `batch …` and `work`: a progress bar on a TTY while rows run (cli-progress, on
 * stderr), one line per row otherwise, then a summary on stdout: counts by state, the rows that
 * need a person and what each needs, the WABAs Meta throttled.
 */
import pc from 'picocolors';
import type { BatchEvent, BatchSummary, CodeRowResult } from '../batch/index.js';

const NEED_TEXT: Record<string, string> = {
  code: 'the verification code (batch codes)',
  pin: 'the register PIN (WABA_REGISTER_PIN for work, or batch codes with a pin column)',
  register_override: 'a decision to spend the last register calls (resume --override-register-limit)',
  fix_prerequisites: 'a prerequisite fixed or confirmed, then batch resume',
  fix_failure: 'the failure read and fixed, then batch resume',
};

/** "4m 05s", "12s", "1h 02m": how long until a pause lifts, for a live countdown. */
export function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class BatchProgress {
  #bar: import('cli-progress').SingleBar | null = null;
  #done = 0;
  readonly #enabled: boolean;
  readonly #stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** WABAs Meta paused, and until when (ms): the bar counts down to the last of them. */
  readonly #paused = new Map<string, number>();
  #tick: NodeJS.Timeout | null = null;

  constructor(
    enabled: boolean,
    public total: number,
    stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
  ) {
    this.#enabled = enabled;
    this.#stream = stream;
  }

  async init(label: string): Promise<void> {
    if (!this.#enabled || !this.#stream.isTTY) return;
    const { SingleBar, Presets } = await import('cli-progress');
    this.#bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} rows {note}`, stream: this.#stream, hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
    this.#bar.start(this.total, 0, { note: '' });
  }

  /** The bar's note: the pause that lifts last, counting down each second, and how many others. */
  #note(): string {
    const now = Date.now();
    for (const [waba, until] of this.#paused) if (until <= now) this.#paused.delete(waba);
    if (this.#paused.size === 0) {
      if (this.#tick) clearInterval(this.#tick);
      this.#tick = null;
      return '';
    }
    const [waba, until] = [...this.#paused].sort((a, b) => b[1] - a[1])[0]!;
    const others = this.#paused.size - 1;
    return pc.yellow(`Meta's rate limit on WABA ${waba}: resumes in ${countdown(until - now)}${others ? ` (${others} more WABA${others > 1 ? 's' : ''} paused)` : ''}`);
  }

  event(e: BatchEvent): void {
    if (!this.#enabled) return;
    if (e.type === 'throttle') {
      this.#paused.set(e.waba, Math.max(e.until, this.#paused.get(e.waba) ?? 0));
      if (!this.#bar) {
        this.#stream.write(`${e.message}\n`);
        return;
      }
      this.#bar.update(this.#done, { note: this.#note() });
      // The countdown moves on its own while rows wait; it never keeps the process alive.
      this.#tick ??= setInterval(() => this.#bar?.update(this.#done, { note: this.#note() }), 1000);
      this.#tick.unref();
      return;
    }
    if (e.type === 'group') {
      if (!this.#bar) this.#stream.write(`shared checks for group ${e.key}: ${e.ok ? 'done' : `failed (${e.error})`}\n`);
      return;
    }
    this.#done++;
    if (this.#bar) this.#bar.update(this.#done, { note: this.#note() });
    else this.#stream.write(`line ${e.line} ${e.phone} → ${e.state}${e.error ? ` (${e.error})` : ''}\n`);
  }

  stop(): void {
    if (this.#tick) clearInterval(this.#tick);
    this.#tick = null;
    this.#bar?.stop();
    this.#bar = null;
  }
}

export function printSummary(s: BatchSummary, limit = 20): void {
  const out: string[] = [];
  out.push(`Batch ${pc.bold(s.id)}: ${s.total} rows, created ${s.createdAt.replace('T', ' ').slice(0, 19)} UTC by ${s.createdBy}${s.cancelled ? pc.red(`, cancelled ${s.cancelled.at}`) : ''}`);
  const order = ['completed', 'awaiting_code', 'registering', 'waiting_retry', 'checking', 'creating', 'requesting_code', 'verifying_code', 'confirming', 'blocked', 'failed', 'cancelled', 'pending'];
  const states = Object.keys(s.counts).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  out.push(`  ${states.map((k) => `${k} ${s.counts[k]}`).join(' · ')}`);
  if (s.throttled.length) {
    out.push(pc.yellow(`  ${s.throttled.length} resting on Meta's rate limit (work continues them when it lifts):`));
    for (const r of s.throttled.slice(0, 3)) out.push(`    line ${r.line} ${r.phone}: ${r.nextAction}`);
  }
  if (s.needsPerson.length) {
    out.push(`  ${s.needsPerson.length} need a person:`);
    for (const r of s.needsPerson.slice(0, limit)) out.push(`    line ${r.line} ${r.phone} (${r.migrationId}, ${r.state}): ${NEED_TEXT[r.need!] ?? r.need}`);
    if (s.needsPerson.length > limit) out.push(`    … and ${s.needsPerson.length - limit} more (--json lists every row)`);
  }
  const byNeed = new Map<string, number>();
  for (const r of s.needsPerson) byNeed.set(r.need!, (byNeed.get(r.need!) ?? 0) + 1);
  if (byNeed.get('code')) out.push(`  next: put each code in a file (phone,code) and run: waba-migrate batch codes ${s.id} codes.csv`);
  if (s.counts.pending) out.push(`  next: ${s.counts.pending} rows not started yet: waba-migrate batch resume ${s.id}`);
  const moving = ['waiting_retry', 'checking', 'creating', 'requesting_code', 'verifying_code', 'confirming'].reduce((a, k) => a + (s.counts[k] ?? 0), 0);
  if (moving || byNeed.get('pin')) out.push(`  next: waba-migrate work --batch ${s.id}   (drives what can move; with WABA_REGISTER_PIN it also registers)`);
  process.stdout.write(`${out.join('\n')}\n`);
}

export function printCodeResults(results: CodeRowResult[]): void {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  process.stdout.write(`Codes: ${[...counts].map(([k, v]) => `${k} ${v}`).join(' · ')}\n`);
  for (const r of results.filter((x) => x.outcome !== 'submitted').slice(0, 20)) process.stdout.write(`  line ${r.line} ${r.phone}: ${r.outcome}: ${r.detail}\n`);
}
