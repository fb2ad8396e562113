/**
 * What a person (or a script) sees of one migration: where it stands and what must happen next.
 * Computed from the stored document alone, so `status` and `list` never touch Meta or a lock.
 */
import type { MigrationContext, StateName } from '../../machines/migration.js';
import { registerCallsInWindow, type CarryLine, type CheckResult, type FailureInfo } from '../../machines/types.js';
import type { DisabledEndpoint, MigrationDocument } from '../store/document.js';
import { outboxSummary, type NotificationSummary } from '../notify/events.js';

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
  /** The number's id in the source WABA before the move (what integrations used until now). */
  previousPhoneNumberId: string | null;
  checks: CheckResult[];
  nextAction: string;
  code: { method: string; requestedAt: string; resendAllowedAt: string; staleAt: string; wrongAttempts: number; uncertain: boolean } | null;
  registerCallsLast72h: number;
  retry: { step: string; retryAt: string; error: string } | null;
  failure: (Pick<FailureInfo, 'kind' | 'transient' | 'message' | 'code' | 'subcode' | 'fbtraceId' | 'httpStatus'> & { step: string; remedy: string }) | null;
  warnings: string[];
  /** Progress notifications of this migration; null when it runs without them. */
  notifications: NotificationSummary | null;
  /** On-Premises path (issue 12): where the number comes from, and one line per On-Premises
   *  setting with its Cloud API equivalent and whether it was applied (null before the snapshot). */
  from: 'waba' | 'onprem';
  carryOver: CarryLine[] | null;
  createdAt: string;
  updatedAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** An instant in a sentence: to the second, rounded up ("after 18:38:05" must not be early); the CLI localizes it. */
const clock = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000).toISOString().slice(11, 19) + ' UTC';

