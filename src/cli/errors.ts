/**
 * The only place errors become exit codes. Matched by `name` rather than `instanceof` so the CLI
 * entry point does not have to load the engine (start-up stays fast).
 *
 * The table below is the one in README (docs/readme/cli.md) and in every command's `--help`;
 * test/cli/exit-codes.test.ts produces every row through the real CLI.
 */

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  blocked: 3,
  failed: 4,
  locked: 5,
  stateDocument: 6,
  /** EX_DATAERR: Meta refused the verification code (wrong or expired); the migration still waits for one. */
  wrongCode: 65,
  /** EX_UNAVAILABLE: the Graph API host could not be reached (DNS, refused, reset, TLS, timeout). */
  unreachable: 69,
  /** EX_TEMPFAIL: stopped on a temporary condition (waiting_retry, retries exhausted); `resume` later succeeds. */
  tempfail: 75,
  /** 128 + SIGINT: stopped by Ctrl-C before its next request. */
  sigint: 130,
  /** 128 + SIGTERM. */
  sigterm: 143,
} as const;

/** One line per exit code, for `--help`, README and the tests. */
export const EXIT_TABLE: [number, string][] = [
  [EXIT.ok, 'done, or stopped where a person must act (awaiting_code, PIN, confirmation)'],
  [EXIT.internal, 'internal error (a bug: rerun with --debug and report it)'],
  [EXIT.usage, 'bad input or usage (missing flag, token or TTY; unknown id); nothing was changed'],
  [EXIT.blocked, 'blocked: a prerequisite fails (see the checks table)'],
  [EXIT.failed, 'failed: a permanent Graph API error (Meta\'s message, code and fbtrace_id are printed)'],
  [EXIT.locked, 'the migration is locked by another running process'],
  [EXIT.stateDocument, 'a state document is unreadable or damaged (list: one was skipped)'],
  [EXIT.wrongCode, 'Meta refused the verification code (wrong or expired): enter it again or resend-code'],
  [EXIT.unreachable, 'the Graph API could not be reached (DNS, connection, TLS, timeout)'],
  [EXIT.tempfail, 'stopped on a temporary condition (rate limit, Meta busy): resume later'],
  [EXIT.sigint, 'stopped by Ctrl-C (SIGINT) before its next request: resume continues'],
  [EXIT.sigterm, 'stopped by SIGTERM before its next request: resume continues'],
];

export function exitCodesHelp(): string {
  return `Exit codes:\n${EXIT_TABLE.map(([c, t]) => `  ${String(c).padStart(3)}  ${t}`).join('\n')}\n`;
}

/** A usage problem found by the CLI itself (missing flag, env var or TTY). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

/** The run was stopped by a signal; the view is printed before this is thrown. */
export class StoppedError extends Error {
  override readonly name = 'StoppedError';
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`stopped by ${signal}`);
  }
}

