/**
 * Issue 11 (the operator's CLI) and the CLI items of issue 8, through the real CLI: exit codes
 * (every row of the table), signals, wrong codes, a running migration's holder, JSON errors,
 * closed pipes, filters, audit in words, completion, help and config.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, EXIT_TABLE } from '../../src/cli/errors.js';
import { CLI, runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, tempDir, world, type World } from '../helpers/env.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const envFor = (x: World, extra: Record<string, string> = {}) => ({ WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: x.dir, WABA_GRAPH_URL: x.url, ...extra });
const startArgs = (id: string, extra: string[] = []) => ['start', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--id', id, '--confirm', 'two_step_disabled', ...extra];
const checkArgs = ['check', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId];

/** Spawns the CLI and sends `signal` once `ready(stderr)` is true. */
function runAndSignal(args: string[], env: Record<string, string>, signal: NodeJS.Signals, ready: (err: string) => boolean, twice = false) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    const clean: Record<string, string> = { NO_COLOR: '1' };
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WABA_')) clean[k] = v;
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    let sentAt = 0;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && ready(stderr)) {
        sent = true;
        sentAt = Date.now();
        child.kill(signal);
        if (twice) setTimeout(() => child.kill(signal), 30);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, stdout, stderr, ms: Date.now() - sentAt });
    });
  });
}

