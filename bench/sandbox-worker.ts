/**
 * The sandbox in its own thread for the benchmark: Meta's servers do not share our CPU, so the
 * simulator must not either (for the orchestrator and the plain script alike).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GraphSandbox } from '../src/sandbox/index.js';

const { latencyMs, tenants } = workerData as { latencyMs: number; tenants: number };
const sandbox = new GraphSandbox({ latencyMs });
const url = await sandbox.start();
const list = Array.from({ length: tenants }, (_, i) => sandbox.addTenant(i));
parentPort!.postMessage({ type: 'ready', url, tenants: list });
parentPort!.on('message', async (m: { type: string; id?: number; phoneNumberId?: string }) => {
  if (m.type === 'code') {
    const entry = await sandbox.waitForCode(m.phoneNumberId!);
    parentPort!.postMessage({ type: 'code', id: m.id, code: entry.code });
  } else if (m.type === 'stop') {
    await sandbox.stop();
    parentPort!.postMessage({ type: 'stopped' });
  }
});
