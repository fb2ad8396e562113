/** The sandbox speaks the way Meta's own examples do: JSON, form-encoded and query parameters. */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, GraphSandbox } from '../../src/sandbox/index.js';

let sb: GraphSandbox;
afterEach(async () => {
  await sb?.stop();
});

async function post(url: string, init: { body?: string; type?: string; auth?: boolean }) {
  const r = await request(url, {
    method: 'POST',
    headers: { ...(init.auth === false ? {} : { authorization: `Bearer ${FIXTURES.token}` }), ...(init.type ? { 'content-type': init.type } : {}) },
    body: init.body,
  });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, any> };
}

describe('sandbox', () => {
  it('accepts JSON, form-encoded and query parameters, and a token as access_token', async () => {
    sb = new GraphSandbox();
    const base = `${await sb.start()}/v23.0`;
    const created = await post(`${base}/${FIXTURES.destWabaId}/phone_numbers`, { body: 'cc=1&phone_number=6315551000&migrate_phone_number=true', type: 'application/x-www-form-urlencoded' });
    expect(created).toMatchObject({ status: 200, json: { id: expect.stringMatching(/^\d+$/) } });
    const id = created.json.id as string;
    const q = await post(`${base}/${id}/request_code?code_method=SMS&language=en_US`, {});
    expect(q).toEqual({ status: 200, json: { success: true } });
    const code = sb.lastCodeFor(id)!.code;
    const j = await post(`${base}/${id}/verify_code?access_token=${FIXTURES.token}`, { body: JSON.stringify({ code }), type: 'application/json', auth: false });
    expect(j.json.success).toBe(true);
    expect(sb.counters['POST request_code']).toMatchObject({ calls: 1, applied: 1 });
  });

  it('requires a bearer token (190 otherwise) and rejects bad parameters with code 100', async () => {
    sb = new GraphSandbox();
    const base = `${await sb.start()}/v23.0`;
    const none = await post(`${base}/${FIXTURES.destWabaId}/phone_numbers`, { body: '{}', type: 'application/json', auth: false });
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ code: 190, type: 'OAuthException', fbtrace_id: expect.any(String) });
    const bad = await post(`${base}/${FIXTURES.destWabaId}/phone_numbers`, { body: JSON.stringify({ cc: 'x', phone_number: '1' }), type: 'application/json' });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 100 } } });
    const unknown = await post(`${base}/999/request_code`, { body: '{}', type: 'application/json' });
    expect(unknown.json.error).toMatchObject({ code: 100, error_subcode: 33 });
  });

  it('a lost response still applies the change', async () => {
    sb = new GraphSandbox({ faults: { lostResponse: 1 } });
    const base = `${await sb.start()}/v23.0`;
    await expect(post(`${base}/${FIXTURES.destWabaId}/phone_numbers`, { body: JSON.stringify({ cc: '1', phone_number: '6315551000', migrate_phone_number: true }), type: 'application/json' })).rejects.toThrow();
    await sb.idle();
    expect(sb.created.get('16315551000')).toBe(1);
    expect(sb.findByPhone('+16315551000')).toBeDefined();
  });
});