export function toView(doc: MigrationDocument, now = Date.now(), disabledEndpoint: DisabledEndpoint | null = null): MigrationView {
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
    previousPhoneNumberId: ctx.sourcePhoneNumberId ?? null,
    checks: ctx.checks ?? [],
    nextAction: nextAction(doc, now),
    code: ctx.code
      ? {
          method: ctx.code.method,
          requestedAt: iso(ctx.code.requestedAt),
          resendAllowedAt: iso(ctx.code.resendAllowedAt),
          staleAt: iso(ctx.code.staleAt),
          wrongAttempts: ctx.codeAttempts,
          uncertain: ctx.code.uncertain === true,
        }
      : null,
    registerCallsLast72h: registerCallsInWindow(ctx, now),
    retry: ctx.retry ? { step: ctx.retry.step, retryAt: iso(ctx.retry.retryAt), error: ctx.retry.error.message } : null,
    failure: ctx.failure
      ? {
          step: ctx.failure.step,
          kind: ctx.failure.kind,
          transient: ctx.failure.transient,
          message: ctx.failure.message,
          code: ctx.failure.code,
          subcode: ctx.failure.subcode,
          fbtraceId: ctx.failure.fbtraceId,
          httpStatus: ctx.failure.httpStatus,
          remedy: ctx.failure.remedy,
        }
      : null,
    warnings: ctx.result?.warnings ?? [],
    notifications: outboxSummary(doc.outbox, disabledEndpoint),
    from: doc.input.from ?? 'waba',
    carryOver: ctx.carryOver ?? null,
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
      if (c.uncertain) {
        // The request's answer was lost: a code may be on its way, and a resend would void it.
        const by = clock(Math.max(c.resendAllowedAt, c.requestedAt + 60_000));
        return `a code may have been sent ${how} to ${doc.input.phone} (Meta's answer to the request was lost): if it arrives, waba-migrate resume ${id} --code <6 digits>; if none arrives by ${by}, waba-migrate resend-code ${id}.`;
      }
      const resend = now >= c.resendAllowedAt ? 'resend possible now' : `resend possible after ${clock(c.resendAllowedAt)}`;
      const stale = now >= c.staleAt ? ` The code has probably expired: request a new one with waba-migrate resend-code ${id}.` : '';
      const wrong = ctx.codeAttempts ? ` (${ctx.codeAttempts} wrong so far)` : '';
      return `enter the code sent ${how} to ${doc.input.phone} at ${clock(c.requestedAt)}${wrong}: waba-migrate resume ${id} --code <6 digits>; ${resend}.${stale}`;
    }
    case 'blocked': {
      const open = (ctx.checks ?? []).filter((c) => c.status !== 'pass');
      const fixes = open.map((c) => `${c.name} (${c.status}): ${c.remedy}`).join(' ');
      return `fix the prerequisites, then waba-migrate resume ${id}. ${fixes}`.trim();
    }
    case 'registering':
      if (ctx.hold === 'pin' && doc.input.from === 'onprem')
        return `supply the number's CURRENT two-step PIN (a wrong one leaves the On-Premises client disconnected): WABA_REGISTER_PIN=<6 digits> waba-migrate resume ${id} (or --pin-file); the backup password is needed again too (WABA_BACKUP_PASSWORD or --backup-password-file)`;
      if (ctx.hold === 'pin') return `supply the register PIN: WABA_REGISTER_PIN=<6 digits> waba-migrate resume ${id} (or --pin-file)`;
      if (ctx.hold === 'register_limit')
        return `only ${ctx.input.policy.registerLimit - registerCallsInWindow(ctx, now)} of Meta's 10 register calls per 72 h are left; spend one only on purpose: waba-migrate resume ${id} --override-register-limit`;
      return `registration in progress: waba-migrate resume ${id}`;
    case 'waiting_retry':
      if (ctx.retry && isThrottle(ctx.retry.error))
        return `${throttleText(ctx.retry.error, doc.input.destWabaId, ctx.retry.retryAt)}; \`waba-migrate work\` continues it then (or waba-migrate resume ${id})`;
      return ctx.retry
        ? `a temporary Graph error (${ctx.retry.error.message}); retry due at ${iso(ctx.retry.retryAt)}: waba-migrate resume ${id}`
        : `waba-migrate resume ${id}`;
    case 'failed':
      return ctx.failure ? `${ctx.failure.remedy}` : `waba-migrate resume ${id}`;
    case 'completed':
      if (doc.input.from === 'onprem')
        return `none: the number is on the Cloud API and kept its phone_number_id ${ctx.phoneNumberId}; the On-Premises client is disconnected: shut it down.`;
      // `none` must never hide a warning that needs action (the new-id warning is said here).
      if ((ctx.result?.warnings?.length ?? 0) > 1)
        return `act on the warnings below, and point every integration at the NEW phone_number_id ${ctx.phoneNumberId}${ctx.sourcePhoneNumberId ? ` (was ${ctx.sourcePhoneNumberId})` : ''}.`;
      return `none: the number is on the Cloud API with phone_number_id ${ctx.phoneNumberId}${ctx.sourcePhoneNumberId ? ` (was ${ctx.sourcePhoneNumberId})` : ''}; point every integration at this new id.`;
    case 'cancelled':
      return 'none: the migration was cancelled.';
    default:
      return `the migration was interrupted in ${doc.state}: waba-migrate resume ${id}`;
  }
}

/** The carry-over report as text: one line per On-Premises setting (status, and the CLI after a run). */
export function formatCarryOver(lines: CarryLine[]): string {
  const w = Math.max(...lines.map((l) => l.setting.length), 7);
  const head = `On-Premises settings → Cloud API (${lines.filter((l) => l.applied).length} applied by waba-migrate):`;
  return [head, ...lines.map((l) => `  ${l.setting.padEnd(w)}  ${l.value}  →  ${l.cloud}  [${l.applied ? 'applied' : 'not applied'}]`)].join('\n');
}

/** Meta's throttling codes, or a wait the rate budget imposed before sending anything. */
function isThrottle(f: FailureInfo): boolean {
  return (f.code !== null && [80007, 4, 130429].includes(f.code)) || f.message.startsWith('throttled by Meta');
}

/** "throttled by Meta's rate limit on WABA … until 10:42:05 UTC" (the WABA named by the error when it says). */
function throttleText(f: FailureInfo, destWabaId: string, until: number): string {
  const waba = /on WABA (\d+)/.exec(f.message)?.[1] ?? destWabaId;
  return `throttled by Meta's rate limit on WABA ${waba} until ${new Date(until).toISOString().slice(11, 19)} UTC${f.code !== null ? ` (code ${f.code})` : ''}`;
}