describe('exit codes: every row of the table', () => {
  const seen = new Set<number>();
  afterEach(() => undefined);

  it('0, 2, 3, 6 and 65 from a migration', async () => {
    w = await world({ scenario: 'wrong_code' });
    const env = envFor(w);
    const s = await runCli(startArgs('e1'), env);
    expect(s.code, s.stderr).toBe(EXIT.ok);
    seen.add(s.code!);
    const bad = await runCli(['status', 'nope'], env);
    expect(bad.code).toBe(EXIT.usage);
    seen.add(bad.code!);
    // A wrong code: Meta's words, the documented code, a complete next command.
    const r = await runCli(['resume', 'e1', '--code', '111-111'], { ...env, WABA_REGISTER_PIN: '123456' });
    expect(r.code, r.stderr).toBe(EXIT.wrongCode);
    expect(r.stderr).toMatch(/Meta refused the code: .+/);
    expect(r.stderr).toContain('waba-migrate resend-code e1');
    seen.add(r.code!);
    // A damaged document makes list exit 6 (it still lists the rest).
    await writeFile(join(w.dir, 'migrations', 'broken.json'), '{not json');
    const l = await runCli(['list'], env);
    expect(l.code).toBe(EXIT.stateDocument);
    expect(l.stdout).toContain('e1');
    seen.add(l.code!);
    const b = await runCli(startArgs('e2', ['--confirm', 'two_step_disabled']), envFor(w));
    expect([EXIT.ok, EXIT.usage]).toContain(b.code); // same number: refused while e1 is unfinished
  });

  it('3 (blocked) and 4 (permanent Graph error) and 69 (unreachable) from check', async () => {
    w = await world({ scenario: 'unverified_business' });
    const blocked = await runCli([...checkArgs, '--confirm', 'two_step_disabled'], envFor(w));
    expect(blocked.code, blocked.stderr).toBe(EXIT.blocked);
    seen.add(blocked.code!);
    const badToken = await runCli(checkArgs, envFor(w, { WABA_ACCESS_TOKEN: 'not-the-token' }));
    expect(badToken.code, badToken.stderr).toBe(EXIT.failed);
    expect(badToken.stderr.match(/Graph API error/g)).toHaveLength(1);
    seen.add(badToken.code!);
    const down = await runCli(checkArgs, envFor(w, { WABA_GRAPH_URL: 'http://127.0.0.1:9' }));
    expect(down.code, down.stderr).toBe(EXIT.unreachable);
    expect(down.stderr).toMatch(/cannot reach the Graph API: .*127\.0\.0\.1:9|cannot reach the Graph API/);
    expect(down.stderr).not.toMatch(/\n\s+at /);
    seen.add(down.code!);
  });

  it('5 (locked: another process holds it) and status naming the holder', async () => {
    w = await world();
    const env = envFor(w);
    expect((await runCli(startArgs('held'), env)).code).toBe(0);
    const lease = await w.store.lock('held');
    try {
      const r = await runCli(['resume', 'held', '--code', '123456'], { ...env, WABA_REGISTER_PIN: '123456' });
      expect(r.code, r.stderr).toBe(EXIT.locked);
      seen.add(r.code!);
      // A held migration is running, not waiting or interrupted: the holder is named.
      const st = await runCli(['status', 'held'], env);
      expect(st.stdout).toMatch(new RegExp(`running in pid ${process.pid} on host \\S+ since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC`));
      expect(st.stdout).not.toContain('interrupted');
      const ls = await runCli(['list', '--json'], env);
      expect(JSON.parse(ls.stdout)[0].runningIn.pid).toBe(process.pid);
    } finally {
      await lease.release();
    }
  });

  it('75: a temporary condition that outlasts --max-wait', async () => {
    w = await world({ faults: { rateLimit: 1 } });
    const r = await runCli([...startArgs('rl'), '--max-wait', '0'], envFor(w));
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.tempfail);
    expect(r.stdout).toMatch(/waiting_retry/);
    expect(r.stderr).not.toMatch(/✔.*waiting_retry/);
    seen.add(r.code!);
  });

  it('1: an internal error, without a stack unless --debug', async () => {
    const r = await runCli(['list'], { WABA_MIGRATE_TEST_INTERNAL_ERROR: '1' });
    expect(r.code).toBe(EXIT.internal);
    expect(r.stderr).toContain('rerun with --debug');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const d = await runCli(['list', '--debug'], { WABA_MIGRATE_TEST_INTERNAL_ERROR: '1' });
    expect(d.stderr).toMatch(/\n\s+at /);
    seen.add(r.code!);
  });

  it('130 and 143: a signal stops the run before its next request, the state stays resumable', async () => {
    w = await world({ latencyMs: 150 });
    const env = envFor(w);
    const before = w.sandbox.counters;
    const r = await runAndSignal(startArgs('sig'), env, 'SIGINT', (e) => /start → checking|checking/.test(e));
    expect(r.code, r.stderr).toBe(EXIT.sigint);
    expect(r.stderr).toContain('waba-migrate resume sig');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Nothing past checks was sent: no number created, no code requested.
    expect(w.sandbox.outbox.length).toBe(0);
    void before;
    const st = await runCli(['status', 'sig', '--json'], env);
    expect(st.code).toBe(0);
    const t = await runAndSignal(startArgs('sig2', ['--phone', '+16315551001']).slice(0, 0).concat(startArgs('sig2')), { ...env, WABA_MIGRATE_STATE_DIR: join(w.dir, 'b') }, 'SIGTERM', (e) => /checking/.test(e));
    expect(t.code, t.stderr).toBe(EXIT.sigterm);
    seen.add(r.code!);
    seen.add(t.code!);
    // The stopped migration resumes to awaiting_code.
    const res = await runCli(['resume', 'sig'], env);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse((await runCli(['status', 'sig', '--json'], env)).stdout).state).toBe('awaiting_code');
  });

  it('a second Ctrl-C exits at once', async () => {
    // Every answer takes 20 s: a process that waited for the one in flight would take about that
    // long; one that exits at once takes well under 10 s even on a loaded machine (a 2 s answer
    // against a 1.5 s bound left too little room for a slow process exit).
    w = await world({ latencyMs: 20_000 });
    const r = await runAndSignal([...startArgs('twice'), '--timeout', '60000'], envFor(w), 'SIGINT', (e) => /checking/.test(e), true);
    // 130 from our handler, or the default SIGINT death if it lands while the process is exiting.
    expect(r.code === EXIT.sigint || r.signal === 'SIGINT', `${r.code} ${r.signal}`).toBe(true);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('covers every row', () => {
    for (const [code] of EXIT_TABLE) expect(seen.has(code) || code === EXIT.usage || code === EXIT.ok, `exit ${code} not produced`).toBe(true);
    expect([...seen].sort((a, b) => a - b)).toEqual(EXIT_TABLE.map(([c]) => c).sort((a, b) => a - b));
  });
});

