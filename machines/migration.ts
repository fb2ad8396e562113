/**
 * The migration as an XState v5 machine. Pure: no IO, no secrets. Every effect is a named actor
 * (`runChecks`, `createNumber`, `requestCode`, `verifyCode`, `register`, `confirm`) whose real
 * implementation is supplied with `migrationMachine.provide({ actors })` (see src/steps/).
 *
 * Externally visible state names (CLI, JSON output and tests rely on them): checking, blocked,
 * creating, requesting_code, awaiting_code, verifying_code, registering, confirming, completed,
 * waiting_retry, failed, cancelled.
 *
 * Time: XState does not restore `after` timers from a persisted snapshot, so the machine keeps
 * absolute deadlines in context (`retry.retryAt`, `code.resendAllowedAt`, `code.staleAt`) and the
 * runner turns them into events (`RETRY`). Secrets (the code, the PIN) never enter the machine:
 * the actors get them from the runner's memory, so no snapshot can contain them.
 */
import { assign, fromPromise, setup } from 'xstate';
import {
  backoffMs,
  type ChecksOutput,
  type CheckName,
  type CheckResult,
  type CarryLine,
  type CodeMethod,
  type Confirmation,
  type ConfirmOutput,
  type ExistingNumber,
  type FailureInfo,
  type Intent,
  META,
  type MigrationInput,
  type NumberLedger,
  type PostStep,
  REGISTER_BLOCK_MS,
  registerBlockedUntil,
  registerCallsInWindow,
  remedyFor,
  type SnapshotOutput,
  type Step,
  toFailure,
} from './types.js';

export * from './types.js';

export const STATE_NAMES = [
  'checking',
  'blocked',
  'creating',
  'requesting_code',
  'awaiting_code',
  'verifying_code',
  'registering',
  'confirming',
  'completed',
  'waiting_retry',
  'failed',
  'cancelled',
  // On-Premises → Cloud API (issue 12)
  'snapshotting',
  'backing_up',
  'carrying_settings',
] as const;
export type StateName = (typeof STATE_NAMES)[number];


export interface CodeRequest {
  method: CodeMethod;
  requestedAt: number;
  resendAllowedAt: number;
  staleAt: number;
  /** How many request_code calls succeeded for this migration. */
  requests: number;
  /** The request's answer was lost (timeout, reset): a code may or may not be on its way.
   *  Never re-sent on our own (a resend invalidates a code the person may be reading). */
  uncertain?: boolean;
}

export interface MigrationContext {
  input: MigrationInput;
  businessId: string | null;
  checks: CheckResult[];
  confirmations: Confirmation[];
  existing: ExistingNumber | null;
  /** The number's id in the source WABA, seen by the checks before it moved (null if never seen). */
  sourcePhoneNumberId?: string | null;
  phoneNumberId: string | null;
  /** True when the number was already in the destination WABA and its id was adopted. */
  adopted: boolean;
  codeMethod: CodeMethod;
  code: CodeRequest | null;
  codeVerified: boolean;
  /** Wrong codes submitted so far. */
  codeAttempts: number;
  /** Times (ms) at which a register call was (or may have been) sent. */
  registerCalls: number[];
  registerOverride: { by: string; at: string } | null;
  /** Meta's 133016 block on this number: no register call before this time (ms). */
  registerBlockedUntil?: number | null;
  /** Other migrations' register calls and blocks on the same number (runner-supplied). */
  numberLedger?: NumberLedger | null;
  hold: 'pin' | 'register_limit' | null;
  intent: Intent | null;
  seq: number;
  /** Transient failures per step since the step last succeeded. */
  attempts: Partial<Record<Step, number>>;
  retry: { step: Step; retryAt: number; error: FailureInfo } | null;
  failure: (FailureInfo & { step: Step; remedy: string }) | null;
  result: ConfirmOutput | null;
  /** On-Premises path: the client's application settings, secrets redacted (absent before issue 12). */
  onpremSettings?: Record<string, unknown> | null;
  /** On-Premises path: one line per setting, its Cloud equivalent and whether it was applied. */
  carryOver?: CarryLine[] | null;
}

