/** Small helpers the step actors share. */
import { META, toFailure, type FailureInfo, type Intent, type MigrationInput } from '../../machines/types.js';
import { isGraphApiError, type GraphApiError } from '../graph/errors.js';

export type { FailureInfo, Intent };

export interface PhoneNumberLike {
  id: string;
  display_phone_number?: string | undefined;
  status?: string | undefined;
  code_verification_status?: string | undefined;
}

/** Finds our number in a WABA's phone list by comparing digits (Meta shows "+1 631-555-1000"). */
export function findNumber<T extends PhoneNumberLike>(numbers: T[], input: Pick<MigrationInput, 'cc' | 'nationalNumber'>): T | null {
  const want = `${input.cc}${input.nationalNumber}`;
  return numbers.find((n) => (n.display_phone_number ?? '').replace(/\D/g, '') === want) ?? null;
}

/**
 * Turns anything thrown into the plain FailureInfo the machine reads, adding the two impure
 * ingredients of a retry decision (the time and a jitter draw) here, outside the machine.
 */
export function asFailure(err: unknown): FailureInfo {
  const f = toFailure(err);
  return { ...f, at: Date.now(), jitter: Math.random() };
}

export function needsInput(field: 'code' | 'pin', message: string): FailureInfo {
  return { ...asFailure({ kind: 'needs_input', message }), field, transient: false };
}

/** Wraps an actor body so whatever it throws reaches the machine as a FailureInfo. */
export async function step<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err && typeof err === 'object' && 'jitter' in err && 'kind' in err) throw err;
    throw asFailure(err);
  }
}

/** Where a step finds its dependencies: given directly, or looked up for the running actor system
 *  (so one provided machine serves every run; see src/runner/engine.ts). */
export type DepsSource<D> = D | ((system: object) => D);

export function withDeps<D, A extends { system: object }, R>(source: DepsSource<D>, body: (deps: D) => (args: A) => R): (args: A) => R {
  return (args) => body(typeof source === 'function' ? (source as (s: object) => D)(args.system) : source)(args);
}

/** One read of a check: its value, or the permanent Graph error that made it unreadable. */
export type Read<T> = { ok: true; value: T } | { ok: false; error: GraphApiError };

/** A permanent error on one check makes that check `unknown`; transient ones, a bad token and a
 *  refused TLS certificate abort the whole step (retry later / fail with the remedy). */
export async function attempt<T>(fn: () => Promise<T>): Promise<Read<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (!isGraphApiError(e) || e.transient || e.code === META.BAD_TOKEN || e.kind === 'tls') throw e;
    return { ok: false, error: e };
  }
}

/** Meta's words for a check's detail. */
export const why = (e: GraphApiError) => `Graph said: ${e.message} (code ${e.code ?? '-'}, fbtrace_id ${e.fbtraceId ?? '-'}).`;
