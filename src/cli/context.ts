/**
 * Resolves what every command needs from flags and environment: the state directory, the Graph
 * URL, and the secrets (token, PIN), which come only from env, files or a masked prompt, never
 * from a flag value (it would show in `ps`).
 */
import { readFileSync } from 'node:fs';
import { MigrationEngine, type EngineOptions, type TransitionInfo, type WaitInfo } from '../runner/engine.js';
import type { CallSummary } from '../graph/client.js';
import { notifyOptions, type NotifyOptions } from '../notify/deliver.js';
import { parseCode, parsePin } from '../runner/validate.js';
import { openStore } from '../store/open.js';
import type { MigrationStore } from '../store/store.js';
import { UsageError } from './errors.js';
import type { GlobalOptions } from './globals.js';
import { callLine, Progress, transitionLine } from './output.js';

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

const PIN_RULE = /^\d{6}$/;

/** A masked prompt that asks again in place (the code already typed is kept) until `valid`. */
async function masked(message: string, valid: (s: string) => true | string): Promise<string> {
  const { default: password } = await import('@inquirer/password');
  return password({ message, mask: '*', validate: valid }, { output: process.stderr });
}

/**
 * The PIN becomes the number's two-step verification PIN: a typo would leave a PIN nobody knows,
 * so it is asked twice and compared, and a bad one is asked again rather than ending the run.
 */
async function promptPin(): Promise<string> {
  for (;;) {
    const first = await masked('Register PIN (6 digits, becomes the two-step verification PIN):', (s) => PIN_RULE.test(s.trim()) || 'the PIN must be exactly 6 digits');
    const again = await masked('Type the PIN again:', (s) => PIN_RULE.test(s.trim()) || 'the PIN must be exactly 6 digits');
    if (first.trim() === again.trim()) return first.trim();
    process.stderr.write('The two PINs differ; enter it again.\n');
  }
}

/** The one-time code is not a lasting secret: shown while typed, `123-456` and `123 456` accepted. */
async function promptCode(): Promise<string> {
  const { default: input } = await import('@inquirer/input');
  return input(
    { message: 'Verification code (6 digits, as in the SMS or call):', validate: (s) => /^\s*\d{3}[- ]?\d{3}\s*$/.test(s) || 'the code is 6 digits, e.g. 123456 or 123-456' },
    { output: process.stderr },
  );
}

/** The PIN from WABA_REGISTER_PIN, --pin-file, or a masked prompt on a TTY; `undefined` if none. */
export async function readPin(g: GlobalOptions, required: boolean): Promise<string | undefined> {
  const raw = g.pinFile ? readSecretFile(g.pinFile, '--pin-file') : process.env.WABA_REGISTER_PIN;
  if (raw !== undefined && raw !== '') return parsePin(raw, g.pinFile ? '--pin-file' : 'WABA_REGISTER_PIN');
  if (!required) return undefined;
  if (!interactive())
    throw new UsageError('register PIN missing: set WABA_REGISTER_PIN=<6 digits> or pass --pin-file <path> (no TTY to prompt on); nothing was changed');
  return parsePin(await promptPin(), 'pin');
}

/**
 * The verification code, from (in this order) `--code -` (standard input), `--code-file <path>`,
 * `--code <digits>`, env `WABA_CODE`, or a prompt on a TTY. A flag value is visible to every user
 * of the machine in `ps`; stdin, a file or the environment are not, so README recommends those.
 */
export async function readCode(flag: string | undefined, required: boolean, codeFile?: string): Promise<string | undefined> {
  if (flag === '-') return parseCode((await readStdin()).trim(), '--code -');
  if (codeFile !== undefined) return parseCode(readSecretFile(codeFile, '--code-file'), '--code-file');
  if (flag !== undefined) return parseCode(flag, '--code');
  const env = process.env.WABA_CODE;
  if (env !== undefined && env.trim() !== '') return parseCode(env, 'WABA_CODE');
  if (!required) return undefined;
  if (!interactive())
    throw new UsageError('verification code missing: pipe it in with --code -, or use --code-file <path>, WABA_CODE=<6 digits> or --code <6 digits> (no TTY to prompt on); nothing was changed');
  return parseCode(await promptCode(), 'code');
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--code -: standard input is a terminal; pipe the code in (echo 123456 | waba-migrate resume <id> --code -)');
  let text = '';
  for await (const chunk of process.stdin) {
    text += chunk;
    if (text.length > 100) break;
  }
  return text;
}

