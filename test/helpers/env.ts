/** Shared test fixtures: a real sandbox on loopback, a temp state dir, an engine wired to both. */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, GraphSandbox, type SandboxOptions } from '../../src/sandbox/index.js';
import { MigrationEngine, type EngineOptions, type StartRequest } from '../../src/runner/engine.js';
import { FileStore, type MigrationStore } from '../../src/store/store.js';
import type { Policy } from '../../machines/types.js';

export { FIXTURES };

export async function tempDir(prefix = 'waba-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Short waits so retries and cool-downs happen within a test. */
export const FAST_POLICY: Partial<Policy> = { retryBaseMs: 5, retryCapMs: 20, resendCooldownMs: 0, maxAttemptsPerStep: 50 };

/**
 * Where world() keeps migrations: a temp FileStore unless a test file sets another store (the
 * PostgreSQL runs of the engine suites do). `raw(id)` is everything the store holds for a
 * migration, as text, for secret scans.
 */
export interface WorldStore {
  store: MigrationStore;
  raw(id: string): Promise<string>;
  dispose(): Promise<void>;
}
let worldStore: (() => Promise<WorldStore>) | null = null;
export function setWorldStore(factory: (() => Promise<WorldStore>) | null): void {
  worldStore = factory;
}
export const onFileStore = () => worldStore === null;

export interface World {
  sandbox: GraphSandbox;
  url: string;
  dir: string;
  /** A FileStore by default; with setWorldStore, that store (typed as FileStore for the tests' convenience). */
  store: FileStore;
  raw(id: string): Promise<string>;
  engine(extra?: Partial<EngineOptions>): MigrationEngine;
  startRequest(extra?: Partial<StartRequest>): StartRequest;
  close(): Promise<void>;
}

export async function world(opts: SandboxOptions = {}): Promise<World> {
  const sandbox = new GraphSandbox(opts);
  const url = await sandbox.start();
  const dir = await tempDir();
  const custom = worldStore ? await worldStore() : null;
  const store = (custom?.store ?? new FileStore(dir)) as FileStore;
  return {
    sandbox,
    url,
    dir,
    store,
    raw: (id) => (custom ? custom.raw(id) : readFile(join(dir, 'migrations', `${id}.json`), 'utf8')),
    engine: (extra = {}) => new MigrationEngine({ store, token: FIXTURES.token, graphUrl: url, operator: 'tester', timeoutMs: 2_000, ...extra }),
    startRequest: (extra = {}) => ({
      id: 'm1',
      phone: FIXTURES.phone,
      sourceWabaId: FIXTURES.sourceWabaId,
      destWabaId: FIXTURES.destWabaId,
      confirm: ['two_step_disabled'],
      policy: FAST_POLICY,
      ...extra,
    }),
    close: async () => {
      await sandbox.stop();
      await custom?.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every file below `dir`, path → bytes, to prove a command changed nothing. */
export async function snapshotDir(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(`${p}/`, String((await stat(p)).mode));
        await walk(p);
      } else out.set(p, (await readFile(p)).toString('base64'));
    }
  };
  await walk(dir);
  return out;
}
