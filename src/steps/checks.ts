/**
 * Step `checking`: the five prerequisites, plus a look-up of the number in the destination WABA.
 * GET-only, so it is safe to run any number of times (every resume of a blocked migration does).
 */
import { fromPromise } from 'xstate';
import { applyConfirmations, type ChecksInput } from '../../machines/migration.js';
import { META, type CheckResult, type ChecksOutput, type MigrationInput } from '../../machines/types.js';
import { isGraphApiError, type GraphApiError } from '../graph/errors.js';
import type { GraphClient } from '../graph/client.js';
import type { WabaInfo } from '../graph/schemas.js';
import { findNumber, step, withDeps, type DepsSource } from './shared.js';
import type { StepDeps } from './deps.js';

type Read<T> = { ok: true; value: T } | { ok: false; error: GraphApiError };

/** A permanent error on one check makes that check `unknown`; transient ones and a bad token
 *  abort the whole step (retry later / fail with the token remedy). */
async function attempt<T>(fn: () => Promise<T>): Promise<Read<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (!isGraphApiError(e) || e.transient || e.code === META.BAD_TOKEN) throw e;
    return { ok: false, error: e };
  }
}

const why = (e: GraphApiError) => `Graph said: ${e.message} (code ${e.code ?? '-'}, fbtrace_id ${e.fbtraceId ?? '-'}).`;

export async function runChecks(client: GraphClient, input: MigrationInput, confirmations: ChecksInput['confirmations']): Promise<ChecksOutput> {
  const [source, dest, numbers] = await Promise.all([
    attempt(() => client.getWaba(input.sourceWabaId)),
    attempt(() => client.getWaba(input.destWabaId)),
    attempt(() => client.listPhoneNumbers(input.destWabaId)),
  ]);
  const businessId =
    input.businessId ?? (dest.ok ? dest.value.owner_business_info?.id : undefined) ?? (source.ok ? source.value.owner_business_info?.id : undefined) ?? null;

  const [owned, business] = businessId
    ? await Promise.all([attempt(() => client.listOwnedWabaIds(businessId)), attempt(() => client.getBusiness(businessId))])
    : [null, null];

  const checks: CheckResult[] = [
    sameBusiness(input, businessId, owned, source, dest),
    businessVerified(businessId, business),
    perWaba(input, source, dest, 'wabas_approved'),
    perWaba(input, source, dest, 'payment_method'),
    {
      name: 'two_step_disabled',
      status: 'unknown',
      detail: 'The Cloud API can neither read nor disable two-step verification on a number.',
      remedy:
        'Turn off two-step verification for this number (WhatsApp Manager > Phone numbers > Two-step verification, or ask the current BSP), then confirm it: --confirm two_step_disabled.',
    },
  ];
  const existing = numbers.ok ? findNumber(numbers.value, input) : null;
  return {
    businessId,
    checks: applyConfirmations(checks, confirmations),
    existing: existing
      ? { id: existing.id, status: existing.status ?? null, codeVerificationStatus: existing.code_verification_status ?? null }
      : null,
  };
}

function sameBusiness(
  input: MigrationInput,
  businessId: string | null,
  owned: Read<string[]> | null,
  source: Read<WabaInfo>,
  dest: Read<WabaInfo>,
): CheckResult {
  const name = 'same_business' as const;
  if (!businessId || !owned)
    return {
      name,
      status: 'unknown',
      detail: 'The business ID could not be determined (no --business and the destination WABA does not show owner_business_info).',
      remedy: 'Pass the Meta Business Manager ID that owns both WABAs with --business <id>.',
    };
  if (owned.ok) {
    const missing = [input.sourceWabaId, input.destWabaId].filter((w) => !owned.value.includes(w));
    if (missing.length === 0)
      return { name, status: 'pass', detail: `Both WABAs are owned by business ${businessId}.`, remedy: '' };
    return {
      name,
      status: 'fail',
      detail: `Business ${businessId} does not own WABA ${missing.join(' and ')}.`,
      remedy: 'A number can only move between WABAs of the same Business Manager: create the destination WABA under the business that owns the source WABA.',
    };
  }
  // Listing owned WABAs may be refused (permissions); fall back to each WABA's owner.
  const owners = [source, dest].map((r) => (r.ok ? (r.value.owner_business_info?.id ?? null) : null));
  if (owners.every((o) => o === businessId))
    return { name, status: 'pass', detail: `Both WABAs report owner business ${businessId}.`, remedy: '' };
  if (owners.some((o) => o !== null && o !== businessId))
    return {
      name,
      status: 'fail',
      detail: `The WABAs report different owners (source ${owners[0] ?? '?'}, destination ${owners[1] ?? '?'}).`,
      remedy: 'Move the number only between WABAs owned by the same Business Manager.',
    };
  return {
    name,
    status: 'unknown',
    detail: `Could not list the WABAs owned by business ${businessId}. ${why(owned.error)}`,
    remedy: 'Give the system user access to the business (business_management), or confirm this check with --confirm same_business.',
  };
}

