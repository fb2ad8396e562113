/**
 * Issue 11 items 9 and 15 through the real CLI, without a terminal: an in-process wait prints
 * one countdown line (tmux covers the live countdown, test/cli/tty.test.ts); `--verbose` prints a
 * line per Graph call (method, path without the token, status, Meta's code, fbtrace_id, duration)
 * and per transition to stderr; `--quiet` prints none of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const envFor = (x: World) => ({ WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: x.dir, WABA_GRAPH_URL: x.url });
const startArgs = (id: string, extra: string[] = []) => ['start', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', id, '--confirm', 'two_step_disabled', '--retry-base-ms', '1', ...extra];

describe('waits and --verbose', () => {
  it('not a TTY: one countdown line for an in-process retry wait, then the run goes on', async () => {
    w = await world();
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 2 });
    const r = await runCli(startArgs('cd1'), envFor(w));
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.includes('retrying'));
    expect(lines).toEqual([expect.stringMatching(/^retrying creating in [12] s \(HTTP 503 from Meta, code 2\) — Ctrl-C to stop, resume later with: waba-migrate resume cd1$/)]);
    expect(r.stdout).toMatch(/awaiting_code/);
  });

  it('--verbose: a line per Graph call and per transition on stderr, with Meta\'s code and fbtrace_id; never the token', async () => {
    w = await world();
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 1 });
    const r = await runCli(startArgs('vb1', ['--verbose']), envFor(w));
    expect(r.code, r.stderr).toBe(0);
    const calls = r.stderr.split('\n').filter((l) => l.startsWith('call '));
    // Every Graph call of the run, each once.
    const total = Object.values(w.sandbox.counters).reduce((a, c) => a + c.calls, 0);
    expect(calls).toHaveLength(total);
    for (const c of calls) expect(c).toMatch(/^call (GET|POST) \/v23\.0\/[\w/]+ → (\d{3}|no answer)( code \d+)? fbtrace_id \S+ \d+ ms/);
    expect(calls).toContainEqual(expect.stringMatching(/^call POST \/v23\.0\/\d+\/phone_numbers → 503 code 2 fbtrace_id [A-Za-z0-9_-]+ \d+ ms$/));
    expect(calls).toContainEqual(expect.stringMatching(/^call POST \/v23\.0\/\d+\/phone_numbers → 200 fbtrace_id \S+ \d+ ms$/));
    expect(calls).toContainEqual(expect.stringMatching(/^call POST \/v23\.0\/\d+\/request_code → 200/));
    const transitions = r.stderr.split('\n').filter((l) => l.startsWith('transition '));
    expect(transitions[0]).toMatch(/^transition vb1: ∅ → checking \(.+\)$/);
    expect(transitions).toContainEqual(expect.stringMatching(/^transition vb1: creating → waiting_retry \(/));
    expect(transitions).toContainEqual(expect.stringMatching(/^transition vb1: waiting_retry → creating \(/));
    expect(transitions[transitions.length - 1]).toMatch(/→ awaiting_code/);
    expect(r.stderr + r.stdout).not.toContain(FIXTURES.token);
    // --json keeps stdout one JSON document; the detail stays on stderr.
    const j = await runCli(['status', 'vb1', '--json', '--verbose'], envFor(w));
    expect(JSON.parse(j.stdout).state).toBe('awaiting_code');
  });

  it('--verbose on check shows the same call lines; --quiet shows no progress, calls, transitions or countdown', async () => {
    w = await world();
    const env = envFor(w);
    const c = await runCli(['check', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--confirm', 'two_step_disabled', '--verbose'], env);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/^call GET \/v23\.0\/\d+\/phone_numbers → 200 fbtrace_id \S+ \d+ ms$/m);
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 1 });
    const q = await runCli(startArgs('q1', ['--quiet']), env);
    expect(q.code, q.stderr).toBe(0);
    expect(q.stderr).not.toMatch(/^(call|transition) /m);
    expect(q.stderr).not.toMatch(/retrying|→/);
    expect(w.sandbox.counters['POST phone_numbers']!.faults).toBe(1); // it did wait and retry, silently
  });
});
