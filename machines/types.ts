/**
 * Plain, serialisable types shared by the machine, the step actors and the runner.
 * Nothing here does IO; everything here survives JSON round-trips (it lives in the snapshot).
 */

export const CHECK_NAMES = [
  'same_business',
  'business_verified',
  'wabas_approved',
  'payment_method',
  'two_step_disabled',
  // On-Premises → Cloud API (issue 12)
  'number_on_premise',
  'app_subscribed',
  'pin_known',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export type CheckStatus = 'pass' | 'fail' | 'unknown';

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  /** What was seen, in one sentence. */
  detail: string;
  /** What a person must do to make it pass (empty when it passes). */
  remedy: string;
  /** Set when an operator's confirmation made it pass. */
  confirmedBy?: string;
}

export interface Confirmation {
  check: CheckName;
  by: string;
  at: string;
}

export type CodeMethod = 'SMS' | 'VOICE';

/** The steps that talk to Meta; `waiting_retry` returns to one of these. */
export const STEPS = ['checking', 'creating', 'requesting_code', 'verifying_code', 'registering', 'confirming', 'snapshotting', 'backing_up', 'carrying_settings'] as const;
export type Step = (typeof STEPS)[number];
/** Steps whose request changes Meta's state; each records an intent before it is sent. */
export type PostStep = 'creating' | 'requesting_code' | 'verifying_code' | 'registering';

export interface Policy {
  /** How long after a code request a resend is allowed. */
  resendCooldownMs: number;
  /** After this long a requested code is treated as stale (a resend is suggested). */
  codeTtlMs: number;
  /** Wrong codes tolerated before the migration fails. */
  maxCodeAttempts: number;
  /** Meta's register allowance per number per 72 h. */
  registerLimit: number;
  /** Register calls kept in reserve: spending them needs an explicit operator override. */
  registerReserve: number;
  /** Exponential backoff with full jitter: base and cap. */
  retryBaseMs: number;
  retryCapMs: number;
  /** Transient failures tolerated per step before the migration fails. */
  maxAttemptsPerStep: number;
}

export const DEFAULT_POLICY: Policy = {
  resendCooldownMs: 60_000,
  codeTtlMs: 10 * 60_000,
  maxCodeAttempts: 5,
  registerLimit: 10,
  registerReserve: 2,
  retryBaseMs: 1_000,
  retryCapMs: 5 * 60_000,
  maxAttemptsPerStep: 8,
};

/** Everything the operator gave that is not a secret. Stored in the state document. */
export interface MigrationInput {
  id: string;
  /** E.164, e.g. +16315551000 */
  phone: string;
  /** Country calling code without '+', e.g. "1" */
  cc: string;
  /** The number without its country code, e.g. "6315551000" */
  nationalNumber: string;
  sourceWabaId: string;
  destWabaId: string;
  businessId: string | null;
  codeMethod: CodeMethod;
  language: string;
  verifiedName: string | null;
  policy: Policy;
  /** Confirmations given when the migration was started. */
  confirmations: Confirmation[];
  /** Where the number comes from: another WABA (absent: documents from before issue 12) or an
   *  On-Premises API client (the number stays in `destWabaId`, which equals `sourceWabaId`). */
  from?: 'waba' | 'onprem';
  /** The On-Premises client's base URL (https, or http on loopback). */
  onpremUrl?: string | null;
  /** Set the Cloud webhook override for the number: the operator's URL (redacted when stored if
   *  it has query values), or null for the On-Premises `webhooks.url`. Absent: not asked. */
  carryWebhook?: { url: string | null } | null;
  /** Apply the On-Premises `show_security_notifications` and `notify_user_change_number` to the
   *  number (`POST /{phone-number-id}` whatsapp_business_api_data). Absent/false: not asked. */
  carrySettings?: boolean;
}

