/**
 * Rendering: human output to stdout, progress to stderr (a spinner per step on a TTY, plain lines
 * otherwise), JSON as exactly one document on stdout. Colours follow picocolors (off with
 * NO_COLOR or when not a TTY).
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import type { Ora } from 'ora';
import type { CheckResult } from '../../machines/types.js';
import type { CallSummary } from '../graph/client.js';
import type { TransitionInfo, WaitInfo } from '../runner/engine.js';
import { formatCarryOver, type MigrationView } from '../runner/view.js';
import { eventInWords, fitWidths, formatTime, localizeSentence, stacked, terminalColumns } from './format.js';

const THROTTLE_CODES = new Set([4, 80007, 130429]);
const ONPREM_STEPS = new Set(['snapshotting', 'backing_up']);

/** Why a run waits, in a few words: "HTTP 503 from Meta, code 2", "Meta's rate limit, code 80007". */
export function waitReason(w: Pick<WaitInfo, 'step' | 'error'>): string {
  const f = w.error;
  const who = ONPREM_STEPS.has(w.step) ? 'the On-Premises client' : 'Meta';
  if ((f.code !== null && THROTTLE_CODES.has(f.code)) || f.message.startsWith('throttled by Meta')) {
    const waba = /on WABA (\d+)/.exec(f.message)?.[1];
    return `Meta's rate limit${waba ? ` on WABA ${waba}` : ''}${f.code !== null ? `, code ${f.code}` : ''}`;
  }
  if (f.httpStatus !== null) return `HTTP ${f.httpStatus} from ${who}${f.code !== null ? `, code ${f.code}` : ''}`;
  const m = f.message.length > 60 ? `${f.message.slice(0, 59)}…` : f.message;
  return f.kind === 'network' ? `no answer from ${who}: ${m}` : m;
}

/** The countdown line: "retrying creating in 12 s (HTTP 503 from Meta, code 2) — Ctrl-C to stop, resume later with: waba-migrate resume <id>". */
export function countdownText(w: WaitInfo, now = Date.now()): string {
  const secs = Math.max(0, Math.ceil((w.until - now) / 1000));
  const what = w.kind === 'rate_limit' ? `${w.step}: next call in ${secs} s` : `retrying ${w.step} in ${secs} s`;
  return `${what} (${waitReason(w)}) — Ctrl-C to stop, resume later with: waba-migrate resume ${w.id}`;
}

/** `--verbose`: one line per Graph (or On-Premises) call; the path never holds the token. */
export function callLine(c: CallSummary): string {
  const err = c.status === null && c.error ? ` (${c.error.length > 80 ? `${c.error.slice(0, 79)}…` : c.error})` : '';
  return `call ${c.method} ${c.path} → ${c.status ?? 'no answer'}${c.code !== null ? ` code ${c.code}` : ''} fbtrace_id ${c.fbtraceId ?? '-'} ${Math.round(c.durationMs)} ms${err}`;
}

