/**
 * Exactly-once under attack (issue 8): concurrent processes, dead lock holders, a clock 30 s ahead,
 * copied and edited documents, lost answers, and bad input that must never reach Meta.
 * Everything here goes through real processes, the real CLI and the real sandbox.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { copyFile, lstat, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/store.js';
import { MigrationLockLostError } from '../../src/store/lock.js';
import { assertGraphId, GraphClient } from '../../src/graph/client.js';
import { CLI, runCli } from '../helpers/cli.js';
import { FIXTURES, snapshotDir, tempDir, world, type World } from '../helpers/env.js';

const STORE_JS = new URL('../../dist/src/store/store.js', import.meta.url).href;

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const envFor = (x: World, extra: Record<string, string> = {}) => ({
  WABA_ACCESS_TOKEN: FIXTURES.token,
  WABA_MIGRATE_STATE_DIR: x.dir,
  WABA_GRAPH_URL: x.url,
  ...extra,
});

const startArgs = (id: string, phone: string = FIXTURES.phone, extra: string[] = []) => [
  'start', '--id', id, '--phone', phone, '--source-waba', FIXTURES.sourceWabaId, '--dest-waba', FIXTURES.destWabaId, '--confirm', 'two_step_disabled', ...extra,
];

/** A process that takes `ids`' locks, says so, and waits to be killed. */
async function holder(dir: string, ids: string[]): Promise<ChildProcessWithoutNullStreams> {
  const script = `
    import { FileStore } from ${JSON.stringify(STORE_JS)};
    const s = new FileStore(${JSON.stringify(dir)});
    for (const id of ${JSON.stringify(ids)}) await s.lock(id);
    console.log('locked');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return child;
}

/** Each line a child prints is one JSON answer, handed to `fn`. */
function onJsonLines<T>(child: { stdout: NodeJS.ReadableStream }, fn: (answer: T) => void): void {
  createInterface({ input: child.stdout }).on('line', (line) => fn(JSON.parse(line) as T));
}

async function kill9(child: ChildProcessWithoutNullStreams): Promise<void> {
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
}

describe('the lock cannot be shared', () => {
  it('200 rounds of 2–4 contender processes arriving together at a dead holder’s lock: exactly one holder each round', { timeout: 120_000 }, async () => {
    const dir = await tempDir('waba-race-');
    const rounds = 200;
    const ids = Array.from({ length: rounds }, (_, k) => `r${k}`);
    await kill9(await holder(dir, ids)); // every lock's holder is now dead
    // Long-lived contenders: each line "k T" means: at time T, try lock r<k>; hold it 15 ms.
    const contender = `
      import { FileStore } from ${JSON.stringify(STORE_JS)};
      import { createInterface } from 'node:readline';
      const s = new FileStore(${JSON.stringify(dir)});
      for await (const line of createInterface({ input: process.stdin })) {
        const [k, t] = line.split(' ').map(Number);
        while (Date.now() < t) {}
        try {
          const lease = await s.lock('r' + k);
          const t0 = performance.timeOrigin + performance.now();
          await new Promise((r) => setTimeout(r, 15));
          const t1 = performance.timeOrigin + performance.now();
          await lease.release();
          console.log(JSON.stringify({ k, got: true, t0, t1 }));
        } catch (e) {
          console.log(JSON.stringify({ k, got: false, err: e.name }));
        }
      }`;
    const procs = Array.from({ length: 4 }, () => spawn(process.execPath, ['--input-type=module', '-e', contender], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const results = new Map<number, { got: boolean; err?: string; t0?: number; t1?: number }[]>();
    const waiting = new Map<number, () => void>();
    for (const p of procs) {
      onJsonLines<{ k: number; got: boolean; err?: string; t0?: number; t1?: number }>(p, (r) => {
        results.set(r.k, [...(results.get(r.k) ?? []), r]);
        waiting.get(r.k)?.();
      });
    }
    let doubles = 0;
    let none = 0;
    const otherErrors: string[] = [];
    for (let k = 0; k < rounds; k++) {
      const n = 2 + (k % 3);
      const done = new Promise<void>((resolve, reject) => {
        waiting.set(k, () => (results.get(k)!.length === n ? resolve() : undefined));
        for (const p of procs) if (p.exitCode !== null) reject(new Error('a contender died'));
      });
      const t = Date.now() + 25;
      for (const p of procs.slice(0, n)) p.stdin.write(`${k} ${t}\n`);
      await done;
      // Two holders at once = two holding intervals that overlap. (A contender the scheduler
      // delays past the first holder's release may take the lock after it: that is not sharing.)
      const held = results.get(k)!.filter((r) => r.got);
      for (let a = 0; a < held.length; a++)
        for (let b = a + 1; b < held.length; b++) if (held[a]!.t0! < held[b]!.t1! && held[b]!.t0! < held[a]!.t1!) doubles++;
      if (held.length === 0) none++;
      for (const r of results.get(k)!) if (!r.got && r.err !== 'MigrationLockedError') otherErrors.push(r.err ?? '?');
    }
    for (const p of procs) p.stdin.end();
    await Promise.all(procs.map((p) => new Promise((r) => p.once('close', r))));
    expect(doubles).toBe(0);
    expect(none).toBe(0);
    expect(otherErrors).toEqual([]);
  });

  it('a contender whose clock is 30 s ahead (faketime) cannot take a live holder’s lock: exit 5', { timeout: 60_000 }, async () => {
    w = await world();
    await w.engine().start(w.startRequest({ id: 'm1' }));
    const live = await holder(w.dir, ['m1']);
    try {
      // Async: the sandbox answers from this process; a synchronous spawn would deadlock if the
      // contender ever got through to Meta.
      const child = spawn('faketime', ['-f', '+30s', process.execPath, CLI, 'resume', 'm1', '--code', '123456'], {
        env: { ...process.env, ...envFor(w, { WABA_REGISTER_PIN: '123456' }), NO_COLOR: '1' },
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const status = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (c) => resolve(c));
      });
      clearTimeout(killer);
      expect(status, stderr).toBe(5);
      expect(stderr).toMatch(new RegExp(`in use by process ${live.pid}`));
      expect(w.sandbox.counters['POST verify_code']).toBeUndefined();
    } finally {
      await kill9(live);
    }
  });

  it('10 rounds of 4 already-loaded processes resuming one migration at the same millisecond after its holder was killed: verify_code and register applied once each', { timeout: 120_000 }, async () => {
    w = await world({ latencyMs: 15 });
    const ENGINE_JS = new URL('../../dist/src/runner/engine.js', import.meta.url).href;
    // Each process has the engine loaded and waits for lines "id code T": at time T it resumes.
    const racer = `
      import { FileStore } from ${JSON.stringify(STORE_JS)};
      import { MigrationEngine } from ${JSON.stringify(ENGINE_JS)};
      import { createInterface } from 'node:readline';
      const engine = new MigrationEngine({ store: new FileStore(${JSON.stringify(w.dir)}), token: ${JSON.stringify(FIXTURES.token)}, graphUrl: ${JSON.stringify(w.url)}, timeoutMs: 5000 });
      for await (const line of createInterface({ input: process.stdin })) {
        const [id, code, t] = line.split(' ');
        while (Date.now() < Number(t)) {}
        try {
          const v = await engine.resume(id, { code, pin: '246810' });
          console.log(JSON.stringify({ id, ok: v.state }));
        } catch (e) {
          console.log(JSON.stringify({ id, err: e.name }));
        }
      }`;
    const procs = Array.from({ length: 4 }, () => spawn(process.execPath, ['--input-type=module', '-e', racer], { stdio: ['pipe', 'pipe', 'inherit'] }));
    try {
      const answers = new Map<string, { ok?: string; err?: string }[]>();
      let onAnswer: () => void = () => {};
      const exited = new Promise<never>((_, reject) => {
        for (const p of procs) p.once('exit', (c) => reject(new Error(`a racer exited (${c})`)));
      });
      for (const p of procs) {
        onJsonLines<{ id: string; ok?: string; err?: string }>(p, (a) => {
          answers.set(a.id, [...(answers.get(a.id) ?? []), a]);
          onAnswer();
        });
      }
      const e = w.engine();
      for (let k = 0; k < 10; k++) {
        const id = `race-${k}`;
        const v = await e.start(w.startRequest({ id, phone: `+1631555${4000 + k}` }));
        await kill9(await holder(w.dir, [id]));
        const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
        const verifyBefore = w.sandbox.counters['POST verify_code']?.applied ?? 0;
        const registerBefore = w.sandbox.counters['POST register']?.applied ?? 0;
        const all = new Promise<void>((resolve) => {
          onAnswer = () => (answers.get(id)?.length === 4 ? resolve() : undefined);
        });
        const t = Date.now() + 150;
        for (const p of procs) p.stdin.write(`${id} ${code} ${t}\n`);
        await Promise.race([all, exited]);
        for (const a of answers.get(id)!) if (a.err) expect(a.err).toBe('MigrationLockedError');
        expect(w.sandbox.counters['POST verify_code']!.applied - verifyBefore, id).toBe(1);
        expect(w.sandbox.counters['POST register']!.applied - registerBefore, id).toBe(1);
        expect((await w.store.load(id)).state).toBe('completed');
      }
    } finally {
      for (const p of procs) p.kill('SIGKILL');
    }
  });

  it('N × `resume --code` through the real CLI on a migration whose holder was killed: verify_code and register are each sent once', { timeout: 60_000 }, async () => {
    w = await world();
    const env = envFor(w, { WABA_REGISTER_PIN: '246810' });
    const s = await runCli([...startArgs('race'), '--json'], env);
    expect(s.code, s.stderr).toBe(0);
    const pnid = JSON.parse(s.stdout).phoneNumberId as string;
    await kill9(await holder(w.dir, ['race']));
    const code = w.sandbox.lastCodeFor(pnid)!.code;
    const runs = await Promise.all(Array.from({ length: 4 }, () => runCli(['resume', 'race', '--code', code], env)));
    const codes = runs.map((r) => r.code).sort();
    expect(codes.filter((c) => c === 0).length).toBeGreaterThanOrEqual(1);
    for (const r of runs) expect([0, 5], r.stderr).toContain(r.code);
    expect(w.sandbox.counters['POST verify_code']!.applied).toBe(1);
    expect(w.sandbox.counters['POST register']!.applied).toBe(1);
    const doc = await w.store.load('race');
    expect(doc.state).toBe('completed');
    expect(doc.history.filter((h) => h.to === 'verifying_code')).toHaveLength(1);
  });

  it('a holder whose lock file is taken from under it stops before its next POST and exits 5', { timeout: 30_000 }, async () => {
    w = await world({ latencyMs: 40 });
    const store = new FileStore(w.dir);
    // Replace the lock file (as a careless `rm -rf locks` would) while the checks run.
    const e = w.engine({
      onCall: (c) => {
        if (c.path.endsWith('/owned_whatsapp_business_accounts')) rmSync(join(w!.dir, 'locks', 'm1.lock'), { force: true });
      },
    });
    const err = await e.start(w.startRequest({ id: 'm1' })).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(MigrationLockLostError);
    expect(w.sandbox.counters['POST phone_numbers']).toBeUndefined();
    // Nothing was written after the loss: the document ends in a state before the create.
    const doc = await store.load('m1').catch(() => null);
    expect(doc === null || doc.state === 'checking').toBe(true);
  });

  it('lock files never follow symlinks; lock directory 0700, lock files 0600', async () => {
    const dir = await tempDir();
    const store = new FileStore(dir);
    const lease = await store.lock('a');
    await lease.release();
    expect((await lstat(join(dir, 'locks'))).mode & 0o777).toBe(0o700);
    expect((await lstat(join(dir, 'locks', 'a.lock'))).mode & 0o777).toBe(0o600);
    await writeFile(join(dir, 'victim'), 'precious');
    await symlink(join(dir, 'victim'), join(dir, 'locks', 'b.lock'));
    await expect(store.lock('b')).rejects.toThrow(/symbolic link/);
    expect(await readFile(join(dir, 'victim'), 'utf8')).toBe('precious');
    // A dangling link: its target is never created.
    await symlink(join(dir, 'planted'), join(dir, 'locks', 'c.lock'));
    await expect(store.lock('c')).rejects.toThrow(/symbolic link/);
    await expect(lstat(join(dir, 'planted'))).rejects.toThrow(/ENOENT/);
  });
});

describe('documents must be what they claim', () => {
  it('a copy of a.json saved as b.json is refused everywhere (exit 6, untouched), and cannot run the number twice', async () => {
    w = await world();
    const env = envFor(w);
    expect((await runCli(startArgs('a'), env)).code).toBe(0);
    await copyFile(join(w.dir, 'migrations', 'a.json'), join(w.dir, 'migrations', 'b.json'));
    const before = await snapshotDir(w.dir);
    const st = await runCli(['status', 'b'], env);
    expect(st.code).toBe(6);
    expect(st.stderr).toMatch(/claims to be migration "a", not "b"/);
    const rb = await runCli(['resume', 'b', '--code', '123456'], env);
    expect(rb.code).toBe(6);
    const list = await runCli(['list', '--json'], env);
    expect(JSON.parse(list.stdout).map((m: { id: string }) => m.id)).toEqual(['a']);
    expect(list.stderr).toMatch(/b\.json/);
    // The lock files resume takes are created on first use; the documents are byte-identical.
    const after = await snapshotDir(w.dir);
    for (const [k, v] of before) if (k.includes('/migrations/')) expect(after.get(k)).toBe(v);
  });

  it('start refuses a phone that has an unfinished migration, whatever the id (exit 2, naming it, nothing written)', async () => {
    w = await world();
    const env = envFor(w);
    expect((await runCli(startArgs('first'), env)).code).toBe(0);
    const before = await snapshotDir(w.dir);
    const r = await runCli(startArgs('second'), env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\+16315551000 already has an unfinished migration "first"/);
    expect(await snapshotDir(w.dir)).toEqual(before);
    // Once the first is cancelled, the number is free again.
    expect((await runCli(['cancel', 'first'], env)).code).toBe(0);
    expect((await runCli(startArgs('second'), env)).code).toBe(0);
  });

  it('the register allowance and Meta’s 133016 block are per number, across migrations; an override spends nothing during the block', async () => {
    w = await world({ scenario: 'register_limit' });
    const e = w.engine();
    const v = await e.start(w.startRequest({ id: 'a', policy: { resendCooldownMs: 0, retryBaseMs: 5, retryCapMs: 20, registerReserve: 0 } }));
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    const failed = await e.submitCode('a', code, '123456');
    expect(failed.state).toBe('failed');
    expect(failed.failure?.code).toBe(133016);
    expect(w.sandbox.counters['POST register']!.calls).toBe(1);
    // An override during the block sends nothing.
    const again = await e.resume('a', { pin: '123456', overrideRegisterLimit: true });
    expect(again.state).toBe('failed');
    expect(again.failure?.message).toMatch(/blocked register calls .* until/);
    expect(w.sandbox.counters['POST register']!.calls).toBe(1);
    // Another migration of the same number inherits the block.
    await e.cancel('a');
    const b = await e.start(w.startRequest({ id: 'b', pin: '123456', policy: { resendCooldownMs: 0, retryBaseMs: 5, retryCapMs: 20, registerReserve: 0 } }));
    expect(b.state).toBe('failed');
    expect(b.failure?.message).toMatch(/blocked register calls/);
    expect(w.sandbox.counters['POST register']!.calls).toBe(1);
  });

  it('register calls of an earlier migration of the number count against the next one', async () => {
    w = await world();
    const e = w.engine();
    await e.start(w.startRequest({ id: 'a' }));
    await e.cancel('a');
    // Pretend migration a spent 8 of the 10 calls (the document is the record of what was sent).
    const file = join(w.dir, 'migrations', 'a.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.snapshot.context.registerCalls = Array.from({ length: 8 }, () => Date.now() - 1000);
    await writeFile(file, JSON.stringify(doc));
    const v = await e.start(w.startRequest({ id: 'b' }));
    const held = await e.submitCode('b', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(held).toMatchObject({ state: 'registering', substate: 'held' });
    expect(held.registerCallsLast72h).toBe(8);
    expect(w.sandbox.counters['POST register']).toBeUndefined();
  });

  it('a phoneNumberId that is not digits is refused on load and can never build a URL path', async () => {
    w = await world();
    const env = envFor(w);
    expect((await runCli(startArgs('t'), env)).code).toBe(0);
    const file = join(w.dir, 'migrations', 't.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.snapshot.context.phoneNumberId = '200000000000002/phone_numbers?x=';
    await writeFile(file, JSON.stringify(doc));
    const before = await readFile(file, 'utf8');
    const calls = structuredClone(w.sandbox.counters);
    const r = await runCli(['resume', 't', '--code', '123456'], env);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/phoneNumberId/);
    expect(await readFile(file, 'utf8')).toBe(before);
    expect(w.sandbox.counters).toEqual(calls);
    expect(() => assertGraphId('200000000000002/phone_numbers?x=', 'phone_number_id')).toThrow(/digits only/);
  });

  it('an edited input.phone that no longer matches the machine and the history is refused', async () => {
    w = await world();
    const env = envFor(w);
    expect((await runCli(startArgs('p'), env)).code).toBe(0);
    const file = join(w.dir, 'migrations', 'p.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.input.phone = '+16315559999';
    doc.input.nationalNumber = '6315559999';
    await writeFile(file, JSON.stringify(doc));
    const r = await runCli(['status', 'p'], env);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/input\.phone|input\.nationalNumber/);
  });
});

describe('request_code after a lost answer', () => {
  it('is not sent again: the migration waits for the code that may be on its way', async () => {
    w = await world();
    w.sandbox.loseNextAnswer('request_code');
    const v = await w.engine().start(w.startRequest());
    expect(v.state).toBe('awaiting_code');
    expect(v.code?.uncertain).toBe(true);
    expect(v.nextAction).toMatch(/may have been sent .* if none arrives by \d\d:\d\d.*resend-code m1/);
    expect(w.sandbox.counters['POST request_code']!.applied).toBe(1);
    // The code did arrive: it works.
    const done = await w.engine().submitCode('m1', w.sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    expect(done.state).toBe('completed');
    expect(w.sandbox.counters['POST request_code']!.applied).toBe(1);
  });

  it('a restore with request_code in flight does not send it again', async () => {
    w = await world();
    // Keep the document exactly as it was on disk while request_code was in flight (intent
    // recorded and durable, answer not yet seen): what a process killed at that moment leaves.
    const file = join(w.dir, 'migrations', 'm1.json');
    let inFlight = '';
    const { readFileSync } = await import('node:fs');
    await w.engine({ onTransition: (t) => void (t.to === 'requesting_code' && (inFlight = readFileSync(file, 'utf8'))) }).start(w.startRequest());
    expect(JSON.parse(inFlight).snapshot.context.intent.step).toBe('requesting_code');
    await writeFile(file, inFlight);
    const v = await w.engine().resume('m1');
    expect(v.state).toBe('awaiting_code');
    expect(v.code?.uncertain).toBe(true);
    expect(w.sandbox.counters['POST request_code']!.applied).toBe(1);
  });
});

describe('bad input that must not write or retry', () => {
  it('--api-version that is not v<major>.<minor> exits 2 and writes nothing', async () => {
    w = await world();
    for (const bad of ['../../x y', '', 'v23', '23.0']) {
      const before = await snapshotDir(w.dir);
      const r = await runCli(['--api-version', bad, ...startArgs('v')], envFor(w));
      expect(r.code, `${JSON.stringify(bad)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/api-version/);
      expect(await snapshotDir(w.dir)).toEqual(before);
    }
    expect(Object.keys(w.sandbox.counters)).toEqual([]);
  });

  it('a token with CR/LF is refused up front (exit 2), never retried', async () => {
    w = await world();
    const r = await runCli(startArgs('t'), envFor(w, { WABA_ACCESS_TOKEN: 'sandbox-token\r\nX-Evil: 1' }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line break or control character/);
    expect(Object.keys(w.sandbox.counters)).toEqual([]);
    expect(() => new GraphClient({ token: 'a\nb', baseUrl: w!.url })).toThrow(/control character/);
  });

  it('a TLS certificate error is permanent: one attempt, nothing sent, a remedy, no retry', { timeout: 30_000 }, async () => {
    const certDir = await tempDir('waba-tls-');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-days', '1'], { encoding: 'utf8' });
    expect(gen.status, gen.stderr).toBe(0);
    const key = await readFile(join(certDir, 'key.pem'), 'utf8');
    const cert = await readFile(join(certDir, 'cert.pem'), 'utf8');
    let requests = 0;
    const server = createServer({ key, cert }, (_req, res) => {
      requests++;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dir = await tempDir();
    try {
      const r = await runCli(startArgs('tls'), { WABA_ACCESS_TOKEN: FIXTURES.token, WABA_MIGRATE_STATE_DIR: dir, WABA_GRAPH_URL: `https://127.0.0.1:${port}` });
      expect(r.code, r.stderr).toBe(4);
      expect(r.stdout + r.stderr).toMatch(/TLS certificate/);
      expect(requests).toBe(0);
      const doc = await new FileStore(dir).load('tls');
      expect(doc.state).toBe('failed');
      expect(doc.history.filter((h) => h.to === 'waiting_retry')).toHaveLength(0);
      expect(doc.history.flatMap((h) => h.calls)).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it('resume of a completed migration is a read: the document is byte-identical', async () => {
    w = await world();
    const env = envFor(w, { WABA_REGISTER_PIN: '123456' });
    const s = JSON.parse((await runCli([...startArgs('done'), '--json'], env)).stdout);
    expect((await runCli(['resume', 'done', '--code', w.sandbox.lastCodeFor(s.phoneNumberId)!.code], env)).code).toBe(0);
    const before = await snapshotDir(join(w.dir, 'migrations'));
    const r = await runCli(['resume', 'done'], env);
    expect(r.code).toBe(0);
    expect(await snapshotDir(join(w.dir, 'migrations'))).toEqual(before);
  });

  it('temp files left by a kill mid-write are removed by the next writer of that migration', async () => {
    w = await world();
    const e = w.engine();
    await e.start(w.startRequest());
    const stale = join(w.dir, 'migrations', 'm1.json.99999.7.tmp');
    await writeFile(stale, '{"half":');
    await e.resendCode('m1');
    expect((await readdir(join(w.dir, 'migrations'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('the code can come from stdin (--code -), --code-file or WABA_CODE, never only a flag; 123-456 is accepted', { timeout: 60_000 }, async () => {
    w = await world();
    const dir = w.dir;
    const phones = ['+16315553001', '+16315553002', '+16315553003'];
    const ways = ['stdin', 'file', 'env'] as const;
    for (const [i, way] of ways.entries()) {
      const id = `c-${way}`;
      const s = await runCli([...startArgs(id, phones[i]), '--json'], envFor(w));
      expect(s.code, s.stderr).toBe(0);
      const raw = w.sandbox.lastCodeFor(JSON.parse(s.stdout).phoneNumberId)!.code;
      const shown = `${raw.slice(0, 3)}-${raw.slice(3)}`; // as WhatsApp shows it
      const env = { ...process.env, ...envFor(w, { WABA_REGISTER_PIN: '123456' }), NO_COLOR: '1' } as Record<string, string>;
      for (const k of Object.keys(env)) if (k.startsWith('WABA_') && !(k in envFor(w, { WABA_REGISTER_PIN: '1' }))) delete env[k];
      let args = ['resume', id];
      let input: string | undefined;
      if (way === 'stdin') {
        args = [...args, '--code', '-'];
        input = `${shown}\n`;
      } else if (way === 'file') {
        await writeFile(join(dir, 'code.txt'), `${shown}\n`, { mode: 0o600 });
        args = [...args, '--code-file', join(dir, 'code.txt')];
      } else env.WABA_CODE = shown;
      // Async: the sandbox answers from this very process, so a synchronous spawn would deadlock.
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdin.end(input ?? '');
      const status = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      expect(status, `${way}: ${stderr}`).toBe(0);
      expect((await new FileStore(dir).load(id)).state).toBe('completed');
    }
  });

  it('a closed stdout (`status x | head -1`) ends the command quietly: no EPIPE stack', { timeout: 30_000 }, async () => {
    w = await world();
    expect((await runCli(startArgs('pipe'), envFor(w))).code).toBe(0);
    const child = spawn(process.execPath, [CLI, 'status', 'pipe'], { env: { ...process.env, ...envFor(w), NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader went away before the first line
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