/**
 * Notification settings from `--notify-url` / WABA_NOTIFY_URL and the secret from
 * WABA_NOTIFY_SECRET or `--notify-secret-file` (never a flag value); `undefined` when no URL is set.
 * With `required`, a missing URL is a usage error.
 */
export function readNotify(g: GlobalOptions, required = false): NotifyOptions | undefined {
  if (!g.notifyUrl) {
    if (required) throw new UsageError('notify URL missing: pass --notify-url <https URL> or set WABA_NOTIFY_URL');
    return undefined;
  }
  const fromFile = g.notifySecretFile !== undefined;
  const secret = fromFile ? readSecretFile(g.notifySecretFile!, '--notify-secret-file') : (process.env.WABA_NOTIFY_SECRET ?? '').trim();
  if (!secret)
    throw new UsageError('notify secret missing: set WABA_NOTIFY_SECRET=whsec_<base64> or pass --notify-secret-file <path> (notifications are always signed; make one with `echo whsec_$(openssl rand -base64 32)`)');
  return notifyOptions({
    url: g.notifyUrl,
    secret,
    secretField: fromFile ? '--notify-secret-file' : 'WABA_NOTIFY_SECRET',
    ...(g.notifyBackoffMs !== undefined ? { backoffMs: g.notifyBackoffMs } : {}),
    ...(g.notifyMaxBackoffMs !== undefined ? { maxBackoffMs: g.notifyMaxBackoffMs } : {}),
    ...(g.notifyGiveUpMs !== undefined ? { giveUpMs: g.notifyGiveUpMs } : {}),
    ...(g.notifyTimeoutMs !== undefined ? { timeoutMs: g.notifyTimeoutMs } : {}),
  });
}

/** How to reach Meta, from the global options: what every engine, batch runner and worker takes. */
export function graphOptions(g: GlobalOptions): Pick<EngineOptions, 'graphUrl' | 'apiVersion' | 'timeoutMs' | 'maxWaitMs'> {
  return {
    graphUrl: g.graphUrl,
    apiVersion: g.apiVersion,
    ...(g.timeoutMs !== undefined ? { timeoutMs: g.timeoutMs } : {}),
    ...(g.maxWaitMs !== undefined ? { maxWaitMs: g.maxWaitMs } : {}),
  };
}

/** The store named by --store / --state-dir / WABA_MIGRATE_STORE (file:./state by default). */
export function storeFor(g: GlobalOptions): Promise<MigrationStore> {
  return openStore(g.store);
}

export async function makeEngine(g: GlobalOptions, token: string, progress?: Progress, extra: Partial<EngineOptions> = {}): Promise<MigrationEngine> {
  return engineOn(await storeFor(g), g, token, progress, extra);
}

/** An engine on a store already open (the dashboard shares one store between its engines). */
export function engineOn(store: MigrationStore, g: GlobalOptions, token: string, progress?: Progress, extra: Partial<EngineOptions> = {}): MigrationEngine {
  const notify = readNotify(g);
  // --verbose (and --debug): one stderr line per Graph call and per transition.
  const verbose = g.verbosity >= 1;
  const log = (line: string) => (progress ? progress.log(line) : process.stderr.write(`${line}\n`));
  return new MigrationEngine({
    store,
    token,
    ...graphOptions(g),
    ...(progress || verbose
      ? {
          onTransition: (t: TransitionInfo) => {
            if (verbose) log(transitionLine(t));
            progress?.transition(t);
          },
        }
      : {}),
    ...(verbose ? { onCall: (c: CallSummary) => log(callLine(c)) } : {}),
    ...(progress ? { onWait: (w: WaitInfo) => progress.wait(w) } : {}),
    ...(notify ? { notify } : {}),
    ...extra,
  });
}

/** For cancel, which makes no Graph call: no token needed. */
export async function tokenlessEngine(g: GlobalOptions): Promise<MigrationEngine> {
  const notify = readNotify(g);
  return new MigrationEngine({ store: await storeFor(g), ...(notify ? { notify } : {}) });
}