/** A failure as the machine keeps it: a plain object, no class, no stack. */
export interface FailureInfo {
  kind: 'graph' | 'network' | 'tls' | 'bad_response' | 'needs_input' | 'internal';
  message: string;
  transient: boolean;
  httpStatus: number | null;
  code: number | null;
  subcode: number | null;
  fbtraceId: string | null;
  retryAfterMs: number | null;
  /** Which input is missing, for `needs_input`. */
  field?: 'code' | 'pin';
  /** When it happened (ms since epoch) and a uniform random draw in [0,1) for jitter:
   *  the impure parts come from the actor so the machine stays deterministic. */
  at: number;
  jitter: number;
}

export interface Intent {
  step: PostStep;
  /** Increments with every new intent of the migration. */
  seq: number;
  /** 1 for the first send; more when the same intent is sent again after a transient error. */
  attempt: number;
  at: number;
}

export interface ExistingNumber {
  id: string;
  status: string | null;
  codeVerificationStatus: string | null;
  /** ON_PREMISE, CLOUD_API, NOT_APPLICABLE (read on the On-Premises path only). */
  platformType?: string | null;
}

export interface ChecksOutput {
  businessId: string | null;
  checks: CheckResult[];
  existing: ExistingNumber | null;
  /** The number's phone_number_id in the source WABA, when it is listed there: the id every
   *  integration used before the migration (the destination gives it a new one). */
  sourcePhoneNumberId?: string | null;
  /** What the source WABA says of the number (shown by `check`; `found: null` when it could not be listed). */
  sourceNumber?: { found: boolean | null; id?: string; status?: string | null; nameStatus?: string | null; codeVerificationStatus?: string | null; platform?: string | null; error?: string };
}

export interface ConfirmOutput {
  connected: boolean;
  listed: boolean;
  status: string | null;
  displayPhoneNumber: string | null;
  verifiedName: string | null;
  qualityRating: string | null;
  warnings: string[];
}

