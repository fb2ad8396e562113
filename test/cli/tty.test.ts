/**
 * What only a terminal shows, through a real pseudo-terminal (tmux): the PIN asked twice and
 * compared, a bad PIN asked again without losing the typed code, the code prompt unmasked and
 * accepting 123-456, cancel's confirmation, and Ctrl-C during a spinner.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

const SOCKET = `waba-tty-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

let w: World | undefined;
let n = 0;
afterEach(async () => {
  await w?.close();
  w = undefined;
});
beforeAll(() => undefined);
afterAll(() => {
  try {
    tmux('kill-server');
  } catch {
    // no server left
  }
});

/** Starts the CLI in a fresh tmux window (a real TTY of `cols` columns); returns helpers. */
function term(args: string[], env: Record<string, string>, cols = 120) {
  const name = `t${++n}`;
  const exports = Object.entries({ NO_COLOR: '1', ...env })
    .map(([k, v]) => `${k}='${v}'`)
    .join(' ');
  // The exit code is written to the screen when the CLI ends, so the test can read it.
  const cmd = `env -u CI ${exports} ${process.execPath} ${CLI} ${args.map((a) => `'${a}'`).join(' ')}; echo "EXIT=$?"; sleep 30`;
  tmux('new-session', '-d', '-s', name, '-x', String(cols), '-y', '50', cmd);
  const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', name);
  const waitFor = async (re: RegExp, ms = 10_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = screen();
      if (re.test(s)) return s;
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} on screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const type = (text: string) => tmux('send-keys', '-t', name, '-l', text);
  const key = (k: string) => tmux('send-keys', '-t', name, k);
  return { screen, waitFor, type, key };
}

