/** The Graph client: zod-parsed answers, one typed error, transient vs permanent. */
import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GraphClient, type CallSummary } from '../../src/graph/client.js';
import { classifyTransient, GraphApiError, parseRetryAfter } from '../../src/graph/errors.js';
import { FIXTURES, world, type World } from '../helpers/env.js';

let w: World | undefined;
let server: Server | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** A one-route server answering whatever a test needs. */
async function answering(status: number, body: string, headers: Record<string, string> = {}): Promise<string> {
  server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('GraphClient', () => {
  it('follows paging cursors to the end and reports each call', async () => {
    w = await world({ pageSize: 1 });
    const calls: CallSummary[] = [];
    const c = new GraphClient({ token: FIXTURES.token, baseUrl: w.url, onCall: (x) => calls.push(x) });
    const owned = await c.listOwnedWabaIds(FIXTURES.businessId);
    expect(owned).toEqual(['200000000000010', '200000000000011', '200000000000001', '200000000000002']);
    expect(calls).toHaveLength(4);
    expect(calls[0]).toMatchObject({ method: 'GET', path: `/v23.0/${FIXTURES.businessId}/owned_whatsapp_business_accounts`, status: 200, code: null });
  });

  it('parses Meta’s error body into a GraphApiError', async () => {
    w = await world();
    const c = new GraphClient({ token: 'nope', baseUrl: w.url });
    const e = (await c.getWaba(FIXTURES.destWabaId).catch((x: unknown) => x)) as GraphApiError;
    expect(e).toBeInstanceOf(GraphApiError);
    expect(e).toMatchObject({ kind: 'graph', httpStatus: 401, code: 190, subcode: 463, type: 'OAuthException', transient: false });
    expect(e.fbtraceId).toMatch(/^A[\w-]{10,}/);
  });

  it('a 200 with success:false is an error, not a success', async () => {
    const url = await answering(200, '{"success": false}');
    const e = (await new GraphClient({ token: 't', baseUrl: url }).verifyCode('1', '123456').catch((x: unknown) => x)) as GraphApiError;
    expect(e).toMatchObject({ kind: 'bad_response', httpStatus: 200 });
    expect(e.message).toMatch(/not a success \(success: /);
  });

  it('a 200 whose body is not JSON is an error', async () => {
    const url = await answering(200, '<html>proxy says hi</html>');
    const e = (await new GraphClient({ token: 't', baseUrl: url }).register('1', '123456').catch((x: unknown) => x)) as GraphApiError;
    expect(e).toMatchObject({ kind: 'bad_response' });
    expect(e.message).toMatch(/not JSON/);
  });

  it('a create answer without an id is an error', async () => {
    const url = await answering(200, '{"success": true}');
    await expect(new GraphClient({ token: 't', baseUrl: url }).createPhoneNumber('1', { cc: '1', phone_number: '2', migrate_phone_number: true })).rejects.toMatchObject({ kind: 'bad_response' });
  });

  it('honours Retry-After and X-Business-Use-Case-Usage on a rate limit', async () => {
    const usage = JSON.stringify({ '123': [{ type: 'whatsapp_business_management', call_count: 100, estimated_time_to_regain_access: 3 }] });
    const url = await answering(429, JSON.stringify({ error: { message: 'rate', type: 'OAuthException', code: 80007, fbtrace_id: 'Axyz' } }), { 'retry-after': '20', 'x-business-use-case-usage': usage });
    const e = (await new GraphClient({ token: 't', baseUrl: url }).getWaba('1').catch((x: unknown) => x)) as GraphApiError;
    expect(e).toMatchObject({ code: 80007, transient: true, retryAfterMs: 180_000, fbtraceId: 'Axyz' });
  });

  it('times out and reports a transient network error', async () => {
    w = await world({ faults: { timeout: 1 }, timeoutDelayMs: 500 });
    const e = (await new GraphClient({ token: FIXTURES.token, baseUrl: w.url, timeoutMs: 100 }).getWaba('1').catch((x: unknown) => x)) as GraphApiError;
    expect(e).toMatchObject({ kind: 'network', transient: true, httpStatus: null });
    expect(e.message).toMatch(/no answer within 100 ms/);
  });

  it('a call leaves no timer and no listener on the run’s signal behind; the run’s abort still stops a call in flight', async () => {
    w = await world();
    const run = new AbortController();
    const c = new GraphClient({ token: FIXTURES.token, baseUrl: w.url, signal: run.signal, timeoutMs: 60_000 });
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    for (let i = 0; i < 20; i++) await c.getWaba(FIXTURES.destWabaId);
    expect(timers()).toBe(before);
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0);
    // A server that never answers: the run's abort ends the call at once.
    server = createServer(() => {});
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const hanging = new GraphClient({ token: 't', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, signal: run.signal, timeoutMs: 60_000 });
    const t0 = performance.now();
    const pending = hanging.getWaba('1').catch((x: unknown) => x);
    await new Promise((r) => setTimeout(r, 50));
    run.abort(new Error('stopped by SIGTERM'));
    const e = (await pending) as GraphApiError;
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(e).toMatchObject({ kind: 'network' });
    expect(e.message).toMatch(/stopped by SIGTERM/);
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0);
    server.closeAllConnections();
  });

  it('never re-sends a POST on its own: a reset create reaches the server exactly once', async () => {
    w = await world({ faults: { reset: 1 } });
    const c = new GraphClient({ token: FIXTURES.token, baseUrl: w.url });
    await expect(c.createPhoneNumber(FIXTURES.destWabaId, { cc: '1', phone_number: '6315551000', migrate_phone_number: true })).rejects.toMatchObject({ kind: 'network' });
    await w.sandbox.idle();
    expect(w.sandbox.counters['POST phone_numbers']!.calls).toBe(1);
  });

  it('a dropped connection is a transient network error', async () => {
    w = await world({ faults: { reset: 1 } });
    await expect(new GraphClient({ token: FIXTURES.token, baseUrl: w.url }).getWaba('1')).rejects.toMatchObject({ kind: 'network', transient: true });
  });
});