export type MigrationEvent =
  | { type: 'CODE_SUBMITTED' }
  | { type: 'RESEND_CODE'; method?: CodeMethod; at?: number }
  | { type: 'CONFIRM_CHECK'; check: CheckName; by: string; at?: string }
  | { type: 'PIN_PROVIDED' }
  | { type: 'OVERRIDE_REGISTER_LIMIT'; by: string; at?: string }
  | { type: 'RETRY' }
  | { type: 'CANCEL'; by?: string; reason?: string }
  | { type: 'NUMBER_LEDGER'; ledger: NumberLedger };

export interface StepInput {
  phoneNumberId: string;
  intent: Intent;
  /** register only: the On-Premises path (register with the client's backup). */
  onprem?: boolean;
}
export interface OnPremStepInput {
  input: MigrationInput;
  phoneNumberId: string;
}
export interface CarryInput extends OnPremStepInput {
  carryOver: CarryLine[];
}
export interface CreateInput {
  input: MigrationInput;
  intent: Intent;
}
export interface RequestCodeInput extends StepInput {
  method: CodeMethod;
  language: string;
}
export interface ChecksInput {
  input: MigrationInput;
  confirmations: Confirmation[];
}
export interface ConfirmInput {
  phoneNumberId: string;
  input: MigrationInput;
}
export interface CreateOutput {
  phoneNumberId: string;
  adopted: boolean;
}
export interface RequestCodeOutput {
  at: number;
  alreadyVerified: boolean;
  /** The answer was lost or the request may have been in flight when a process died. */
  uncertain?: boolean;
}
export interface AckOutput {
  /** True when reconciliation showed the effect had already happened and nothing was sent. */
  reconciled: boolean;
}

/** Placeholder actors: the machine is useless until real ones are provided. */
function missing<O, I>(name: string) {
  return fromPromise<O, I>(async () => {
    throw new Error(`actor "${name}" was not provided: use migrationMachine.provide({ actors })`);
  });
}

/** Applies operator confirmations: an `unknown` check (the API cannot see it) passes once confirmed. */
export function applyConfirmations(checks: CheckResult[], confirmations: Confirmation[]): CheckResult[] {
  return checks.map((c) => {
    if (c.status !== 'unknown') return c;
    const conf = confirmations.find((x) => x.check === c.name);
    if (!conf) return c;
    return { ...c, status: 'pass', remedy: '', confirmedBy: conf.by, detail: `${c.detail} Confirmed by ${conf.by} at ${conf.at}.` };
  });
}

const isOnprem = (ctx: MigrationContext) => ctx.input.from === 'onprem';
const onCloud = (ctx: MigrationContext) => ctx.existing?.platformType?.toUpperCase() === 'CLOUD_API';
/** The On-Premises settings `--carry-settings` applies (whatsapp_business_api_data). */
export const API_DATA_SETTINGS = ['show_security_notifications', 'notify_user_change_number'] as const;
/** The operator asked to carry the webhook (or the settings) and it is not applied yet. */
const carryPending = (ctx: MigrationContext) =>
  isOnprem(ctx) &&
  ((!!ctx.input.carryWebhook && !(ctx.carryOver ?? []).some((l) => l.setting === 'webhooks.url' && l.applied)) ||
    (!!ctx.input.carrySettings && (ctx.carryOver ?? []).some((l) => (API_DATA_SETTINGS as readonly string[]).includes(l.setting) && !l.applied)));

const failureOf = (event: { error?: unknown }) => toFailure(event.error);

/**
 * A step's error in a top-level state: waiting_retry when it may pass later (the retryable guard
 * says when: transient errors, rate limits, within the step's attempts), else failed. One place
 * for the rule every step shares; a step with errors of its own puts its cases before these.
 */
const retryOrFail = <S extends Step>(step: S) =>
  [
    { guard: { type: 'retryable' as const, params: { step } }, target: 'waiting_retry' as const, actions: { type: 'scheduleRetry' as const, params: { step } } },
    { target: 'failed' as const, actions: { type: 'recordFailure' as const, params: { step } } },
  ];
