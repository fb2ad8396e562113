/** The sandbox in its own thread for the fleet bench (as in sandbox-worker.ts), with its rate limiter. */
import { parentPort, workerData } from 'node:worker_threads';
import { GraphSandbox } from '../src/sandbox/index.js';

const { latencyMs, rateLimit } = workerData as { latencyMs: number; rateLimit: { calls: number; windowMs: number } | null };
const sandbox = new GraphSandbox({ latencyMs, ...(rateLimit ? { rateLimit } : {}) });
const url = await sandbox.start();
const tenant = sandbox.addTenant(1);
parentPort!.postMessage({ type: 'ready', url, tenant });
parentPort!.on('message', async (m: { type: string }) => {
  if (m.type === 'codes') {
    const latest = new Map<string, string>();
    for (const o of sandbox.outbox) latest.set(o.phone, o.code);
    parentPort!.postMessage({ type: 'codes', codes: [...latest] });
  } else if (m.type === 'stats') {
    const l = sandbox.limiter;
    const calls = Object.values(sandbox.counters).reduce((a, c) => a + c.calls, 0);
    const perKey: Record<string, number> = {};
    for (const [k, windows] of l?.allowedCalls ?? []) perKey[k] = [...windows.values()].reduce((a, n) => a + n, 0);
    parentPort!.postMessage({
      type: 'stats',
      stats: {
        calls,
        perKey,
        refused: l?.totalRefused() ?? 0,
        maxRefusedPerWindow: l?.maxRefusedPerWindow() ?? 0,
        maxAllowedPerWindow: l?.maxAllowedPerWindow() ?? 0,
        windowsWithRefusal: [...(l?.refused.values() ?? [])].reduce((a, m) => a + m.size, 0),
        duplicateCreates: [...sandbox.created.values()].filter((n) => n > 1).length,
        counters: Object.fromEntries(Object.entries(sandbox.counters).map(([k, c]) => [k, c.calls])),
      },
    });
  } else if (m.type === 'stop') {
    await sandbox.stop();
    parentPort!.postMessage({ type: 'stopped' });
  }
});
