/**
 * Global options from flags, environment and the config file, in that order of precedence.
 * Light on purpose: read-only commands load only this.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_API_VERSION, DEFAULT_GRAPH_URL } from '../graph/defaults.js';
import { UsageError } from './errors.js';

export const CONFIG_FILE = 'waba-migrate.config.json';

export interface GlobalOptions {
  /** The store URL: `file:<dir>` or `postgres://…` (--store, --state-dir, WABA_MIGRATE_STORE). */
  store: string;
  /** For messages: the file store's directory, or the secret-free PostgreSQL URL. */
  stateDir: string;
  graphUrl: string;
  apiVersion: string;
  json: boolean;
  /** -1 quiet, 0 normal, 1 verbose, 2 debug. */
  verbosity: number;
  debug: boolean;
  localTime: boolean;
  tokenFile?: string;
  pinFile?: string;
  timeoutMs?: number;
  maxWaitMs?: number;
  /** Raw notification settings; context.ts `readNotify` validates them (writers only). */
  notifyUrl?: string;
  notifySecretFile?: string;
  notifyBackoffMs?: number;
  notifyMaxBackoffMs?: number;
  notifyGiveUpMs?: number;
  notifyTimeoutMs?: number;
  /** The config file that was read, if any (absolute). */
  configPath?: string;
}

/** What the config file may hold; paths inside it are relative to the file. */
export interface ConfigFile {
  stateDir?: string;
  storeUrl?: string;
  graphUrl?: string;
  apiVersion?: string;
  tokenFile?: string;
  pinFile?: string;
  notifyUrl?: string;
  timeoutMs?: number;
  maxWaitMs?: number;
}

const CONFIG_KEYS: (keyof ConfigFile)[] = ['stateDir', 'storeUrl', 'graphUrl', 'apiVersion', 'tokenFile', 'pinFile', 'notifyUrl', 'timeoutMs', 'maxWaitMs'];
const PATH_KEYS = new Set<keyof ConfigFile>(['stateDir', 'tokenFile', 'pinFile']);

/**
 * `waba-migrate.config.json` in the cwd or the nearest parent (like .npmrc / tsconfig lookup).
 * Written by hand: one JSON file name and a walk up the tree is less code than configuring a loader.
 */
export function findConfig(from = process.cwd()): string | null {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, CONFIG_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export function loadConfig(path: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--config: cannot read ${path} as JSON (${(e as Error).message})`, 'config');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`--config: ${path} must hold a JSON object`, 'config');
  const out: ConfigFile = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!CONFIG_KEYS.includes(k as keyof ConfigFile))
      throw new UsageError(`--config: ${path}: unknown key ${JSON.stringify(k)} (known: ${CONFIG_KEYS.join(', ')}); secrets never go in this file`, 'config');
    const key = k as keyof ConfigFile;
    if (key === 'timeoutMs' || key === 'maxWaitMs') {
      if (typeof v !== 'number') throw new UsageError(`--config: ${path}: ${k} must be a number of milliseconds`, 'config');
      out[key] = v;
    } else {
      if (typeof v !== 'string' || !v) throw new UsageError(`--config: ${path}: ${k} must be a non-empty string`, 'config');
      out[key] = PATH_KEYS.has(key) ? resolve(dirname(path), v) : v;
    }
  }
  return out;
}

function positiveMs(raw: unknown, field: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${field}: ${JSON.stringify(raw)} is not a number of milliseconds (use e.g. 30000)`, field.replace(/^--/, ''));
  return n;
}

export function parseApiVersion(raw: string): string {
  if (!/^v\d{1,3}\.\d{1,3}$/.test(raw)) throw new UsageError(`--api-version: ${JSON.stringify(raw)} is not v<major>.<minor> (e.g. ${DEFAULT_API_VERSION}); nothing was changed`, 'api-version');
  return raw;
}

export const envFlag = (name: string) => {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
};

