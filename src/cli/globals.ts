/** Global options from flags and environment. Light on purpose: read-only commands load only this. */
import type { Command } from 'commander';
import { DEFAULT_API_VERSION, DEFAULT_GRAPH_URL } from '../graph/defaults.js';
import { UsageError } from './errors.js';

export interface GlobalOptions {
  stateDir: string;
  graphUrl: string;
  apiVersion: string;
  json: boolean;
  tokenFile?: string;
  pinFile?: string;
  timeoutMs?: number;
  maxWaitMs?: number;
}

function positiveMs(raw: unknown, field: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${field}: ${JSON.stringify(raw)} is not a number of milliseconds (use e.g. 30000)`);
  return n;
}

export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions> & { timeout?: string; maxWait?: string };
  const g: GlobalOptions = {
    stateDir: o.stateDir ?? process.env.WABA_MIGRATE_STATE_DIR ?? './state',
    graphUrl: o.graphUrl ?? process.env.WABA_GRAPH_URL ?? DEFAULT_GRAPH_URL,
    apiVersion: o.apiVersion ?? DEFAULT_API_VERSION,
    json: o.json === true,
    ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
    ...(o.pinFile ? { pinFile: o.pinFile } : {}),
  };
  const timeoutMs = positiveMs(o.timeout ?? process.env.WABA_GRAPH_TIMEOUT_MS, '--timeout');
  const maxWaitMs = positiveMs(o.maxWait ?? process.env.WABA_MAX_WAIT_MS, '--max-wait');
  if (timeoutMs !== undefined) g.timeoutMs = timeoutMs;
  if (maxWaitMs !== undefined) g.maxWaitMs = maxWaitMs;
  return g;
}