/** Exit with a code decided by the command (the message has been printed already). */
export class SilentExit extends Error {
  override readonly name = 'SilentExit';
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

const BY_NAME: Record<string, number> = {
  UsageError: EXIT.usage,
  InputError: EXIT.usage,
  MigrationNotFoundError: EXIT.usage,
  DuplicateMigrationError: EXIT.usage,
  ResendTooSoonError: EXIT.usage,
  WrongStateError: EXIT.usage,
  MigrationLockedError: EXIT.locked,
  MigrationLockLostError: EXIT.locked,
  NumberBusyError: EXIT.usage,
  BatchNotFoundError: EXIT.usage,
  BatchInputError: EXIT.usage,
  StateDocumentError: EXIT.stateDocument,
  StoreUrlError: EXIT.usage,
  StoreCopyConflictError: EXIT.usage,
  NotifyTestFailedError: EXIT.failed,
};

type GraphLike = { name?: string; kind?: string; transient?: boolean; message?: string; code?: number | null; subcode?: number | null; httpStatus?: number | null; fbtraceId?: string | null; userMessage?: string | null; method?: string; path?: string };

/** Errors whose message names what went wrong with the user's own environment (port, directory). */
const ENV_ERRNO = new Set(['EADDRINUSE', 'EACCES', 'ENOTDIR', 'EEXIST', 'EROFS', 'ENOSPC', 'EISDIR', 'EPERM', 'ENOENT']);

export function exitCodeFor(err: unknown): number {
  if (err instanceof Error && err.name === 'CommanderError') return (err as Error & { exitCode: number }).exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof Error && err.name === 'SilentExit') return (err as SilentExit).exitCode;
  if (err instanceof Error && err.name === 'StoppedError') return (err as StoppedError).signal === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
  if (err instanceof Error && err.name === 'GraphApiError') {
    const g = err as GraphLike;
    if (g.kind === 'network') return EXIT.unreachable;
    if (g.transient) return EXIT.tempfail;
    return EXIT.failed;
  }
  if (err instanceof Error && err.name in BY_NAME) return BY_NAME[err.name]!;
  if (err instanceof Error && /graph URL|access token is empty|access token contains|api-version|is not a Graph id/.test(err.message)) return EXIT.usage;
  const errno = (err as NodeJS.ErrnoException)?.code;
  if (typeof errno === 'string' && ENV_ERRNO.has(errno)) return EXIT.usage;
  return EXIT.internal;
}

/** A run that ended without an exception: its final state decides. */
export function exitCodeForView(v: { state: string; failure?: { kind?: string; transient?: boolean } | null; retry?: unknown }): number {
  if (v.state === 'blocked') return EXIT.blocked;
  if (v.state === 'waiting_retry') return EXIT.tempfail;
  if (v.state === 'failed') {
    if (v.failure?.kind === 'network') return EXIT.unreachable;
    if (v.failure?.transient) return EXIT.tempfail;
    return EXIT.failed;
  }
  return EXIT.ok;
}

/** The field an error is about, when it names one (InputError carries `field`). */
export function errorField(err: unknown): string | null {
  const f = (err as { field?: unknown })?.field;
  return typeof f === 'string' ? f : null;
}

export function errorCodeName(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'GraphApiError') {
      const g = err as GraphLike;
      return g.kind === 'network' ? 'graph_unreachable' : g.transient ? 'graph_temporary' : 'graph_error';
    }
    const errno = (err as NodeJS.ErrnoException).code;
    if (typeof errno === 'string' && ENV_ERRNO.has(errno)) return errno.toLowerCase();
    return err.name.replace(/Error$/, '').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase() || 'error';
  }
  return 'error';
}

export function describeError(err: unknown): string {
  const e = err as GraphLike & { syscall?: string; address?: string; port?: number; path?: string };
  if (e?.name === 'GraphApiError') {
    if (e.kind === 'network') {
      return `cannot reach the Graph API: ${e.message}\n  check the network, the --graph-url / WABA_GRAPH_URL value and any proxy; nothing was changed by this request`;
    }
    const parts = [`Graph API error: ${e.message}`];
    parts.push(`  code ${e.code ?? '-'}${e.subcode ? ` / subcode ${e.subcode}` : ''}, HTTP ${e.httpStatus ?? '-'}, fbtrace_id ${e.fbtraceId ?? '-'} (quote it to Meta support)`);
    if (e.userMessage) parts.push(`  ${e.userMessage}`);
    return parts.join('\n');
  }
  const errno = (err as NodeJS.ErrnoException)?.code;
  if (errno === 'EADDRINUSE') return `port ${e.port ?? ''} is already in use: pick another with --port (0 picks a free one)`.replace('port  is', 'the port is');
  if (errno === 'ENOTDIR' || errno === 'EEXIST')
    return `${e.path ?? 'a path'} is not a directory (${errno}): point --state-dir / WABA_MIGRATE_STATE_DIR at a directory`;
  if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS') return `${e.path ?? 'a path'}: permission denied (${errno}): choose a writable --state-dir`;
  if (err instanceof Error) return err.message;
  return String(err);
}