type RawGlobals = Partial<
  Record<
    'store' | 'stateDir' | 'graphUrl' | 'apiVersion' | 'tokenFile' | 'pinFile' | 'timeout' | 'maxWait' | 'config' | 'storeUrl' | 'notifyUrl' | 'notifySecretFile' | 'notifyBackoffMs' | 'notifyMaxBackoffMs' | 'notifyGiveUpMs' | 'notifyTimeoutMs',
    string
  >
> & {
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  debug?: boolean;
  localTime?: boolean;
};

export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as RawGlobals;
  const configPath = o.config ? resolve(o.config) : findConfig();
  if (o.config && !existsSync(configPath!)) throw new UsageError(`--config: ${configPath} does not exist`, 'config');
  const c: ConfigFile = configPath ? loadConfig(configPath) : {};
  if (o.store !== undefined && o.stateDir !== undefined) throw new UsageError('--store and --state-dir name the same thing: give one (--state-dir <dir> is --store file:<dir>)', 'store');
  const storeRaw =
    o.store ??
    (o.stateDir !== undefined ? `file:${o.stateDir}` : undefined) ??
    (process.env.WABA_MIGRATE_STORE || undefined) ??
    (process.env.WABA_MIGRATE_STATE_DIR ? `file:${process.env.WABA_MIGRATE_STATE_DIR}` : undefined) ??
    c.storeUrl ??
    `file:${c.stateDir ?? './state'}`;
  // A file store's directory is shown (and used) as an absolute path.
  const store = storeRaw.startsWith('file:') ? `file:${resolve(storeRaw.slice(5))}` : storeRaw;
  const debug = o.debug === true || envFlag('WABA_MIGRATE_DEBUG');
  if (o.verbose && o.quiet) throw new UsageError('--verbose and --quiet: choose one', 'quiet');
  const g: GlobalOptions = {
    store,
    stateDir: store.startsWith('file:') ? store.slice(5) : store.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1@'),
    graphUrl: o.graphUrl ?? process.env.WABA_GRAPH_URL ?? c.graphUrl ?? DEFAULT_GRAPH_URL,
    apiVersion: parseApiVersion(o.apiVersion ?? process.env.WABA_API_VERSION ?? c.apiVersion ?? DEFAULT_API_VERSION),
    json: o.json === true,
    verbosity: debug ? 2 : o.verbose ? 1 : o.quiet ? -1 : 0,
    debug,
    localTime: o.localTime === true || envFlag('WABA_MIGRATE_LOCAL_TIME'),
  };
  const tokenFile = o.tokenFile ?? c.tokenFile;
  const pinFile = o.pinFile ?? c.pinFile;
  const notifyUrl = o.notifyUrl ?? process.env.WABA_NOTIFY_URL ?? c.notifyUrl;
  if (tokenFile) g.tokenFile = tokenFile;
  if (pinFile) g.pinFile = pinFile;
  if (notifyUrl) g.notifyUrl = notifyUrl;
  if (configPath) g.configPath = configPath;
  const timeoutMs = positiveMs(o.timeout ?? process.env.WABA_GRAPH_TIMEOUT_MS ?? c.timeoutMs, '--timeout');
  const maxWaitMs = positiveMs(o.maxWait ?? process.env.WABA_MAX_WAIT_MS ?? c.maxWaitMs, '--max-wait');
  if (timeoutMs !== undefined) g.timeoutMs = timeoutMs;
  if (maxWaitMs !== undefined) g.maxWaitMs = maxWaitMs;
  if (o.notifySecretFile) g.notifySecretFile = o.notifySecretFile;
  for (const [key, flag] of [
    ['notifyBackoffMs', '--notify-backoff-ms'],
    ['notifyMaxBackoffMs', '--notify-max-backoff-ms'],
    ['notifyGiveUpMs', '--notify-give-up-ms'],
    ['notifyTimeoutMs', '--notify-timeout-ms'],
  ] as const) {
    const v = positiveMs(o[key], flag);
    if (v !== undefined) g[key] = v;
  }
  return g;
}