function businessVerified(businessId: string | null, business: Read<{ verification_status?: string | undefined }> | null): CheckResult {
  const name = 'business_verified' as const;
  if (!businessId || !business)
    return { name, status: 'unknown', detail: 'No business ID to look up.', remedy: 'Pass --business <id>.' };
  if (!business.ok)
    return {
      name,
      status: 'unknown',
      detail: `Could not read the verification status of business ${businessId}. ${why(business.error)}`,
      remedy: 'Check it in Business Manager > Security Centre, then confirm with --confirm business_verified.',
    };
  const status = business.value.verification_status;
  if (!status)
    return {
      name,
      status: 'unknown',
      detail: `Business ${businessId} did not report verification_status.`,
      remedy: 'Check it in Business Manager > Security Centre, then confirm with --confirm business_verified.',
    };
  // Meta's reference shows lowercase ('verified'); some answers are uppercase.
  if (status.toLowerCase() === 'verified') return { name, status: 'pass', detail: `Business ${businessId} is verified.`, remedy: '' };
  return {
    name,
    status: 'fail',
    detail: `Business ${businessId} verification status is "${status}".`,
    remedy: 'Complete business verification in Business Manager > Security Centre; Meta must approve it before a number can migrate.',
  };
}

function perWaba(input: MigrationInput, source: Read<WabaInfo>, dest: Read<WabaInfo>, name: 'wabas_approved' | 'payment_method'): CheckResult {
  const sides = [
    ['source', input.sourceWabaId, source],
    ['destination', input.destWabaId, dest],
  ] as const;
  const bad: string[] = [];
  const unknown: string[] = [];
  for (const [label, id, r] of sides) {
    if (!r.ok) {
      unknown.push(`${label} WABA ${id} could not be read. ${why(r.error)}`);
      continue;
    }
    if (name === 'wabas_approved') {
      const s = r.value.account_review_status;
      if (!s) unknown.push(`${label} WABA ${id} did not report account_review_status.`);
      else if (s.toUpperCase() !== 'APPROVED') bad.push(`${label} WABA ${id} review status is ${s}`);
    } else {
      const f = r.value.primary_funding_id;
      if (f === undefined) unknown.push(`${label} WABA ${id} did not report primary_funding_id.`);
      else if (!f) bad.push(`${label} WABA ${id} has no payment method`);
    }
  }
  const remedy =
    name === 'wabas_approved'
      ? 'Both WABAs must be APPROVED: wait for Meta’s review or fix what it rejected in WhatsApp Manager.'
      : 'Add a payment method to both WABAs in WhatsApp Manager > Account tools > Payment methods.';
  if (bad.length) return { name, status: 'fail', detail: `${bad.join('; ')}.`, remedy };
  if (unknown.length) return { name, status: 'unknown', detail: unknown.join(' '), remedy: `${remedy} Or confirm with --confirm ${name}.` };
  return {
    name,
    status: 'pass',
    detail: name === 'wabas_approved' ? 'Both WABAs are APPROVED.' : 'Both WABAs have a payment method.',
    remedy: '',
  };
}

export const checksActor = (source: DepsSource<StepDeps>) =>
  fromPromise<ChecksOutput, ChecksInput>(withDeps(source, (deps) => ({ input }) => step(() => runChecks(deps.client, input.input, input.confirmations))));