describe('classification', () => {
  it.each([
    [{ kind: 'graph', httpStatus: 400, code: 100, isTransientFlag: null }, false],
    [{ kind: 'graph', httpStatus: 400, code: 133016, isTransientFlag: null }, false],
    [{ kind: 'graph', httpStatus: 400, code: 133005, isTransientFlag: null }, false],
    [{ kind: 'graph', httpStatus: 403, code: 10, isTransientFlag: null }, false],
    [{ kind: 'graph', httpStatus: 403, code: 200, isTransientFlag: null }, false],
    [{ kind: 'graph', httpStatus: 401, code: 190, isTransientFlag: null }, false],
    [{ kind: 'graph', httpStatus: 400, code: 4, isTransientFlag: null }, true],
    [{ kind: 'graph', httpStatus: 400, code: 80007, isTransientFlag: null }, true],
    [{ kind: 'graph', httpStatus: 400, code: 130429, isTransientFlag: null }, true],
    [{ kind: 'graph', httpStatus: 503, code: 133004, isTransientFlag: null }, true],
    [{ kind: 'graph', httpStatus: 400, code: 100, isTransientFlag: true }, true],
    [{ kind: 'graph', httpStatus: 502, code: null, isTransientFlag: null }, true],
    [{ kind: 'network', httpStatus: null, code: null, isTransientFlag: null }, true],
  ] as const)('%j → transient %s', (f, expected) => {
    expect(classifyTransient(f)).toBe(expected);
  });

  it('parses Retry-After as seconds or a date', () => {
    expect(parseRetryAfter({ 'retry-after': '7' })).toBe(7000);
    expect(parseRetryAfter({ 'retry-after': new Date(Date.UTC(2030, 0, 1)).toUTCString() }, Date.UTC(2029, 11, 31, 23, 59))).toBe(60_000);
    expect(parseRetryAfter({ 'x-business-use-case-usage': 'not json' })).toBeNull();
  });
});
