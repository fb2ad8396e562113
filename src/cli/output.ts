/**
 * Rendering: human output to stdout, progress to stderr (a spinner per step on a TTY, plain lines
 * otherwise), JSON as exactly one document on stdout. Colours follow picocolors (off with
 * NO_COLOR or when not a TTY).
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import type { Ora } from 'ora';
import type { CheckResult } from '../../machines/types.js';
import type { TransitionInfo } from '../runner/engine.js';
import type { MigrationView } from '../runner/view.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const STATUS_MARK: Record<string, string> = { pass: pc.green('pass'), fail: pc.red('fail'), unknown: pc.yellow('unknown') };

export function checksTable(checks: CheckResult[]): string {
  const t = new Table({ head: ['check', 'result', 'detail', 'fix'], colWidths: [19, 9, 44, 52], wordWrap: true, style: { head: [], border: [] } });
  for (const c of checks) t.push([c.name, STATUS_MARK[c.status] ?? c.status, c.detail, c.remedy || '-']);
  return t.toString();
}

export function printView(v: MigrationView): void {
  const color = v.state === 'completed' ? pc.green : v.state === 'failed' || v.state === 'blocked' ? pc.red : pc.cyan;
  const lines = [`Migration ${pc.bold(v.id)}: ${color(v.state)}${v.substate ? ` (${v.substate})` : ''}`];
  const row = (k: string, val: string | null | undefined) => {
    if (val) lines.push(`  ${k.padEnd(16)} ${val}`);
  };
  row('phone', v.phone);
  row('source WABA', v.sourceWabaId);
  row('destination', v.destWabaId);
  row('phone_number_id', v.phoneNumberId ? pc.bold(v.phoneNumberId) + (v.state === 'completed' ? pc.yellow('  ← NEW id: update every integration') : '') : null);
  if (v.failure) {
    row('error', `${v.failure.message} (code ${v.failure.code ?? '-'}, fbtrace_id ${v.failure.fbtraceId ?? '-'})`);
  }
  row('next', v.nextAction);
  for (const w of v.warnings) lines.push(`  ${pc.yellow('warning')}          ${w}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (v.state === 'blocked' && v.checks.length) process.stdout.write(`${checksTable(v.checks)}\n`);
}

const WORKING = new Set(['checking', 'creating', 'requesting_code', 'verifying_code', 'registering', 'confirming']);

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

  transition(t: TransitionInfo): void {
    if (!this.#enabled) return;
    const secs = ((performance.now() - this.#since) / 1000).toFixed(2);
    if (this.#current && this.#current !== t.to) {
      const calls = t.entry.calls.map((c) => `${c.method} ${c.path.replace(/^\/v[\d.]+/, '')} ${c.status ?? 'ERR'}`).join(', ');
      const text = `${this.#current} → ${t.to} (${secs} s)${calls ? pc.dim(`  ${calls}`) : ''}`;
      if (this.#spinner) this.#spinner.succeed(text);
      else process.stderr.write(`${text}\n`);
      this.#spinner = null;
    }
    if (this.#current !== t.to) {
      this.#since = performance.now();
      this.#current = t.to;
      if (this.#ora && WORKING.has(t.to)) this.#spinner = this.#ora({ text: t.to, stream: process.stderr }).start();
      else if (!this.#tty && t.from === null) process.stderr.write(`start → ${t.to}\n`);
    }
  }

  stop(): void {
    this.#spinner?.stop();
    this.#spinner = null;
  }
}