/** `--verbose`: one line per transition. */
export function transitionLine(t: TransitionInfo): string {
  return `transition ${t.id}: ${t.from ?? '∅'} → ${t.to} (${eventInWords(t.entry.event, t.entry.by)})`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const STATUS_MARK: Record<string, string> = { pass: pc.green('pass'), fail: pc.red('fail'), unknown: pc.yellow('unknown') };

export function checksTable(checks: CheckResult[]): string {
  const head = ['check', 'result', 'detail', 'fix'];
  const rows = checks.map((c) => [c.name, c.status, c.detail, c.remedy || '-']);
  const cols = terminalColumns();
  const widths = cols > 80 ? fitWidths(rows, head, [true, true, false, false], [0, 0, 1, 1], cols) : null;
  if (!widths) return stacked(head, rows.map((r) => [r[0]!, STATUS_MARK[r[1]!] ?? r[1]!, r[2]!, r[3]!]));
  const t = new Table({ head, colWidths: widths, wordWrap: true, style: { head: [], border: [] } });
  for (const r of rows) t.push([r[0]!, STATUS_MARK[r[1]!] ?? r[1]!, r[2]!, r[3]!]);
  return t.toString();
}

export interface ViewDisplay {
  localTime?: boolean;
  /** A live process holding the migration's lock: it is running, not interrupted. */
  holder?: { pid: number; host: string; since: string } | null;
}

/** What `status`/`list` say of a migration whose lock a live process holds. */
export function runningText(h: { pid: number; host: string; since: string }, local: boolean): string {
  return `running in pid ${h.pid} on host ${h.host} since ${formatTime(h.since, local)}; wait for it, or watch it: waba-migrate status <id> --watch`;
}

export function printView(v: MigrationView, d: ViewDisplay = {}): void {
  const local = d.localTime === true;
  const color = v.state === 'completed' ? pc.green : v.state === 'failed' || v.state === 'blocked' ? pc.red : pc.cyan;
  const lines = [`Migration ${pc.bold(v.id)}: ${color(v.state)}${v.substate ? ` (${v.substate})` : ''}`];
  const row = (k: string, val: string | null | undefined) => {
    if (val) lines.push(`  ${k.padEnd(16)} ${val}`);
  };
  row('phone', v.phone);
  if (v.from === 'onprem') row('WABA', `${v.destWabaId} (from an On-Premises client; the number stays in it)`);
  else {
    row('source WABA', v.sourceWabaId);
    row('destination', v.destWabaId);
  }
  row('phone_number_id', v.phoneNumberId ? pc.bold(v.phoneNumberId) + (v.state === 'completed' && v.from !== 'onprem' ? pc.yellow('  ← NEW id: update every integration') : '') : null);
  if (v.state === 'completed' && v.previousPhoneNumberId && v.from !== 'onprem') row('old id', `${v.previousPhoneNumberId}  (the source WABA's id: stop using it)`);
  if (v.state === 'waiting_retry' && v.retry) row('waiting', pc.yellow(`${v.retry.step} retries after ${formatTime(v.retry.retryAt, local, true)} (${v.retry.error})`));
  if (v.failure) {
    row('error', `${v.failure.message} (code ${v.failure.code ?? '-'}, fbtrace_id ${v.failure.fbtraceId ?? '-'})`);
  }
  row('next', d.holder ? runningText(d.holder, local).replace('<id>', v.id) : localizeSentence(v.nextAction, local));
  const n = v.notifications;
  if (n && (n.pending || n.dead))
    row(
      'notifications',
      n.endpointDisabled
        ? `${n.pending} pending, ${pc.red(n.endpointDisabled.label)} at ${n.endpointDisabled.endpoint}${n.dead ? `, ${pc.red(`${n.dead} dead`)}` : ''}: the receiver refused them; fix it, then waba-migrate notify enable`
        : `${n.pending} pending${n.dead ? `, ${pc.red(`${n.dead} dead`)}` : ''}${n.pending && n.nextAttemptAt ? `, next attempt ${n.nextAttemptAt}` : ''}${n.lastError ? ` (last error: ${n.lastError})` : ''}: waba-migrate notify list`,
    );
  for (const w of v.warnings) lines.push(`  ${pc.yellow('warning')}          ${w}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (v.state === 'blocked' && v.checks.length) process.stdout.write(`${checksTable(v.checks)}\n`);
  if (v.carryOver?.length) process.stdout.write(`${formatCarryOver(v.carryOver)}\n`);
}

const WORKING = new Set(['checking', 'creating', 'requesting_code', 'verifying_code', 'registering', 'confirming', 'snapshotting', 'backing_up', 'carrying_settings']);

/** One line per step: a spinner while it runs, then the step and its duration. */
export class Progress {
  #spinner: Ora | null = null;
  #since = performance.now();
  #current: string | null = null;
  readonly #tty: boolean;
  readonly #enabled: boolean;
  #ora: typeof import('ora').default | null = null;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
    this.#tty = Boolean(process.stderr.isTTY);
  }

  async init(): Promise<void> {
    if (this.#enabled && this.#tty) this.#ora = (await import('ora')).default;
  }

  #countdown: NodeJS.Timeout | null = null;
  #pendingWait: WaitInfo | null = null;

  /** A `--verbose` line on stderr, without tearing a spinner that is showing. */
  log(line: string): void {
    if (this.#spinner) {
      this.#spinner.clear();
      process.stderr.write(`${line}\n`);
      this.#spinner.render();
    } else process.stderr.write(`${line}\n`);
  }

  /**
   * The run waits in-process: a TTY shows a countdown updated each second until the next
   * transition; elsewhere one line. Shown once the `waiting_retry` transition itself is printed.
   */
  wait(w: WaitInfo): void {
    if (!this.#enabled) return;
    if (w.kind === 'retry' && this.#current !== 'waiting_retry') {
      this.#pendingWait = w;
      return;
    }
    this.#stopCountdown();
    if (!this.#ora) {
      process.stderr.write(`${countdownText(w)}\n`);
      return;
    }
    // A rate-limit pause inside a working step borrows its spinner and gives the text back after.
    const borrowed = w.kind === 'rate_limit' && this.#spinner ? { spinner: this.#spinner, text: this.#spinner.text } : null;
    if (!borrowed) this.#spinner?.stop();
    const spinner = borrowed?.spinner ?? this.#ora({ text: countdownText(w), stream: process.stderr, discardStdin: false }).start();
    spinner.text = countdownText(w);
    this.#spinner = spinner;
    this.#countdown = setInterval(() => {
      if (borrowed && Date.now() >= w.until) {
        spinner.text = borrowed.text;
        this.#stopCountdown();
        return;
      }
      spinner.text = countdownText(w);
    }, 1000);
    this.#countdown.unref();
  }

  #stopCountdown(): void {
    if (this.#countdown) clearInterval(this.#countdown);
    this.#countdown = null;
  }

  transition(t: TransitionInfo): void {
    if (!this.#enabled) return;
    this.#stopCountdown();
    const secs = ((performance.now() - this.#since) / 1000).toFixed(2);
    if (this.#current && this.#current !== t.to) {
      const calls = t.entry.calls.map((c) => `${c.method} ${c.path.replace(/^\/v[\d.]+/, '')} ${c.status ?? 'ERR'}`).join(', ');
      const text = `${this.#current} → ${t.to} (${secs} s)${calls ? pc.dim(`  ${calls}`) : ''}`;
      // A wait is not a success: no green tick for waiting_retry.
      const waiting = t.to === 'waiting_retry';
      const shown = waiting && t.view.retry ? `${text}: ${t.view.retry.step} retries after ${formatTime(t.view.retry.retryAt, false, true)}` : text;
      if (this.#spinner) {
        if (waiting) this.#spinner.warn(shown);
        else this.#spinner.succeed(shown);
      } else process.stderr.write(`${shown}\n`);
      this.#spinner = null;
    }
    if (this.#current !== t.to) {
      this.#since = performance.now();
      this.#current = t.to;
      if (this.#ora && WORKING.has(t.to)) this.#spinner = this.#ora({ text: t.to, stream: process.stderr, discardStdin: false }).start(); // discardStdin would swallow Ctrl-C
      else if (!this.#tty && t.from === null) process.stderr.write(`start → ${t.to}\n`);
    }
    if (t.to === 'waiting_retry' && this.#pendingWait) {
      const w = this.#pendingWait;
      this.#pendingWait = null;
      this.wait(w);
    } else if (t.to !== 'waiting_retry') this.#pendingWait = null;
  }

  stop(): void {
    this.#stopCountdown();
    this.#spinner?.stop();
    this.#spinner = null;
  }
}