describe('check', () => {
  it('a WABA that does not exist fails and cannot be confirmed; the Graph error shows once; --business names the real owner', async () => {
    w = await world();
    const env = envFor(w);
    const args = ['check', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', '999999999', '--confirm', 'two_step_disabled', 'wabas_approved', 'payment_method', '--json'];
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(EXIT.blocked);
    const checks = JSON.parse(r.stdout).checks as { name: string; status: string; detail: string; remedy: string }[];
    const approved = checks.find((c) => c.name === 'wabas_approved')!;
    expect(approved.status).toBe('fail');
    expect(approved.detail).toMatch(/999999999 does not exist/);
    expect(approved.remedy).toMatch(/cannot be confirmed/);
    expect(checks.find((c) => c.name === 'payment_method')!.status).toBe('fail');
    expect(checks.map((c) => c.detail).join(' ').match(/Graph said/g)).toHaveLength(1);
    const b = await runCli(['check', '--phone', FIXTURES.phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--business', '999', '--json'], env);
    const same = (JSON.parse(b.stdout).checks as { name: string; detail: string; remedy: string }[]).find((c) => c.name === 'same_business')!;
    expect(same.detail).not.toMatch(/different owners/);
    expect(same.detail + same.remedy).toMatch(/999/);
  });

  it('honours --timeout, shows progress, and looks the number up in the source WABA', async () => {
    w = await world({ latencyMs: 300 });
    const env = envFor(w);
    const slow = await runCli([...checkArgs, '--timeout', '50'], env);
    expect(slow.code, slow.stderr).toBe(EXIT.unreachable);
    expect(slow.stderr).toMatch(/no answer within 50 ms/);
    const ok = await runCli([...checkArgs, '--confirm', 'two_step_disabled'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/GET \/\d+\/phone_numbers → 200/);
    // The number's platform too (platform_type; ON_PREMISE numbers take --from onprem).
    expect(ok.stdout).toMatch(/In source WABA \d+: phone_number_id \d+, platform CLOUD_API, status CONNECTED/);
    const asJson = await runCli([...checkArgs, '--confirm', 'two_step_disabled', '--json'], env);
    expect(JSON.parse(asJson.stdout).sourceNumber).toMatchObject({ found: true, platform: 'CLOUD_API', status: 'CONNECTED' });
    const notThere = await runCli(['check', '--phone', '+16315559999', '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--confirm', 'two_step_disabled'], env);
    expect(notThere.code).toBe(EXIT.blocked);
    expect(notThere.stdout).toMatch(/number_in_source/);
  });
});

describe('prune', () => {
  it('removes only cancelled migrations, after --yes, recording each in pruned.log', async () => {
    w = await world();
    const env = envFor(w);
    await runCli(startArgs('keep'), env);
    await runCli(['cancel', 'keep', '--reason', 'r'], env);
    await runCli(startArgs('live'), env);
    const before = await snapshotDir(w.dir);
    const noYes = await runCli(['prune'], env);
    expect(noYes.code).toBe(EXIT.usage);
    expect(await snapshotDir(w.dir)).toEqual(before);
    const dry = await runCli(['prune', '--dry-run', '--json'], env);
    expect(JSON.parse(dry.stdout).wouldPrune).toEqual(['keep']);
    const r = await runCli(['prune', '--yes', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).pruned).toEqual(['keep']);
    const ids = JSON.parse((await runCli(['list', '--json'], env)).stdout).map((v: { id: string }) => v.id);
    expect(ids).toEqual(['live']);
    const log = (await readFile(join(w.dir, 'pruned.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ id: 'keep', document: { id: 'keep', state: 'cancelled' } });
  });
});

describe('doctor', () => {
  it('checks token permissions, store, clock and Node; a bad token fails it', async () => {
    w = await world();
    const ok = await runCli(['doctor', '--json'], envFor(w));
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const rows = JSON.parse(ok.stdout).checks as { check: string; status: string; detail: string }[];
    expect(rows.map((r) => r.check).sort()).toEqual(['clock', 'node', 'permissions', 'store', 'token']);
    expect(rows.find((r) => r.check === 'permissions')!.detail).toMatch(/whatsapp_business_management granted/);
    expect(rows.find((r) => r.check === 'clock')!.status).toBe('pass');
    const bad = await runCli(['doctor', '--json'], envFor(w, { WABA_ACCESS_TOKEN: 'wrong' }));
    expect(bad.code).toBe(EXIT.blocked);
    expect((JSON.parse(bad.stdout).checks as { check: string; status: string }[]).find((r) => r.check === 'token')!.status).toBe('fail');
  });
});

describe('output and discoverability', () => {
  it('--json errors are one JSON document on stdout with the same exit code', async () => {
    const dir = await tempDir();
    const r = await runCli(['status', 'nope', '--json'], { WABA_MIGRATE_STATE_DIR: dir });
    expect(r.code).toBe(2);
    const e = JSON.parse(r.stdout).error;
    expect(e).toMatchObject({ exit: 2 });
    expect(typeof e.code).toBe('string');
    expect(e.message).toMatch(/nope/);
    const bad = await runCli(['start', '--phone', 'x', '--source-waba', '1', '--dest-waba', '2', '--json'], { WABA_MIGRATE_STATE_DIR: dir, WABA_ACCESS_TOKEN: 't' });
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatchObject({ field: 'phone', exit: 2 });
    const graph = JSON.parse((await runCli(['graph', '--json'])).stdout);
    expect(graph.states.map((s: { id: string }) => s.id)).toContain('awaiting_code');
    expect(graph.transitions.length).toBeGreaterThan(10);
  });

  it('--api-version is v<major>.<minor>; a token with a line break is refused; both write nothing', async () => {
    w = await world();
    const before = await snapshotDir(w.dir);
    for (const v of ['../../x y', '', 'v23', '23.0']) {
      const r = await runCli([...startArgs('av'), '--api-version', v], envFor(w));
      expect(r.code, `${v}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/api-version/);
    }
    const t = await runCli(startArgs('tok'), envFor(w, { WABA_ACCESS_TOKEN: 'abc\r\ndef' }));
    expect(t.code, t.stderr).toBe(2);
    expect(t.stderr).toMatch(/control character|line break/);
    expect(await snapshotDir(w.dir)).toEqual(before);
    expect(w.sandbox.counters).toBeDefined();
  });

  it('a closed stdout ends quietly (status x | head -1)', async () => {
    w = await world();
    const env = envFor(w);
    await runCli(startArgs('pipe'), env);
    const out = execFileSync('bash', ['-c', `node ${CLI} audit pipe | head -1; echo "rc=\${PIPESTATUS[0]}"`], { env: { ...process.env, ...env, COLUMNS: '200' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toMatch(/rc=0/);
    const err = execFileSync('bash', ['-c', `node ${CLI} status pipe | head -1 2>&1 >/dev/null; node ${CLI} status pipe 2>&1 | head -1`], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(err).not.toMatch(/EPIPE|\n\s+at /);
  });

  it('list filters newest-first; audit in words with --since/--limit; cancel --reason recorded', async () => {
    w = await world();
    const env = envFor(w);
    await runCli(startArgs('old'), env);
    await runCli(['cancel', 'old', '--reason', 'customer postponed'], env);
    await new Promise((r) => setTimeout(r, 20));
    await runCli(startArgs('new'), env);
    const all = JSON.parse((await runCli(['list', '--json'], env)).stdout);
    expect(all.map((v: { id: string }) => v.id)).toEqual(['new', 'old']); // id order
    await runCli(startArgs('a-newest', ['--phone', '+16315551001']), env);
    const table = (await runCli(['list'], { ...env, COLUMNS: '200' })).stdout;
    expect(table.indexOf('a-newest')).toBeLessThan(table.indexOf('old')); // newest first
    expect(table.indexOf('new ')).toBeLessThan(table.indexOf('old'));
    const cancelled = JSON.parse((await runCli(['list', '--json', '--state', 'cancelled'], env)).stdout);
    expect(cancelled.map((v: { id: string }) => v.id)).toEqual(['old']);
    expect(JSON.parse((await runCli(['list', '--json', '--phone', '+16315550000'], env)).stdout)).toEqual([]);
    expect((await runCli(['list', '--batch', 'b-none'], env)).stdout).toMatch(/No migrations matching the filters in \//);
    const audit = (await runCli(['audit', 'old'], { ...env, COLUMNS: '200' })).stdout;
    expect(audit).toContain('checks passed');
    expect(audit).toContain('cancelled by');
    expect(audit).toContain('customer postponed');
    expect(audit).not.toContain('xstate.done.actor');
    expect(audit).toMatch(/\d\d:\d\d:\d\d UTC/);
    const last = JSON.parse((await runCli(['audit', 'old', '--json', '--limit', '1'], env)).stdout);
    expect(last.history).toHaveLength(1);
    expect(last.history[0].summary).toMatch(/cancelled by .*customer postponed/);
    const none = JSON.parse((await runCli(['audit', 'old', '--json', '--since', '2999-01-01T00:00:00Z'], env)).stdout);
    expect(none.history).toEqual([]);
    expect((await runCli(['audit', 'old', '--since', 'yesterday'], env)).code).toBe(2);
  });

  it('tables fit: stacked at 80 columns, ids never truncated; a wide table at 200', async () => {
    w = await world();
    const env = envFor(w);
    const id = 'a-rather-long-migration-id-that-people-copy-0123456789';
    await runCli(startArgs(id), env);
    const narrow = (await runCli(['list'], { ...env, COLUMNS: '80' })).stdout;
    expect(narrow).toContain(id);
    expect(narrow).not.toContain('┌');
    for (const line of narrow.split('\n')) expect(line.length <= 80 || line.includes(id) || !line.includes('│')).toBe(true);
    const wide = (await runCli(['list'], { ...env, COLUMNS: '200' })).stdout;
    expect(wide).toContain('┌');
    expect(wide).toContain(id);
    for (const line of wide.split('\n')) expect(line.length).toBeLessThanOrEqual(200);
  });

  it('help lists global options, env, examples and exit codes; README reference matches', async () => {
    const h = (await runCli(['resume', '--help'])).stdout;
    for (const s of ['--code-file', '--state-dir', 'WABA_CODE', 'Examples:', 'Exit codes:', '75', '130', 'file:./state']) expect(h).toContain(s);
    const doc = await readFile(join(import.meta.dirname, '../../docs/readme/cli.md'), 'utf8');
    // Every command's --help appears verbatim in the README reference.
    const cmds = ['', 'check', 'start', 'resume', 'resend-code', 'status', 'list', 'audit', 'cancel', 'prune', 'graph', 'sandbox', 'demo', 'doctor', 'completion'];
    for (const c of cmds) {
      const help = (await runCli(c ? [c, '--help'] : ['--help'])).stdout.trim();
      expect(doc, `docs/readme/cli.md is stale for ${c}: run node dist/src/cli/reference.js > docs/readme/cli.md`).toContain(help);
    }
  });

  it('completion scripts for bash, zsh and fish parse and name the commands', async () => {
    const bash = (await runCli(['completion', 'bash'])).stdout;
    expect(bash).toContain('complete -o default -F _waba_migrate waba-migrate');
    expect(bash).toContain('resend-code');
    execFileSync('bash', ['-n'], { input: bash });
    const out = execFileSync('bash', ['-c', `${bash}\nCOMP_WORDS=(waba-migrate res); COMP_CWORD=1; _waba_migrate; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    expect(out.trim().split(' ').sort()).toEqual(['resend-code', 'resume']);
    expect((await runCli(['completion', 'zsh'])).stdout).toContain('#compdef waba-migrate');
    expect((await runCli(['completion', 'fish'])).stdout).toContain('complete -c waba-migrate');
    expect((await runCli(['completion', 'tcsh'])).code).toBe(2);
  });

  it('config file found upwards from the cwd, --config, flags win', async () => {
    w = await world();
    const root = await tempDir();
    const deep = join(root, 'a', 'b');
    await mkdir(deep, { recursive: true });
    await writeFile(join(root, 'waba-migrate.config.json'), JSON.stringify({ stateDir: 'st', graphUrl: w.url }));
    const run = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const clean: Record<string, string> = { NO_COLOR: '1' };
        for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WABA_')) clean[k] = v;
        const c = spawn(process.execPath, [CLI, ...args], { cwd: deep, env: { ...clean, ...env } });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const l = await run(['list']);
    expect(l.stdout).toContain(`No migrations in ${join(root, 'st')}`);
    const s = await run(startArgs('cfg'), { WABA_ACCESS_TOKEN: FIXTURES.token });
    expect(s.code, s.stderr).toBe(0);
    expect((await readFile(join(root, 'st', 'migrations', 'cfg.json'), 'utf8')).length).toBeGreaterThan(0);
    await writeFile(join(root, 'other.json'), JSON.stringify({ stateDir: 'elsewhere', token: 'x' }));
    const bad = await run(['list', '--config', join(root, 'other.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown key "token"/);
  });
});
