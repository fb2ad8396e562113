/**
 * The Graph requests of the On-Premises → Cloud API path (issue 12), and the sandbox's answers to
 * them, validated against Meta's OpenAPI description like test/spec/openapi.test.ts does for the
 * WABA → WABA path: register with `backup`, `POST /{phone-number-id}` with webhook_configuration,
 * `POST /{phone-number-id}` with whatsapp_business_api_data (--carry-settings),
 * `GET ?fields=webhook_configuration` and `platform_type`, and the 133005 error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as jsyaml from 'js-yaml';
import { OpenAPIBackend } from 'openapi-backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, type Exchange } from '../../src/sandbox/index.js';
import { onpremWorld, type OnPremWorld } from '../onprem/helpers.js';

// WABA_OPENAPI_SPEC points at the spec from a worktree that is not beside ../shared.
const SPEC = process.env.WABA_OPENAPI_SPEC ?? resolve(import.meta.dirname, '../../../shared/reference/meta-business-messaging-api_v23.0.yaml');
const present = existsSync(SPEC);

/** Same known divergences as the WABA path (docs/spec-divergences.md). */
const KNOWN: { op: string; where: 'request' | 'response'; match: RegExp }[] = [
  { op: 'getWhatsAppBusinessAccountPhoneNumbers', where: 'response', match: /\/status.*must be equal to one of the allowed values/ },
];

describe.skipIf(!present)('Meta OpenAPI conformance: On-Premises path', () => {
  let api: OpenAPIBackend;
  const worlds: OnPremWorld[] = [];
  let exchanges: Exchange[] = [];

  beforeAll(async () => {
    api = new OpenAPIBackend({ definition: jsyaml.load(readFileSync(SPEC, 'utf8')) as never, quick: true, ajvOpts: { strict: false, validateFormats: false } });
    await api.init();
    const happy = await onpremWorld('onprem_happy', { record: true });
    worlds.push(happy);
    const v = await happy.engine().start(happy.startRequest({ pin: FIXTURES.onpremPin, carryWebhook: true, carrySettings: true }));
    expect(v.state).toBe('completed');
    const wrong = await onpremWorld('onprem_wrong_pin', { record: true });
    worlds.push(wrong);
    expect((await wrong.engine().start(wrong.startRequest({ pin: FIXTURES.onpremPin }))).failure?.code).toBe(133005);
    exchanges = [...happy.graph.exchanges, ...wrong.graph.exchanges];
  });
  afterAll(async () => {
    for (const w of worlds) await w.close();
  });

  const operationOf = (x: Exchange) => api.matchOperation({ method: x.method.toLowerCase(), path: x.path, headers: x.headers, query: x.query });
  const unexpected = (op: string, where: 'request' | 'response', errors: { instancePath?: string; message?: string }[] | null | undefined) =>
    (errors ?? []).map((e) => `${e.instancePath ?? ''} ${e.message ?? ''}`).filter((m) => !KNOWN.some((k) => k.op === op && k.where === where && k.match.test(m)));

  it('the new requests are made and each is an operation of the spec', () => {
    const register = exchanges.filter((x) => x.method === 'POST' && x.path.endsWith('/register'));
    expect(register.length).toBe(2);
    for (const r of register) expect(r.body).toMatchObject({ messaging_product: 'whatsapp', pin: expect.any(String), backup: { data: expect.any(String), password: expect.any(String) } });
    expect(exchanges.some((x) => x.method === 'POST' && /\/v23\.0\/\d+$/.test(x.path) && (x.body as Record<string, unknown>).webhook_configuration)).toBe(true);
    expect(exchanges.some((x) => x.method === 'GET' && x.query.fields === 'webhook_configuration')).toBe(true);
    const apiData = exchanges.filter((x) => x.method === 'POST' && /\/v23\.0\/\d+$/.test(x.path) && (x.body as Record<string, unknown>).whatsapp_business_api_data);
    expect(apiData.map((x) => [x.status, x.body])).toEqual([[200, { whatsapp_business_api_data: { show_security_notifications: true, notify_user_change_number: false } }]]);
    expect(exchanges.some((x) => x.method === 'GET' && (x.query.fields ?? '').includes('platform_type'))).toBe(true);
    for (const x of exchanges) expect(operationOf(x)?.operationId, `${x.method} ${x.path}`).toBeTruthy();
  });

  it('client requests validate', () => {
    const problems = exchanges.flatMap((x) => {
      const op = operationOf(x)!;
      const result = api.validateRequest({ method: x.method.toLowerCase(), path: x.path, headers: x.headers, query: x.query, body: x.body as never }, op);
      return unexpected(op.operationId!, 'request', result.errors as never).map((m) => `${x.method} ${x.path}: ${m}`);
    });
    expect([...new Set(problems)]).toEqual([]);
  });

  it('whatsapp_business_api_data is checked against the spec (a string where a boolean belongs fails)', () => {
    const x = exchanges.find((e) => e.method === 'POST' && (e.body as Record<string, unknown>).whatsapp_business_api_data)!;
    const op = operationOf(x)!;
    const bad = api.validateRequest({ method: 'post', path: x.path, headers: x.headers, query: x.query, body: { whatsapp_business_api_data: { show_security_notifications: 'yes' } } as never }, op);
    expect(bad.valid).toBe(false);
    expect(JSON.stringify(bad.errors)).toMatch(/show_security_notifications/);
  });

  it('sandbox responses validate, the 133005 error included', () => {
    expect(exchanges.some((x) => x.status === 400 && (x.response as { error?: { code?: number } }).error?.code === 133005)).toBe(true);
    const problems = exchanges.flatMap((x) => {
      const op = operationOf(x)!;
      const result = api.validateResponse(x.response, op, x.status);
      return unexpected(op.operationId!, 'response', result.errors as never).map((m) => `${x.status} ${x.method} ${x.path}: ${m}`);
    });
    expect([...new Set(problems)]).toEqual([]);
  });
});
