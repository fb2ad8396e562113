/**
 * The only place errors become exit codes. Matched by `name` rather than `instanceof` so the CLI
 * entry point does not have to load the engine (start-up stays fast).
 */

export const EXIT = { ok: 0, internal: 1, usage: 2, blocked: 3, failed: 4, locked: 5, stateDocument: 6 } as const;

/** A usage problem found by the CLI itself (missing flag, env var or TTY). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const BY_NAME: Record<string, number> = {
  UsageError: EXIT.usage,
  InputError: EXIT.usage,
  MigrationNotFoundError: EXIT.usage,
  DuplicateMigrationError: EXIT.usage,
  ResendTooSoonError: EXIT.usage,
  WrongStateError: EXIT.usage,
  MigrationLockedError: EXIT.locked,
  StateDocumentError: EXIT.stateDocument,
  GraphApiError: EXIT.failed,
};

export function exitCodeFor(err: unknown): number {
  if (err instanceof Error && err.name === 'CommanderError') return (err as Error & { exitCode: number }).exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof Error && err.name in BY_NAME) return BY_NAME[err.name]!;
  if (err instanceof Error && /graph URL|access token is empty/.test(err.message)) return EXIT.usage;
  return EXIT.internal;
}

export function exitCodeForState(state: string): number {
  if (state === 'blocked') return EXIT.blocked;
  if (state === 'failed') return EXIT.failed;
  return EXIT.ok;
}

export function describeError(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: number | null; subcode?: number | null; httpStatus?: number | null; fbtraceId?: string | null; userMessage?: string | null };
  if (e?.name === 'GraphApiError') {
    const parts = [`Graph API error: ${e.message}`];
    parts.push(`  code ${e.code ?? '-'}${e.subcode ? ` / subcode ${e.subcode}` : ''}, HTTP ${e.httpStatus ?? '-'}, fbtrace_id ${e.fbtraceId ?? '-'} (quote it to Meta support)`);
    if (e.userMessage) parts.push(`  ${e.userMessage}`);
    return parts.join('\n');
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