const startArgs = (id: string) => ['start', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', id, '--confirm', 'two_step_disabled'];

describe.skipIf(!hasTmux)('on a terminal (tmux)', () => {
  it('code unmasked with 123-456; PIN masked, asked twice, mismatch and bad PIN asked again', async () => {
    w = await world();
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const s = await runCli(startArgs('tty1'), env);
    expect(s.code, s.stderr).toBe(0);
    const pnid = JSON.parse((await runCli(['status', 'tty1', '--json'], env)).stdout).phoneNumberId;
    const code = w.sandbox.lastCodeFor(pnid)!.code;
    const t = term(['resume', 'tty1'], env);
    await t.waitFor(/Verification code/);
    t.type(`${code.slice(0, 3)}-${code.slice(3)}`);
    // The one-time code is shown as typed (not a lasting secret).
    await t.waitFor(new RegExp(`${code.slice(0, 3)}-${code.slice(3)}`));
    t.key('Enter');
    await t.waitFor(/Register PIN/);
    t.type('12345'); // too short: asked again in place
    t.key('Enter');
    await t.waitFor(/exactly 6 digits/);
    t.key('BSpace');
    for (let i = 0; i < 5; i++) t.key('BSpace');
    t.type('246810');
    t.key('Enter');
    await t.waitFor(/Type the PIN again/);
    t.type('246811'); // mismatch
    t.key('Enter');
    await t.waitFor(/The two PINs differ/);
    await t.waitFor(/Register PIN[\s\S]*The two PINs differ[\s\S]*Register PIN/);
    t.type('246810');
    t.key('Enter');
    await t.waitFor(/Type the PIN again[\s\S]*Type the PIN again/);
    t.type('246810');
    t.key('Enter');
    const end = await t.waitFor(/EXIT=\d+/, 20_000);
    expect(end).toMatch(/EXIT=0/);
    expect(end).toMatch(/completed/);
    expect(end).not.toContain('246810'); // the PIN never shows
  });

  it('a wrong code on a TTY shows Meta\'s words and asks again', async () => {
    w = await world({ scenario: 'wrong_code' });
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url, WABA_REGISTER_PIN: '246810' };
    await runCli(startArgs('tty2'), env);
    const pnid = JSON.parse((await runCli(['status', 'tty2', '--json'], env)).stdout).phoneNumberId;
    const t = term(['resume', 'tty2'], env);
    await t.waitFor(/Verification code/);
    t.type('000 000');
    t.key('Enter');
    await t.waitFor(/Meta refused the code: .+[\s\S]*Verification code/);
    t.type(w.sandbox.lastCodeFor(pnid)!.code);
    t.key('Enter');
    const end = await t.waitFor(/EXIT=\d+/, 20_000);
    expect(end).toMatch(/EXIT=0/);
  });

  it('cancel asks on a TTY; no keeps it, --yes does not ask', async () => {
    w = await world();
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    await runCli(startArgs('tty3'), env);
    const t = term(['cancel', 'tty3', '--reason', 'test'], env);
    await t.waitFor(/Cancel migration tty3/);
    t.type('n');
    t.key('Enter');
    await t.waitFor(/Not cancelled[\s\S]*EXIT=0/);
    expect(JSON.parse((await runCli(['status', 'tty3', '--json'], env)).stdout).state).toBe('awaiting_code');
    const y = term(['cancel', 'tty3', '--yes'], env);
    await y.waitFor(/EXIT=0/);
    expect(y.screen()).not.toContain('Cancel migration');
    expect(JSON.parse((await runCli(['status', 'tty3', '--json'], env)).stdout).state).toBe('cancelled');
  });

  it('Ctrl-C during a spinner stops before the next request and exits 130', async () => {
    w = await world({ latencyMs: 400 });
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const t = term(startArgs('tty4'), env);
    await t.waitFor(/checking/);
    t.key('C-c');
    const end = await t.waitFor(/EXIT=\d+/, 15_000);
    expect(end).toMatch(/EXIT=130/);
    expect(end).toContain('waba-migrate resume tty4');
    expect(w.sandbox.outbox).toHaveLength(0); // no SMS was sent
  });

  it('a wait in-process (retry backoff after an HTTP 503) shows a live countdown, updated each second', async () => {
    w = await world();
    // A 10 s wait: the first screen this test reads (it polls tmux, and a loaded machine can
    // delay that by seconds) must still leave at least two updates to see.
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 10 });
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const t = term([...startArgs('tty-cd'), '--retry-base-ms', '1'], env, 200);
    const first = await t.waitFor(/retrying creating in \d+ s \(HTTP 503 from Meta, code 2\) — Ctrl-C to stop, resume later with: waba-migrate resume tty-cd/);
    const n1 = Number(/retrying creating in (\d+) s/.exec(first)![1]);
    expect(n1).toBeGreaterThanOrEqual(3);
    expect(n1).toBeLessThanOrEqual(10);
    // The same line counts down in place (not a new line per second).
    const later = await t.waitFor(new RegExp(`retrying creating in (${Array.from({ length: n1 - 1 }, (_, i) => i).join('|')}) s`), 5_000);
    expect(later.match(/retrying creating in/g)).toHaveLength(1);
    const end = await t.waitFor(/EXIT=\d+/, 30_000);
    expect(end).toMatch(/EXIT=0/);
    expect(end).toMatch(/awaiting_code/);
    expect(end).not.toMatch(/retrying creating in/); // replaced by the transition once the wait is over
    expect(w.sandbox.counters['POST phone_numbers']).toMatchObject({ faults: 1, applied: 1 });
  });

  it('Ctrl-C during the countdown stops at once (exit 130) and says how to resume', async () => {
    w = await world();
    w.sandbox.failNext('POST phone_numbers', 503, { retryAfterSec: 30 });
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const t = term([...startArgs('tty-cc'), '--retry-base-ms', '1'], env, 200);
    await t.waitFor(/retrying creating in \d+ s/);
    t.key('C-c');
    const end = await t.waitFor(/EXIT=\d+/, 10_000);
    expect(end).toMatch(/EXIT=130/);
    expect(end).toMatch(/waiting_retry[\s\S]*waba-migrate resume tty-cc/);
    expect(w.sandbox.counters['POST phone_numbers']!.calls).toBe(1); // nothing more was sent
  });

  it('status --watch follows until a person is needed', async () => {
    w = await world({ latencyMs: 150 });
    const env = { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: w.dir, WABA_GRAPH_URL: w.url };
    const started = runCli(startArgs('tty5'), env);
    // Watch from the moment the document exists, while the run is still working.
    while (!(await w.store.exists('tty5'))) await new Promise((r) => setTimeout(r, 20));
    const t = term(['status', 'tty5', '--watch', '--interval', '100'], env);
    const end = await t.waitFor(/EXIT=\d+/, 20_000);
    await started;
    expect(end).toMatch(/awaiting_code/);
    expect(end).toMatch(/EXIT=0/);
  });
});
