/**
 * What a person (or a script) sees of one migration: where it stands and what must happen next.
 * Computed from the stored document alone, so `status` and `list` never touch Meta or a lock.
 */
import type { MigrationContext, StateName } from '../../machines/migration.js';
import { registerCallsInWindow, type CheckResult, type FailureInfo } from '../../machines/types.js';
import type { MigrationDocument } from '../store/document.js';

export interface MigrationView {
  id: string;
  state: StateName;
  /** Finer position inside `registering` (`held` while waiting for a PIN or an override). */
  substate: string | null;
  phone: string;
  sourceWabaId: string;
  destWabaId: string;
  businessId: string | null;
  /** The number's id in the destination WABA: new, and what every integration must now use. */
  phoneNumberId: string | null;
  checks: CheckResult[];
  nextAction: string;
  code: { method: string; requestedAt: string; resendAllowedAt: string; staleAt: string; wrongAttempts: number } | null;
  registerCallsLast72h: number;
  retry: { step: string; retryAt: string; error: string } | null;
  failure: (Pick<FailureInfo, 'message' | 'code' | 'subcode' | 'fbtraceId' | 'httpStatus'> & { step: string; remedy: string }) | null;
  warnings: string[];
  createdAt: string;
  updatedAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16) + ' UTC';

export function toView(doc: MigrationDocument, now = Date.now()): MigrationView {
  const ctx = doc.snapshot.context as MigrationContext;
  const value = doc.snapshot.value;
  const substate = typeof value === 'object' && value ? String(Object.values(value as Record<string, unknown>)[0]) : null;
  return {
    id: doc.id,
    state: doc.state,
    substate,
    phone: doc.input.phone,
    sourceWabaId: doc.input.sourceWabaId,
    destWabaId: doc.input.destWabaId,
    businessId: ctx.businessId ?? doc.input.businessId,
    phoneNumberId: ctx.phoneNumberId ?? null,
    checks: ctx.checks ?? [],
    nextAction: nextAction(doc, now),
    code: ctx.code
      ? {
          method: ctx.code.method,
          requestedAt: iso(ctx.code.requestedAt),
          resendAllowedAt: iso(ctx.code.resendAllowedAt),
          staleAt: iso(ctx.code.staleAt),
          wrongAttempts: ctx.codeAttempts,
        }
      : null,
    registerCallsLast72h: registerCallsInWindow(ctx, now),
    retry: ctx.retry ? { step: ctx.retry.step, retryAt: iso(ctx.retry.retryAt), error: ctx.retry.error.message } : null,
    failure: ctx.failure
      ? {
          step: ctx.failure.step,
          message: ctx.failure.message,
          code: ctx.failure.code,
          subcode: ctx.failure.subcode,
          fbtraceId: ctx.failure.fbtraceId,
          httpStatus: ctx.failure.httpStatus,
          remedy: ctx.failure.remedy,
        }
      : null,
    warnings: ctx.result?.warnings ?? [],
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

/** One sentence: what a person must do now, with the command to do it. */
export function nextAction(doc: MigrationDocument, now = Date.now()): string {
  const ctx = doc.snapshot.context as MigrationContext;
  const id = doc.id;
  switch (doc.state) {
    case 'awaiting_code': {
      const c = ctx.code;
      if (!c) return `enter the verification code: waba-migrate resume ${id} --code <6 digits>`;
      const how = c.method === 'VOICE' ? 'by voice call' : 'by SMS';
      const resend = now >= c.resendAllowedAt ? 'resend possible now' : `resend possible after ${clock(c.resendAllowedAt)}`;
      const stale = now >= c.staleAt ? ' The code is probably stale: request a new one with `waba-migrate resend-code`.' : '';
      const wrong = ctx.codeAttempts ? ` (${ctx.codeAttempts} wrong so far)` : '';
      return `enter the code sent ${how} to ${doc.input.phone} at ${clock(c.requestedAt)}${wrong}: waba-migrate resume ${id} --code <6 digits>; ${resend}.${stale}`;
    }
    case 'blocked': {
      const open = (ctx.checks ?? []).filter((c) => c.status !== 'pass');
      const fixes = open.map((c) => `${c.name} (${c.status}): ${c.remedy}`).join(' ');
      return `fix the prerequisites, then waba-migrate resume ${id}. ${fixes}`.trim();
    }
    case 'registering':
      if (ctx.hold === 'pin') return `supply the register PIN: WABA_REGISTER_PIN=<6 digits> waba-migrate resume ${id} (or --pin-file)`;
      if (ctx.hold === 'register_limit')
        return `only ${ctx.input.policy.registerLimit - registerCallsInWindow(ctx, now)} of Meta's 10 register calls per 72 h are left; spend one only on purpose: waba-migrate resume ${id} --override-register-limit`;
      return `registration in progress: waba-migrate resume ${id}`;
    case 'waiting_retry':
      return ctx.retry
        ? `a temporary Graph error (${ctx.retry.error.message}); retry due at ${iso(ctx.retry.retryAt)}: waba-migrate resume ${id}`
        : `waba-migrate resume ${id}`;
    case 'failed':
      return ctx.failure ? `${ctx.failure.remedy}` : `waba-migrate resume ${id}`;
    case 'completed':
      return `none: the number is on the Cloud API with phone_number_id ${ctx.phoneNumberId}; point every integration at this new id.`;
    case 'cancelled':
      return 'none: the migration was cancelled.';
    default:
      return `the migration was interrupted in ${doc.state}: waba-migrate resume ${id}`;
  }
}
