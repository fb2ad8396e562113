/**
 * Exactly-once across crashes: for every k, a run is cut off right after its k-th persist (no
 * further write reaches disk; the in-flight request still reaches "Meta"), then a fresh engine
 * restores from disk and finishes. The sandbox must count exactly one create and one register.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationEngine } from '../../src/runner/engine.js';
import { FileStore, type DocumentHandle } from '../../src/store/store.js';
import type { MigrationDocument } from '../../src/store/document.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

class Crash extends Error {}

/** A store whose writes stop for good after `limit` saves, like a process killed right then. */
class CrashingStore extends FileStore {
  saves = 0;
  constructor(
    dir: string,
    readonly limit: number,
  ) {
    super(dir);
  }
  #wrap(h: DocumentHandle): DocumentHandle {
    return {
      get data() {
        return h.data;
      },
      save: async () => {
        if (this.saves >= this.limit) throw new Crash(`simulated crash after persist ${this.limit}`);
        this.saves++;
        await h.save();
      },
    };
  }
  override async create(doc: MigrationDocument) {
    return this.#wrap(await super.create(doc));
  }
  override async open(id: string) {
    return this.#wrap(await super.open(id));
  }
}

let w: World;
afterEach(async () => {
  await w?.close();
});

async function finish(w: World, pin: string): Promise<MigrationDocument> {
  const engine = new MigrationEngine({ store: new FileStore(w.dir), token: FIXTURES.token, graphUrl: w.url, operator: 'tester', timeoutMs: 2_000 });
  for (let i = 0; i < 20; i++) {
    const doc = await w.store.load('m1');
    if (doc.state === 'completed') return doc;
    const ctx = doc.snapshot.context as { phoneNumberId: string | null };
    const code = doc.state === 'awaiting_code' && ctx.phoneNumberId ? w.sandbox.lastCodeFor(ctx.phoneNumberId)?.code : undefined;
    await engine.resume('m1', { pin, ...(code ? { code } : {}) });
  }
  throw new Error('did not complete in 20 resumes');
}

/** Runs the whole flow with a crashing store; returns how many persists happened. */
async function runUntilCrash(w: World, limit: number): Promise<number> {
  const store = new CrashingStore(w.dir, limit);
  const engine = new MigrationEngine({ store, token: FIXTURES.token, graphUrl: w.url, operator: 'tester', timeoutMs: 2_000 });
  try {
    const v = await engine.start(w.startRequest());
    const code = w.sandbox.lastCodeFor(v.phoneNumberId!)!.code;
    await engine.submitCode('m1', code, '123456');
  } catch (e) {
    if (!(e instanceof Crash)) throw e;
  }
  await w.sandbox.idle();
  return store.saves;
}

describe('crash after every persist', () => {
  it('counts the persists of an uninterrupted run', async () => {
    w = await world();
    const n = await runUntilCrash(w, Number.MAX_SAFE_INTEGER);
    // checking, creating, requesting_code, awaiting_code | resume + verifying_code (one write:
    // the resume and the code it feeds share it), registering, confirming, completed
    expect(n).toBe(8);
  });

  it('every cut point restores from disk and finishes with one create and one register', async () => {
    w = await world();
    const total = await runUntilCrash(w, Number.MAX_SAFE_INTEGER);
    await w.close();
    const outcomes: string[] = [];
    for (let k = 1; k < total; k++) {
      w = await world();
      const saved = await runUntilCrash(w, k);
      expect(saved).toBe(k);
      const doc = await finish(w, '123456');
      expect(doc.state, `cut after persist ${k}`).toBe('completed');
      expect(w.sandbox.created.get('16315551000'), `creates, cut after persist ${k}`).toBe(1);
      expect(w.sandbox.registered.get('16315551000'), `registers, cut after persist ${k}`).toBe(1);
      for (let i = 1; i < doc.history.length; i++) expect(doc.history[i]!.from).toBe(doc.history[i - 1]!.to);
      outcomes.push(`${k}:${doc.history.length}`);
      await w.close();
    }
    expect(outcomes).toHaveLength(total - 1);
  });
});
