/**
 * The batch progress bar on a terminal: a pause Meta imposed counts down on its own, each second,
 * while rows wait (no row event needed), shows the pause that lifts last, and goes when they lift.
 * The bar writes to a stand-in terminal stream; the clock is vitest's.
 */
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchProgress, countdown } from '../../src/cli/batch-output.js';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-23T10:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A writable that says it is a terminal; `screen()` is the bar's last drawn line. */
function terminal() {
  const out = Object.assign(new PassThrough(), { isTTY: true, columns: 200, rows: 40, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString('utf8')));
  // eslint-disable-next-line no-control-regex
  // Colours (picocolors colours under CI=true) are dropped; any other control sequence ends a redraw.
  const screen = () =>
    text
      .replace(/\x1b\[[0-9;]*m/g, '')
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\n')
      .split(/[\r\n]/)
      .filter((l) => l.includes('rows'))
      .at(-1) ?? '';
  return { out, screen };
}

describe('batch progress bar', () => {
  it('counts a rate-limit pause down each second without row events, names the last to lift, and clears when it lifts', async () => {
    const t = terminal();
    const p = new BatchProgress(true, 10, t.out);
    await p.init('batch b1');
    const now = Date.now();
    p.event({ type: 'throttle', batch: 'b1', waba: '111', until: now + 65_000, message: 'x' });
    p.event({ type: 'throttle', batch: 'b1', waba: '222', until: now + 5_000, message: 'y' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.screen()).toMatch(/0\/10 rows .*WABA 111: resumes in 1m 04s \(1 more WABA paused\)/);
    await vi.advanceTimersByTimeAsync(5_000);
    // WABA 222's pause has lifted; WABA 111's counts on.
    expect(t.screen()).toMatch(/WABA 111: resumes in 59s$/);
    p.event({ type: 'row', batch: 'b1', line: 2, phone: '+15550001', migrationId: 'm1', state: 'awaiting_code' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.screen()).toMatch(/1\/10 rows .*resumes in 58s$/);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.screen()).toMatch(/1\/10 rows\s*$/);
    expect(vi.getTimerCount()).toBeGreaterThan(0); // the bar's own redraw timer still runs…
    p.stop();
    expect(vi.getTimerCount()).toBe(0); // …and nothing is left behind once stopped
  });

  it('formats what is left', () => {
    expect([countdown(0), countdown(1), countdown(59_001), countdown(60_000), countdown(3_599_000), countdown(3_600_000 + 120_000)]).toEqual(['0s', '1s', '1m 00s', '1m 00s', '59m 59s', '1h 02m']);
  });
});
