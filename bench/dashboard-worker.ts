/**
 * The writers for the dashboard bench, in their own process (as `work` or `start` would be): a
 * sandbox and an engine that run N migrations at once against the shared state dir. A process,
 * not a thread: threads would share the dashboard's libuv pool and skew its read latency.
 */
import { MigrationEngine } from '../src/runner/engine.js';
import { FIXTURES, GraphSandbox } from '../src/sandbox/index.js';
import { FileStore } from '../src/store/store.js';

const args = JSON.parse(process.argv[2]!) as { mode: 'migrate' | 'append'; dir: string; count: number; prefix: string; phoneBase: number; ids: string[] };
const { dir, count, prefix, phoneBase } = args;

if (args.mode === 'append') {
  // The dashboard's own delay, without an engine's: append `count` history entries (stamped
  // with the time of the write) round-robin to existing documents, 10 ms apart, through the store.
  const store = new FileStore(dir);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const id = args.ids[i % args.ids.length]!;
    const lease = await store.lock(id);
    const h = await store.open(id);
    const d = h.data;
    d.history.push({ n: d.history.length + 1, at: new Date().toISOString(), from: d.state, to: d.state, event: { type: 'bench' }, calls: [], by: 'bench' });
    await h.save();
    await lease.release();
    await new Promise((r) => setTimeout(r, 10));
  }
  process.send!({ ms: performance.now() - t0, transitions: count });
  process.disconnect();
  process.exit(0);
}
const sandbox = new GraphSandbox();
const url = await sandbox.start();
const engine = new MigrationEngine({ store: new FileStore(dir), token: FIXTURES.token, graphUrl: url, operator: 'bench' });
const t0 = performance.now();
let transitions = 0;
await Promise.all(
  Array.from({ length: count }, async (_, i) => {
    const t = sandbox.addTenant(i);
    const id = `${prefix}-${i}`;
    const v = await engine.start({ id, phone: `+1631${phoneBase + i}`, sourceWabaId: t.sourceWabaId, destWabaId: t.destWabaId, businessId: t.businessId, confirm: ['two_step_disabled'], policy: { resendCooldownMs: 0 } });
    const done = await engine.submitCode(id, sandbox.lastCodeFor(v.phoneNumberId!)!.code, '123456');
    if (done.state !== 'completed') throw new Error(`${id} ended in ${done.state}`);
    const n = (await engine.history(id)).length;
    transitions += n;
  }),
);
const ms = performance.now() - t0;
await sandbox.stop();
process.send!({ ms, transitions });
process.disconnect();