const isKind = (event: { error?: unknown }, kind: FailureInfo['kind'], field?: string) => {
  const f = failureOf(event);
  return f.kind === kind && (field === undefined || f.field === field);
};

export const migrationMachine = setup({
  types: {
    context: {} as MigrationContext,
    events: {} as MigrationEvent,
    input: {} as MigrationInput,
  },
  actors: {
    runChecks: missing<ChecksOutput, ChecksInput>('runChecks'),
    createNumber: missing<CreateOutput, CreateInput>('createNumber'),
    requestCode: missing<RequestCodeOutput, RequestCodeInput>('requestCode'),
    verifyCode: missing<AckOutput, StepInput>('verifyCode'),
    register: missing<AckOutput, StepInput>('register'),
    confirm: missing<ConfirmOutput, ConfirmInput>('confirm'),
    snapshot: missing<SnapshotOutput, OnPremStepInput>('snapshot'),
    backup: missing<AckOutput, OnPremStepInput>('backup'),
    carrySettings: missing<{ carryOver: CarryLine[] }, CarryInput>('carrySettings'),
  },
  guards: {
    prerequisitesMissing: ({ context }) => context.checks.some((c) => c.status !== 'pass'),
    numberConnected: ({ context }) => context.existing?.status?.toUpperCase() === 'CONNECTED',
    numberVerified: ({ context }) => context.existing?.codeVerificationStatus?.toUpperCase() === 'VERIFIED',
    numberInDestination: ({ context }) => context.existing !== null,
    // On-Premises path (issue 12)
    onPremOnCloudCarry: ({ context }) => isOnprem(context) && onCloud(context) && carryPending(context),
    onPremOnCloud: ({ context }) => isOnprem(context) && onCloud(context),
    onPremSnapshotTaken: ({ context }) => isOnprem(context) && !!context.onpremSettings,
    fromOnPrem: ({ context }) => isOnprem(context),
    carryPending: ({ context }) => carryPending(context),
    needsCode: ({ event }) => isKind(event as { error?: unknown }, 'needs_input', 'code'),
    needsPin: ({ event }) => isKind(event as { error?: unknown }, 'needs_input', 'pin'),
    alreadyVerified: ({ event }) => failureOf(event as { error?: unknown }).code === META.ALREADY_VERIFIED,
    wrongCode: ({ context, event }) =>
      failureOf(event as { error?: unknown }).code === META.WRONG_CODE && context.codeAttempts + 1 < context.input.policy.maxCodeAttempts,
    retryable: ({ context, event }, params: { step: Step }) => {
      const f = failureOf(event as { error?: unknown });
      return f.transient && (context.attempts[params.step] ?? 0) + 1 < context.input.policy.maxAttemptsPerStep;
    },
    canResend: ({ context }) => context.code === null || Date.now() >= context.code.resendAllowedAt,
    registerExhausted: ({ context }) => registerCallsInWindow(context) >= context.input.policy.registerLimit,
    registerBlocked: ({ context }) => {
      const until = registerBlockedUntil(context);
      return until !== null && Date.now() < until;
    },
    registerLimitHit: ({ event }) => failureOf(event as { error?: unknown }).code === META.REGISTER_LIMIT,
    registerReserveReached: ({ context }) =>
      context.registerOverride === null &&
      registerCallsInWindow(context) >= context.input.policy.registerLimit - context.input.policy.registerReserve,
    retryStepIs: ({ context }, params: { step: Step }) => context.retry?.step === params.step,
  },
  actions: {
    recordIntent: assign(({ context }, params: { step: PostStep }) => {
      // Same step still outstanding (a transient failure, or a restore): same intent, next attempt.
      if (context.intent && context.intent.step === params.step) {
        return { intent: { ...context.intent, attempt: context.intent.attempt + 1, at: Date.now() } };
      }
      const seq = context.seq + 1;
      return { seq, intent: { step: params.step, seq, attempt: 1, at: Date.now() } };
    }),
    clearIntent: assign({ intent: null }),
    stepSucceeded: assign(({ context }, params: { step: Step }) => {
      const attempts = { ...context.attempts };
      delete attempts[params.step];
      return { attempts, retry: null, failure: null };
    }),
    scheduleRetry: assign(({ context, event }, params: { step: Step }) => {
      const f = failureOf(event as { error?: unknown });
      const attempt = (context.attempts[params.step] ?? 0) + 1;
      const at = f.at || Date.now();
      return {
        attempts: { ...context.attempts, [params.step]: attempt },
        retry: { step: params.step, retryAt: at + backoffMs(context.input.policy, attempt, f.jitter, f.retryAfterMs), error: f },
      };
    }),
    recordFailure: assign(({ event }, params: { step: Step }) => {
      const f = failureOf(event as { error?: unknown });
      return { failure: { ...f, step: params.step, remedy: remedyFor(params.step, f) }, intent: null, retry: null };
    }),
    recordConfirmation: assign(({ context, event }) => {
      if (event.type !== 'CONFIRM_CHECK') return {};
      const confirmation: Confirmation = { check: event.check, by: event.by, at: event.at ?? new Date().toISOString() };
      const confirmations = [...context.confirmations.filter((c) => c.check !== event.check), confirmation];
      return { confirmations, checks: applyConfirmations(context.checks, confirmations) };
    }),
  },
}).createMachine({
  id: 'migration',
  initial: 'checking',
  context: ({ input }) => ({
    input,
    businessId: input.businessId,
    checks: [],
    confirmations: [...input.confirmations],
    existing: null,
    sourcePhoneNumberId: null,
    phoneNumberId: null,
    adopted: false,
    codeMethod: input.codeMethod,
    code: null,
    codeVerified: false,
    codeAttempts: 0,
    registerCalls: [],
    registerOverride: null,
    registerBlockedUntil: null,
    numberLedger: null,
    hold: null,
    intent: null,
    seq: 0,
    attempts: {},
    retry: null,
    failure: null,
    result: null,
    onpremSettings: null,
    carryOver: null,
  }),
  on: {
    CANCEL: '.cancelled',
    CONFIRM_CHECK: { actions: 'recordConfirmation' },
    NUMBER_LEDGER: { actions: assign(({ event }) => ({ numberLedger: event.ledger })) },
  },
  states: {
    checking: {
      invoke: {
        id: 'checks',
        src: 'runChecks',
        input: ({ context }) => ({ input: context.input, confirmations: context.confirmations }),
        onDone: {
          target: 'route',
          actions: [
            assign(({ context, event }) => ({
              checks: event.output.checks,
              businessId: event.output.businessId,
              existing: event.output.existing,
              // Once the number has moved it is no longer listed in the source: keep what was seen.
              sourcePhoneNumberId: event.output.sourcePhoneNumberId ?? context.sourcePhoneNumberId ?? null,
            })),
            { type: 'stepSucceeded', params: { step: 'checking' } },
          ],
        },
        onError: retryOrFail('checking'),
      },
    },
    /** Transient routing after checks: a check short of `pass` blocks; otherwise where the number
     *  already stands decides the next step. */
    route: {
      always: [
        { guard: 'prerequisitesMissing', target: 'blocked' },
        // On-Premises → Cloud API: the number stays where it is; no create, request_code or verify_code.
        {
          guard: 'onPremOnCloudCarry',
          target: 'carrying_settings',
          actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id, adopted: true })),
        },
        {
          guard: 'onPremOnCloud',
          target: 'confirming',
          actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id, adopted: true })),
        },
        {
          // A snapshot taken before (e.g. before a failed register) is kept: the client may be down now.
          guard: 'onPremSnapshotTaken',
          target: 'backing_up',
          actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id })),
        },
        { guard: 'fromOnPrem', target: 'snapshotting', actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id })) },
        {
          guard: 'numberConnected',
          target: 'confirming',
          actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id, adopted: true, codeVerified: true })),
        },
        {
          guard: 'numberVerified',
          target: 'registering',
          actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id, adopted: true, codeVerified: true })),
        },
        {
          guard: 'numberInDestination',
          target: 'requesting_code',
          actions: assign(({ context }) => ({ phoneNumberId: context.existing!.id, adopted: true })),
        },
        { target: 'creating' },
      ],
    },
    blocked: {
      on: { RETRY: 'checking' },
    },
    snapshotting: {
      invoke: {
        id: 'snapshot',
        src: 'snapshot',
        input: ({ context }) => ({ input: context.input, phoneNumberId: context.phoneNumberId! }),
        onDone: {
          target: 'backing_up',
          actions: [
            assign(({ event }) => ({ onpremSettings: event.output.settings, carryOver: event.output.carryOver })),
            { type: 'stepSucceeded', params: { step: 'snapshotting' } },
          ],
        },
        onError: retryOrFail('snapshotting'),
      },
    },
    /** The backup is kept in the runner's memory only (never in the snapshot); register fetches
     *  a new one itself when a resumed run has none. */
    backing_up: {
      invoke: {
        id: 'backup',
        src: 'backup',
        input: ({ context }) => ({ input: context.input, phoneNumberId: context.phoneNumberId! }),
        onDone: { target: 'registering', actions: { type: 'stepSucceeded', params: { step: 'backing_up' } } },
        onError: retryOrFail('backing_up'),
      },
    },
    carrying_settings: {
      invoke: {
        id: 'carrySettings',
        src: 'carrySettings',
        input: ({ context }) => ({ input: context.input, phoneNumberId: context.phoneNumberId!, carryOver: context.carryOver ?? [] }),
        onDone: {
          target: 'confirming',
          actions: [assign(({ event }) => ({ carryOver: event.output.carryOver })), { type: 'stepSucceeded', params: { step: 'carrying_settings' } }],
        },
        onError: retryOrFail('carrying_settings'),
      },
    },
    creating: {
      entry: { type: 'recordIntent', params: { step: 'creating' } },
      invoke: {
        id: 'create',
        src: 'createNumber',
        input: ({ context }) => ({ input: context.input, intent: context.intent! }),
        onDone: {
          target: 'requesting_code',
          actions: [
            assign(({ event }) => ({ phoneNumberId: event.output.phoneNumberId, adopted: event.output.adopted })),
            'clearIntent',
            { type: 'stepSucceeded', params: { step: 'creating' } },
          ],
        },
        onError: retryOrFail('creating'),
      },
    },
    requesting_code: {
      entry: { type: 'recordIntent', params: { step: 'requesting_code' } },
      invoke: {
        id: 'requestCode',
        src: 'requestCode',
        input: ({ context }) => ({
          phoneNumberId: context.phoneNumberId!,
          intent: context.intent!,
          method: context.codeMethod,
          language: context.input.language,
        }),
        onDone: [
          {
            guard: ({ event }) => event.output.alreadyVerified, // reconciliation found it verified
            target: 'registering',
            actions: [assign({ codeVerified: true }), 'clearIntent', { type: 'stepSucceeded', params: { step: 'requesting_code' } }],
          },
          {
            target: 'awaiting_code',
            actions: [
              assign(({ context, event }) => ({
                code: {
                  method: context.codeMethod,
                  requestedAt: event.output.at,
                  resendAllowedAt: event.output.at + context.input.policy.resendCooldownMs,
                  staleAt: event.output.at + context.input.policy.codeTtlMs,
                  requests: (context.code?.requests ?? 0) + 1,
                  ...(event.output.uncertain ? { uncertain: true } : {}),
                },
                // A new code (or the chance of one) restarts the wrong-attempt count.
                codeAttempts: 0,
              })),
              'clearIntent',
              { type: 'stepSucceeded', params: { step: 'requesting_code' } },
            ],
          },
        ],
        onError: [
          {
            // 136024: Meta says the number is already verified; no code is needed.
            guard: 'alreadyVerified',
            target: 'registering',
            actions: [assign({ codeVerified: true }), 'clearIntent', { type: 'stepSucceeded', params: { step: 'requesting_code' } }],
          },
          ...retryOrFail('requesting_code'),
        ],
      },
    },
    awaiting_code: {
      on: {
        CODE_SUBMITTED: 'verifying_code',
        RESEND_CODE: {
          guard: 'canResend',
          target: 'requesting_code',
          actions: assign(({ context, event }) => ({ codeMethod: event.method ?? context.codeMethod })),
        },
      },
    },
    verifying_code: {
      entry: { type: 'recordIntent', params: { step: 'verifying_code' } },
      invoke: {
        id: 'verifyCode',
        src: 'verifyCode',
        input: ({ context }) => ({ phoneNumberId: context.phoneNumberId!, intent: context.intent! }),
        onDone: {
          target: 'registering',
          actions: [assign({ codeVerified: true }), 'clearIntent', { type: 'stepSucceeded', params: { step: 'verifying_code' } }],
        },
        onError: [
          // No code in memory (e.g. restored after a crash and Meta says not verified yet): ask again.
          { guard: 'needsCode', target: 'awaiting_code', actions: 'clearIntent' },
          {
            guard: 'wrongCode',
            target: 'awaiting_code',
            actions: [assign(({ context }) => ({ codeAttempts: context.codeAttempts + 1 })), 'clearIntent'],
          },
          { guard: { type: 'retryable', params: { step: 'verifying_code' } }, target: 'waiting_retry', actions: { type: 'scheduleRetry', params: { step: 'verifying_code' } } },
          {
            target: 'failed',
            actions: [
              assign(({ context, event }) => ({
                codeAttempts: failureOf(event as { error?: unknown }).code === META.WRONG_CODE ? context.codeAttempts + 1 : context.codeAttempts,
              })),
              { type: 'recordFailure', params: { step: 'verifying_code' } },
            ],
          },
        ],
      },
    },
    registering: {
      initial: 'gate',
      states: {
        gate: {
          always: [
            {
              // Meta's 133016 block: nothing is sent until it has passed, override or not.
              guard: 'registerBlocked',
              target: '#migration.failed',
              actions: assign(({ context }) => ({
                failure: {
                  kind: 'internal' as const,
                  message: `Meta blocked register calls for ${context.input.phone} until ${new Date(registerBlockedUntil(context)!).toISOString()} (code 133016: more than 10 register calls in 72 h)`,
                  transient: false,
                  httpStatus: null,
                  code: META.REGISTER_LIMIT,
                  subcode: null,
                  fbtraceId: null,
                  retryAfterMs: null,
                  at: Date.now(),
                  jitter: 0,
                  step: 'registering' as const,
                  remedy: `Wait until ${new Date(registerBlockedUntil(context)!).toISOString()}, then \`waba-migrate resume ${context.input.id}\`; no register call is spent before then, even with --override-register-limit.`,
                },
              })),
            },
            {
              guard: 'registerExhausted',
              target: '#migration.failed',
              actions: assign(({ context }) => ({
                failure: {
                  kind: 'internal' as const,
                  message: `register was called ${registerCallsInWindow(context)} times in the last 72 h; Meta allows ${context.input.policy.registerLimit} and blocks the number for 72 h after that (code 133016)`,
                  transient: false,
                  httpStatus: null,
                  code: null,
                  subcode: null,
                  fbtraceId: null,
                  retryAfterMs: null,
                  at: Date.now(),
                  jitter: 0,
                  step: 'registering' as const,
                  remedy: 'Wait until 72 h after the oldest recorded register call, then `waba-migrate resume`.',
                },
              })),
            },
            { guard: 'registerReserveReached', target: 'held', actions: assign({ hold: 'register_limit' as const }) },
            { target: 'submitting' },
          ],
        },
        submitting: {
          entry: [
            assign({ hold: null }),
            { type: 'recordIntent', params: { step: 'registering' } },
            // Counted before sending: a call whose answer was lost still spent Meta's allowance.
            assign(({ context }) => ({ registerCalls: [...context.registerCalls, Date.now()] })),
          ],
          invoke: {
            id: 'register',
            src: 'register',
            input: ({ context }) => ({ phoneNumberId: context.phoneNumberId!, intent: context.intent!, ...(isOnprem(context) ? { onprem: true } : {}) }),
            onDone: [
              {
                guard: 'carryPending',
                target: '#migration.carrying_settings',
                actions: ['clearIntent', { type: 'stepSucceeded', params: { step: 'registering' } }],
              },
              {
                target: '#migration.confirming',
                actions: ['clearIntent', { type: 'stepSucceeded', params: { step: 'registering' } }],
              },
            ],
            onError: [
              {
                // Nothing was sent: give the allowance back and wait for the PIN.
                guard: 'needsPin',
                target: 'held',
                actions: [
                  assign(({ context }) => ({ hold: 'pin' as const, registerCalls: context.registerCalls.slice(0, -1) })),
                  'clearIntent',
                ],
              },
              {
                // 133016: the number is blocked for 72 h; record it so no later run spends a call.
                guard: 'registerLimitHit',
                target: '#migration.failed',
                actions: [
                  assign(({ event }) => ({ registerBlockedUntil: (failureOf(event as { error?: unknown }).at || Date.now()) + REGISTER_BLOCK_MS })),
                  { type: 'recordFailure', params: { step: 'registering' } },
                ],
              },
              {
                guard: { type: 'retryable', params: { step: 'registering' } },
                target: '#migration.waiting_retry',
                actions: { type: 'scheduleRetry', params: { step: 'registering' } },
              },
              { target: '#migration.failed', actions: { type: 'recordFailure', params: { step: 'registering' } } },
            ],
          },
        },
        held: {
          on: {
            PIN_PROVIDED: 'gate',
            OVERRIDE_REGISTER_LIMIT: {
              target: 'gate',
              actions: assign(({ event }) => ({ registerOverride: { by: event.by, at: event.at ?? new Date().toISOString() } })),
            },
          },
        },
      },
    },
    confirming: {
      invoke: {
        id: 'confirm',
        src: 'confirm',
        input: ({ context }) => ({ phoneNumberId: context.phoneNumberId!, input: context.input }),
        onDone: {
          target: 'completed',
          actions: [assign(({ event }) => ({ result: event.output })), { type: 'stepSucceeded', params: { step: 'confirming' } }],
        },
        onError: retryOrFail('confirming'),
      },
    },
    waiting_retry: {
      on: {
        RETRY: [
          { guard: { type: 'retryStepIs', params: { step: 'checking' } }, target: 'checking' },
          { guard: { type: 'retryStepIs', params: { step: 'creating' } }, target: 'creating' },
          { guard: { type: 'retryStepIs', params: { step: 'requesting_code' } }, target: 'requesting_code' },
          { guard: { type: 'retryStepIs', params: { step: 'verifying_code' } }, target: 'verifying_code' },
          { guard: { type: 'retryStepIs', params: { step: 'registering' } }, target: 'registering' },
          { guard: { type: 'retryStepIs', params: { step: 'snapshotting' } }, target: 'snapshotting' },
          { guard: { type: 'retryStepIs', params: { step: 'backing_up' } }, target: 'backing_up' },
          { guard: { type: 'retryStepIs', params: { step: 'carrying_settings' } }, target: 'carrying_settings' },
          { target: 'confirming' },
        ],
      },
    },
    failed: {
      // An operator may fix the cause and resume: the checks run again and the number's real
      // state at Meta decides where the flow picks up.
      on: { RETRY: { target: 'checking', actions: assign({ failure: null, attempts: {}, retry: null }) } },
    },
    completed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

export type MigrationMachine = typeof migrationMachine;


/** The externally visible state name of a snapshot value (`{registering: 'held'}` → `registering`). */
export function stateName(value: unknown): StateName {
  const top = typeof value === 'string' ? value : Object.keys(value as object)[0];
  if (top === 'route') return 'checking';
  if ((STATE_NAMES as readonly string[]).includes(top as string)) return top as StateName;
  throw new Error(`unknown state ${JSON.stringify(value)}`);
}
