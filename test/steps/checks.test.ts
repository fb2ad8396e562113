/** Each prerequisite check's pass, fail and unknown paths, with the remedy a person acts on. */
import { afterEach, describe, expect, it } from 'vitest';
import { GraphClient } from '../../src/graph/client.js';
import { buildInput } from '../../src/runner/engine.js';
import { runChecks } from '../../src/steps/checks.js';
import { FIXTURES, world, type World } from '../helpers/env.js';
import type { CheckName } from '../../machines/types.js';

let w: World;
afterEach(async () => {
  await w?.close();
});

const input = (businessId: string | null = null, confirm: string[] = []) =>
  buildInput({ phone: FIXTURES.phone, sourceWabaId: FIXTURES.sourceWabaId, destWabaId: FIXTURES.destWabaId, businessId, confirm }, 'ops');

async function check(mutate: (w: World) => void, businessId: string | null = null, confirm: string[] = []) {
  w = await world();
  mutate(w);
  const client = new GraphClient({ token: FIXTURES.token, baseUrl: w.url });
  const i = input(businessId, confirm);
  const out = await runChecks(client, i, i.confirmations);
  return Object.fromEntries(out.checks.map((c) => [c.name, c])) as Record<CheckName, (typeof out.checks)[number]>;
}

describe('prerequisite checks', () => {
  it('all pass on a healthy setup (two-step confirmed)', async () => {
    const c = await check(() => {}, null, ['two_step_disabled']);
    for (const r of Object.values(c)) expect(r.status, r.name).toBe('pass');
    expect(c.two_step_disabled.confirmedBy).toBe('ops');
    expect(c.two_step_disabled.detail).toMatch(/Confirmed by ops at 20/);
  });

  it.each([
    ['same_business', 'unknown', (w: World) => { w.sandbox.wabas.get(FIXTURES.destWabaId)!.owner = 'gone'; w.sandbox.wabas.get(FIXTURES.sourceWabaId)!.owner = 'gone'; }, null, /business ID could not be determined/, /--business <id>/],
    ['same_business', 'fail', (w: World) => { w.sandbox.wabas.get(FIXTURES.sourceWabaId)!.owner = '100000000000077'; }, null, /does not own WABA 200000000000001/, /same Business Manager/],
    ['business_verified', 'unknown', (w: World) => { w.sandbox.businesses.get(FIXTURES.businessId)!.verification_status = undefined as never; }, null, /did not report verification_status/, /--confirm business_verified/],
    ['business_verified', 'fail', (w: World) => { w.sandbox.businesses.get(FIXTURES.businessId)!.verification_status = 'rejected'; }, null, /"rejected"/, /business verification/],
    ['business_verified', 'pass', (w: World) => { w.sandbox.businesses.get(FIXTURES.businessId)!.verification_status = 'VERIFIED'; }, null, /is verified/, /^$/],
    ['wabas_approved', 'unknown', (w: World) => { w.sandbox.wabas.get(FIXTURES.sourceWabaId)!.account_review_status = undefined as never; }, null, /did not report account_review_status/, /--confirm wabas_approved/],
    ['wabas_approved', 'fail', (w: World) => { w.sandbox.wabas.get(FIXTURES.sourceWabaId)!.account_review_status = 'REJECTED'; }, null, /source WABA 200000000000001 review status is REJECTED/, /APPROVED/],
    ['payment_method', 'unknown', (w: World) => { w.sandbox.wabas.get(FIXTURES.destWabaId)!.primary_funding_id = undefined as never; }, null, /did not report primary_funding_id/, /--confirm payment_method/],
    ['payment_method', 'fail', (w: World) => { w.sandbox.wabas.get(FIXTURES.sourceWabaId)!.primary_funding_id = ''; }, null, /source WABA 200000000000001 has no payment method/, /Add a payment method/],
    ['two_step_disabled', 'unknown', () => {}, null, /can neither read nor disable/, /--confirm two_step_disabled/],
    ['same_business', 'unknown', (w: World) => { w.sandbox.businesses.delete(FIXTURES.businessId); }, FIXTURES.businessId, /Could not list the WABAs owned by business .* Graph said: .* \(code 100, fbtrace_id A/, /--confirm same_business/],
  ] as const)('%s → %s', async (name, status, mutate, businessId, detail, remedy) => {
    const c = await check(mutate, businessId);
    expect(c[name].status).toBe(status);
    expect(c[name].detail).toMatch(detail);
    expect(c[name].remedy).toMatch(remedy);
  });

  it('an operator confirms an unknown check, never a failed one', async () => {
    const c = await check((w) => { w.sandbox.wabas.get(FIXTURES.destWabaId)!.primary_funding_id = undefined as never; w.sandbox.wabas.get(FIXTURES.sourceWabaId)!.account_review_status = 'PENDING'; }, null, ['payment_method', 'wabas_approved']);
    expect(c.payment_method).toMatchObject({ status: 'pass', confirmedBy: 'ops' });
    expect(c.wabas_approved.status).toBe('fail');
  });
});
