/**
 * Resolves what every command needs from flags and environment: the state directory, the Graph
 * URL, and the secrets (token, PIN), which come only from env, files or a masked prompt, never
 * from a flag value (it would show in `ps`).
 */
import { readFileSync } from 'node:fs';
import { MigrationEngine, type EngineOptions } from '../runner/engine.js';
import { parseCode, parsePin } from '../runner/validate.js';
import { FileStore } from '../store/store.js';
import { UsageError } from './errors.js';
import type { GlobalOptions } from './globals.js';
import { Progress } from './output.js';

export { globals, type GlobalOptions } from './globals.js';

function readSecretFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}): give a readable file holding only the secret`);
  }
}

export function readToken(g: GlobalOptions): string {
  const token = g.tokenFile ? readSecretFile(g.tokenFile, '--token-file') : (process.env.WABA_ACCESS_TOKEN ?? '').trim();
  if (!token) throw new UsageError('access token missing: set WABA_ACCESS_TOKEN or pass --token-file <path> (a system-user token with whatsapp_business_management)');
  return token;
}

export const interactive = () => Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI;

async function masked(message: string): Promise<string> {
  const { default: password } = await import('@inquirer/password');
  return password({ message, mask: '*' }, { output: process.stderr });
}

/** The PIN from WABA_REGISTER_PIN, --pin-file, or a masked prompt on a TTY; `undefined` if none. */
export async function readPin(g: GlobalOptions, required: boolean): Promise<string | undefined> {
  const raw = g.pinFile ? readSecretFile(g.pinFile, '--pin-file') : process.env.WABA_REGISTER_PIN;
  if (raw !== undefined && raw !== '') return parsePin(raw, g.pinFile ? '--pin-file' : 'WABA_REGISTER_PIN');
  if (!required) return undefined;
  if (!interactive())
    throw new UsageError('register PIN missing: set WABA_REGISTER_PIN=<6 digits> or pass --pin-file <path> (no TTY to prompt on); nothing was changed');
  return parsePin(await masked('Register PIN (6 digits, becomes the two-step verification PIN):'), 'pin');
}

export async function readCode(flag: string | undefined, required: boolean): Promise<string | undefined> {
  if (flag !== undefined) return parseCode(flag, '--code');
  if (!required) return undefined;
  if (!interactive()) throw new UsageError('verification code missing: pass --code <6 digits> (no TTY to prompt on); nothing was changed');
  return parseCode(await masked('Verification code (6 digits):'), 'code');
}

export function makeEngine(g: GlobalOptions, token: string, progress?: Progress, extra: Partial<EngineOptions> = {}): MigrationEngine {
  return new MigrationEngine({
    store: new FileStore(g.stateDir),
    token,
    graphUrl: g.graphUrl,
    apiVersion: g.apiVersion,
    ...(g.timeoutMs !== undefined ? { timeoutMs: g.timeoutMs } : {}),
    ...(g.maxWaitMs !== undefined ? { maxWaitMs: g.maxWaitMs } : {}),
    ...(progress ? { onTransition: (t) => progress.transition(t) } : {}),
    ...extra,
  });
}

/** For cancel, which makes no Graph call: no token needed. */
export function tokenlessEngine(g: GlobalOptions): MigrationEngine {
  return new MigrationEngine({ store: new FileStore(g.stateDir) });
}
