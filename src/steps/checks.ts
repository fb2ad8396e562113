/**
 * Step `checking`: the five prerequisites, plus a look-up of the number in the destination WABA.
 * GET-only, so it is safe to run any number of times (every resume of a blocked migration does).
 */
import { fromPromise } from 'xstate';
import { applyConfirmations, type ChecksInput } from '../../machines/migration.js';
import type { CheckResult, ChecksOutput, MigrationInput } from '../../machines/types.js';
import type { GraphClient } from '../graph/client.js';
import type { PhoneNumber, WabaInfo } from '../graph/schemas.js';
import { runOnPremChecks } from './checks-onprem.js';
import { attempt, findNumber, step, why, withDeps, type DepsSource, type Read } from './shared.js';
import type { StepDeps } from './deps.js';

/** The checks that belong to a (business, source, destination) group, not to a number. */
export interface GroupCheckResult {
  businessId: string | null;
  /** same_business, business_verified, wabas_approved, payment_method (before confirmations). */
  checks: CheckResult[];
  /**
   * The destination WABA's numbers when the group was checked (memory only, one batch run): a
   * number not there then and started in this run cannot be there unless this run put it there,
   * and the create step reconciles that case itself. Saves one listing per number.
   */
  destNumbers?: PhoneNumber[];
  /** The source WABA's numbers then (the old phone_number_id of each number, for notifications). */
  sourceNumbers?: PhoneNumber[];
}

/** A group result shared by every number of the group (batch runs): `ref` names it in history. */
export interface GroupChecks {
  ref: string;
  sourceWabaId: string;
  destWabaId: string;
  /** The business the group was asked for (null: discovered from the WABAs). */
  requestedBusinessId: string | null;
  result: GroupCheckResult;
}

type GroupKey = Pick<MigrationInput, 'businessId' | 'sourceWabaId' | 'destWabaId'>;

/** The four WABA/business prerequisites: the same for every number of the group. GET-only. */
export async function runGroupChecks(client: GraphClient, input: GroupKey): Promise<GroupCheckResult> {
  const [source, dest] = await Promise.all([attempt(() => client.getWaba(input.sourceWabaId)), attempt(() => client.getWaba(input.destWabaId))]);
  const businessId =
    input.businessId ?? (dest.ok ? dest.value.owner_business_info?.id : undefined) ?? (source.ok ? source.value.owner_business_info?.id : undefined) ?? null;
  const [owned, business] = businessId
    ? await Promise.all([attempt(() => client.listOwnedWabaIds(businessId)), attempt(() => client.getBusiness(businessId))])
    : [null, null];
  return {
    businessId,
    checks: [
      sameBusiness(input, businessId, owned, source, dest),
      businessVerified(businessId, business),
      perWaba(input, source, dest, 'wabas_approved'),
      perWaba(input, source, dest, 'payment_method'),
    ],
  };
}

const TWO_STEP: CheckResult = {
  name: 'two_step_disabled',
  status: 'unknown',
  detail: 'The Cloud API can neither read nor disable two-step verification on a number.',
  remedy:
    'Turn off two-step verification for this number (WhatsApp Manager > Phone numbers > Two-step verification, or ask the current BSP), then confirm it: --confirm two_step_disabled.',
};

/**
 * All five prerequisites plus a look-up of the number in the destination WABA. With `group`
 * (a shared result for exactly this group), only the per-number work is done here.
 */
export async function runChecks(client: GraphClient, input: MigrationInput, confirmations: ChecksInput['confirmations'], group?: GroupChecks): Promise<ChecksOutput & { groupCheck?: string }> {
  if (input.from === 'onprem') return runOnPremChecks(client, input, confirmations);
  const shared =
    group && group.sourceWabaId === input.sourceWabaId && group.destWabaId === input.destWabaId && group.requestedBusinessId === input.businessId ? group : undefined;
  const snapshot = shared?.result.destNumbers;
  const sourceSnapshot = shared?.result.sourceNumbers;
  const [groupResult, numbers, sourceNumbers] = await Promise.all([
    shared ? Promise.resolve(shared.result) : runGroupChecks(client, input),
    snapshot ? Promise.resolve({ ok: true as const, value: snapshot }) : attempt(() => client.listPhoneNumbers(input.destWabaId)),
    // The number's current (old) id, for the `migration.completed` notification. A source WABA
    // we cannot list (another BSP's, say) only leaves it unknown.
    sourceSnapshot ? Promise.resolve({ ok: true as const, value: sourceSnapshot }) : attempt(() => client.listPhoneNumbers(input.sourceWabaId)),
  ]);
  const existing = numbers.ok ? findNumber(numbers.value, input) : null;
  const inSource = sourceNumbers.ok ? findNumber(sourceNumbers.value, input) : null;
  return {
    businessId: groupResult.businessId,
    sourcePhoneNumberId: inSource?.id ?? null,
    sourceNumber: sourceNumbers.ok
      ? inSource
        ? {
            found: true,
            id: inSource.id,
            status: inSource.status ?? null,
            nameStatus: (inSource as { name_status?: string }).name_status ?? null,
            codeVerificationStatus: inSource.code_verification_status ?? null,
            platform: inSource.platform_type ?? inSource.host_platform ?? null,
          }
        : { found: false }
      : { found: null, error: why(sourceNumbers.error) },
    checks: applyConfirmations([...groupResult.checks, TWO_STEP], confirmations),
    existing: existing
      ? { id: existing.id, status: existing.status ?? null, codeVerificationStatus: existing.code_verification_status ?? null }
      : null,
    ...(shared ? { groupCheck: shared.ref } : {}),
  };
}

function sameBusiness(
  input: GroupKey,
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
  if (owners[0] !== null && owners[0] === owners[1] && owners[0] !== businessId)
    return {
      name,
      status: 'fail',
      detail: `Both WABAs are owned by business ${owners[0]}, not by business ${businessId}.`,
      remedy: `Pass the owning business: --business ${owners[0]} (or leave --business out).`,
    };
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

function perWaba(input: GroupKey, source: Read<WabaInfo>, dest: Read<WabaInfo>, name: 'wabas_approved' | 'payment_method'): CheckResult {
  const sides = [
    ['source', input.sourceWabaId, source],
    ['destination', input.destWabaId, dest],
  ] as const;
  const bad: string[] = [];
  const unknown: string[] = [];
  let missing = false;
  for (const [label, id, r] of sides) {
    if (!r.ok) {
      // Code 100 / subcode 33: no such object (or invisible to this token). A fact, not an
      // uncertainty: it fails, and a confirmation cannot turn it green.
      if (r.error.code === 100 && r.error.subcode === 33) {
        missing = true;
        bad.push(name === 'wabas_approved' ? `${label} WABA ${id} does not exist or this token cannot see it. ${why(r.error)}` : `${label} WABA ${id} does not exist (see wabas_approved)`);
      } else if (name === 'wabas_approved') unknown.push(`${label} WABA ${id} could not be read. ${why(r.error)}`);
      // The same Graph error is shown once, in wabas_approved.
      else unknown.push(`${label} WABA ${id} could not be read (see wabas_approved).`);
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
  if (missing)
    return {
      name,
      status: 'fail',
      detail: `${bad.join('; ')}.`,
      remedy: 'Check the WABA id (WhatsApp Manager > Account tools > WhatsApp accounts) and that the system user is assigned to it. This cannot be confirmed away.',
    };
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
  fromPromise<ChecksOutput, ChecksInput>(withDeps(source, (deps) => ({ input }) => step(() => runChecks(deps.client, input.input, input.confirmations, deps.groupChecks))));
