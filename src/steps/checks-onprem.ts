/**
 * Step `checking` on the On-Premises path (issue 12): the number stays in its WABA, so the checks
 * are about that one WABA, the number's platform and what the move needs. GET-only.
 */
import { applyConfirmations, type ChecksInput } from '../../machines/migration.js';
import type { CheckResult, ChecksOutput, MigrationInput } from '../../machines/types.js';
import type { GraphClient } from '../graph/client.js';
import { attempt, findNumber, why } from './shared.js';

export async function runOnPremChecks(client: GraphClient, input: MigrationInput, confirmations: ChecksInput['confirmations']): Promise<ChecksOutput> {
  const wabaId = input.destWabaId;
  const [waba, numbers, apps] = await Promise.all([
    attempt(() => client.getWaba(wabaId)),
    attempt(() => client.listPhoneNumbersWithPlatform(wabaId)),
    attempt(() => client.countSubscribedApps(wabaId)),
  ]);
  const businessId = input.businessId ?? (waba.ok ? waba.value.owner_business_info?.id : undefined) ?? null;
  const business = businessId ? await attempt(() => client.getBusiness(businessId)) : null;
  const found = numbers.ok ? findNumber(numbers.value, input) : null;
  const platform = (found?.platform_type ?? found?.host_platform)?.toUpperCase() ?? null;

  const checks: CheckResult[] = [];
  // business_verified
  if (!business) checks.push({ name: 'business_verified', status: 'unknown', detail: 'No business ID to look up.', remedy: 'Pass --business <id>.' });
  else if (!business.ok)
    checks.push({ name: 'business_verified', status: 'unknown', detail: `Could not read business ${businessId}. ${why(business.error)}`, remedy: 'Check it in Business Manager > Security Centre, then --confirm business_verified.' });
  else if ((business.value.verification_status ?? '').toLowerCase() === 'verified')
    checks.push({ name: 'business_verified', status: 'pass', detail: `Business ${businessId} is verified.`, remedy: '' });
  else
    checks.push({ name: 'business_verified', status: 'fail', detail: `Business ${businessId} verification status is "${business.value.verification_status ?? '?'}".`, remedy: 'Complete business verification in Business Manager > Security Centre.' });
  // wabas_approved, payment_method: the one WABA
  if (!waba.ok) {
    for (const name of ['wabas_approved', 'payment_method'] as const)
      checks.push({ name, status: 'unknown', detail: `WABA ${wabaId} could not be read. ${why(waba.error)}`, remedy: `Give the system user access to WABA ${wabaId}, or --confirm ${name}.` });
  } else {
    const review = waba.value.account_review_status;
    checks.push(
      review?.toUpperCase() === 'APPROVED'
        ? { name: 'wabas_approved', status: 'pass', detail: `WABA ${wabaId} is APPROVED.`, remedy: '' }
        : { name: 'wabas_approved', status: review ? 'fail' : 'unknown', detail: `WABA ${wabaId} review status is ${review ?? 'not reported'}.`, remedy: 'The WABA must be APPROVED: wait for Meta’s review or fix what it rejected.' },
    );
    const funding = waba.value.primary_funding_id;
    checks.push(
      funding
        ? { name: 'payment_method', status: 'pass', detail: `WABA ${wabaId} has a payment method.`, remedy: '' }
        : { name: 'payment_method', status: funding === undefined ? 'unknown' : 'fail', detail: `WABA ${wabaId} has no payment method.`, remedy: 'Add a payment method in WhatsApp Manager > Account tools > Payment methods.' },
    );
  }
  // number_on_premise: in this WABA, and ON_PREMISE (CLOUD_API: nothing to move, adopted)
  if (!numbers.ok)
    checks.push({ name: 'number_on_premise', status: 'unknown', detail: `Could not list the numbers of WABA ${wabaId}. ${why(numbers.error)}`, remedy: 'Give the system user access to the WABA, then resume.' });
  else if (!found)
    checks.push({ name: 'number_on_premise', status: 'fail', detail: `${input.phone} is not a number of WABA ${wabaId}.`, remedy: 'Pass the WABA the number belongs to with --waba <id> (WhatsApp Manager > Phone numbers).' });
  else if (platform === 'ON_PREMISE' || platform === 'CLOUD_API')
    checks.push({ name: 'number_on_premise', status: 'pass', detail: platform === 'CLOUD_API' ? `${input.phone} is already on the Cloud API: nothing to move.` : `${input.phone} is on the On-Premises API in WABA ${wabaId}.`, remedy: '' });
  else
    checks.push({ name: 'number_on_premise', status: 'fail', detail: `${input.phone} platform_type is ${found.platform_type ?? 'not reported'}, not ON_PREMISE.`, remedy: 'Only a number registered on an On-Premises client can take this path; for a number at another BSP use the WABA → WABA path (--from waba).' });
  // app_subscribed: else webhooks are lost after the move
  if (!apps.ok)
    checks.push({ name: 'app_subscribed', status: 'unknown', detail: `Could not read subscribed_apps of WABA ${wabaId}. ${why(apps.error)}`, remedy: 'Check that your app is subscribed to the WABA, then --confirm app_subscribed.' });
  else if (apps.value > 0) checks.push({ name: 'app_subscribed', status: 'pass', detail: `${apps.value} app(s) subscribed to WABA ${wabaId}.`, remedy: '' });
  else
    checks.push({ name: 'app_subscribed', status: 'fail', detail: `No app is subscribed to WABA ${wabaId}: after the move the number’s webhooks would go nowhere.`, remedy: `Subscribe your app: POST /${wabaId}/subscribed_apps (Meta also requires it before a webhook override), then resume.` });
  checks.push({
    name: 'pin_known',
    status: 'unknown',
    detail: 'register must be given the number’s current two-step PIN; a wrong one leaves the On-Premises client down and disconnected.',
    remedy: 'Make sure you know the number’s current two-step verification PIN (WABA_REGISTER_PIN), then confirm it: --confirm pin_known.',
  });
  return {
    businessId,
    // The number keeps its id on this path: the "previous" id is the same one.
    sourcePhoneNumberId: found?.id ?? null,
    // What `check` shows of the number (the number stays in this WABA).
    sourceNumber: found
      ? { found: true, id: found.id, status: found.status ?? null, codeVerificationStatus: found.code_verification_status ?? null, platform: found.platform_type ?? found.host_platform ?? null }
      : { found: false },
    checks: applyConfirmations(checks, confirmations),
    existing: found
      ? { id: found.id, status: found.status ?? null, codeVerificationStatus: found.code_verification_status ?? null, platformType: found.platform_type ?? null }
      : null,
  };
}