/** Duck-typed conversion of whatever an actor threw into a FailureInfo (pure). */
export function toFailure(err: unknown): FailureInfo {
  const e = (err ?? {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const kind = (['graph', 'network', 'tls', 'bad_response', 'needs_input'] as const).find((k) => k === e.kind) ?? 'internal';
  const field = e.field === 'code' || e.field === 'pin' ? e.field : undefined;
  return {
    kind,
    message: str(e.message) ?? String(err),
    transient: e.transient === true,
    httpStatus: num(e.httpStatus),
    code: num(e.code),
    subcode: num(e.subcode),
    fbtraceId: str(e.fbtraceId),
    retryAfterMs: num(e.retryAfterMs),
    ...(field ? { field } : {}),
    at: num(e.at) ?? 0,
    jitter: num(e.jitter) ?? 0.5,
  };
}

/** Full-jitter exponential backoff, never shorter than what Meta asked for. */
export function backoffMs(policy: Policy, attempt: number, jitter: number, retryAfterMs: number | null): number {
  const ceiling = Math.min(policy.retryCapMs, policy.retryBaseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(Math.min(Math.max(jitter, 0), 1) * ceiling);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Meta codes with a meaning for the flow. */
export const META = {
  /** verify_code: wrong (or expired) code */
  WRONG_CODE: 136025,
  /** request_code: the number is already verified */
  ALREADY_VERIFIED: 136024,
  /** register: more than 10 calls in 72 h; the number is blocked for 72 h */
  REGISTER_LIMIT: 133016,
  /** invalid or expired access token */
  BAD_TOKEN: 190,
  /** register: the PIN is not the number's two-step verification PIN */
  PIN_MISMATCH: 133005,
} as const;

/** A sentence a person can act on, for a permanent failure. */
export function remedyFor(step: Step, f: FailureInfo): string {
  if (f.kind === 'tls')
    return "The TLS certificate of the Graph URL could not be verified (self-signed, expired, or for another host), so nothing was sent. Check --graph-url / WABA_GRAPH_URL and any proxy that intercepts TLS, then resume.";
  if (f.code === META.REGISTER_LIMIT)
    return 'Meta blocked registration for this number for 72 hours after too many register calls. Wait 72 h from the last attempt, then `waba-migrate resume` (the PIN is asked again).';
  if ((step === 'snapshotting' || step === 'backing_up') && !f.transient)
    return 'The On-Premises client did not do what was asked (see the message). Check that it runs and is reachable at the --onprem-url given, that WABA_ONPREM_USER + WABA_ONPREM_PASSWORD (or WABA_ONPREM_TOKEN) and WABA_BACKUP_PASSWORD are right, and restart a client that an earlier register left disconnected; then `waba-migrate resume`.';
  if (f.code === META.PIN_MISMATCH)
    return 'The PIN is not this number’s two-step verification PIN (133005). The On-Premises client is now disconnected and down: messages stop until the number is registered. Find the right PIN (or reset two-step verification in WhatsApp Manager > Phone numbers > Two-step verification), then `WABA_REGISTER_PIN=<pin> waba-migrate resume` (a new backup is needed: restart the On-Premises client so it can make one, or register it again on the On-Premises side to restore service).';
  if (f.code === META.BAD_TOKEN)
    return 'The access token is invalid or expired. Create a new system-user token with whatsapp_business_management and whatsapp_business_messaging, then resume.';
  if (f.code === 10 || (f.code !== null && f.code >= 200 && f.code <= 299))
    return "The token lacks a permission. Give the system user full control of both WABAs and the app the whatsapp_business_management permission, then resume.";
  if (f.code === META.WRONG_CODE)
    return 'Too many wrong codes. Wait for Meta to lift the verification limit, then `waba-migrate resume` and request a new code.';
  if (f.code === 100)
    return 'Meta rejected a parameter. Check the phone number, WABA IDs and verified name, then resume; quote the fbtrace_id to Meta support if it persists.';
  if (f.transient)
    return `Step ${step} kept failing with temporary errors. Check Meta's status page and network, then \`waba-migrate resume\`.`;
  return `Step ${step} failed. Read Meta's message, fix the cause, then \`waba-migrate resume\`; quote the fbtrace_id to Meta support.`;
}

const REGISTER_WINDOW_MS = 72 * 3600_000;

/** Register calls made in Meta's 72-hour window. */
export function registerCallsInWindow(ctx: { registerCalls: number[]; numberLedger?: NumberLedger | null }, now = Date.now()): number {
  const others = ctx.numberLedger?.registerCalls ?? [];
  return [...ctx.registerCalls, ...others].filter((t) => now - t < REGISTER_WINDOW_MS).length;
}

export const REGISTER_BLOCK_MS = REGISTER_WINDOW_MS;

/**
 * What other migrations of the same phone number spent of Meta's register allowance, and any
 * 133016 block they hit: Meta counts per number, so the machine must too. The runner supplies it
 * (under the per-number lock) with the `NUMBER_LEDGER` event.
 */
export interface NumberLedger {
  registerCalls: number[];
  blockedUntil: number | null;
}

/** When Meta's 72 h register block (133016) on this number ends, or null. */
export function registerBlockedUntil(ctx: { registerBlockedUntil?: number | null; numberLedger?: NumberLedger | null }): number | null {
  const own = ctx.registerBlockedUntil ?? null;
  const other = ctx.numberLedger?.blockedUntil ?? null;
  if (own === null) return other;
  if (other === null) return own;
  return Math.max(own, other);
}

/** One line of the On-Premises settings carry-over report (issue 12). */
export interface CarryLine {
  setting: string;
  /** The On-Premises value, secrets redacted, as JSON text. */
  value: string;
  /** The Cloud API equivalent, or "none: <why>". */
  cloud: string;
  applied: boolean;
}

export interface SnapshotOutput {
  /** The On-Premises application settings, secrets redacted. */
  settings: Record<string, unknown>;
  carryOver: CarryLine[];
}
