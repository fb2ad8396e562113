/** Small helpers the step actors share. */
import { toFailure, type FailureInfo, type Intent, type MigrationInput } from '../../machines/types.js';

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
