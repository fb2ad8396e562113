/**
 * The Graph API client: undici underneath, every response parsed with zod, every failure a
 * {@link GraphApiError}. It never retries on its own: a POST that may have been applied must be
 * reconciled with Meta's state by the engine before it is sent again, so retry decisions belong
 * to the machine, not to the transport.
 */
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { GraphApiError, parseRetryAfter } from './errors.js';
import { RateBudget, THROTTLE_CODES, ThrottledError } from './rate-budget.js';
import {
  BusinessInfo,
  CreatedResponse,
  GraphErrorBody,
  PhoneNumber,
  PermissionsPage,
  PhoneNumbersPage,
  SubscribedAppsPage,
  SuccessResponse,
  WabaInfo,
  WabasPage,
  WebhookConfigurationView,
} from './schemas.js';

import { DEFAULT_API_VERSION, DEFAULT_GRAPH_URL } from './defaults.js';

export { DEFAULT_API_VERSION, DEFAULT_GRAPH_URL };

/** What the audit trail keeps of one HTTP exchange. Never the token, never a request body. */
export interface CallSummary {
  at: string;
  method: string;
  path: string;
  status: number | null;
  code: number | null;
  fbtraceId: string | null;
  durationMs: number;
  error?: string;
}

export interface GraphClientOptions {
  token: string;
  baseUrl?: string;
  apiVersion?: string;
  /** An undici Dispatcher (Agent, Pool, MockAgent…); the global one when absent. */
  dispatcher?: Dispatcher;
  /** Per-request deadline covering connect, headers and body. Default 30 s. */
  timeoutMs?: number;
  /** Called after every request, success or not. */
  onCall?: (call: CallSummary) => void;
  /** Once aborted, no new request starts and one in flight is abandoned. */
  signal?: AbortSignal;
  /** Meta's per-WABA rate limits, shared by every client of the process (see rate-budget.ts). */
  budget?: RateBudget;
  /** The WABA (budget key) a call on this path's first id counts against; default: that id. */
  rateScope?: (id: string) => string;
  /** Longest wait for a paused WABA before giving up with ThrottledError (nothing sent). */
  maxBudgetWaitMs?: number;
  /** Called when a call waits (a second or more) for Meta's rate limit on `key` to lift. */
  onBudgetWait?: (w: { key: string; until: number; code: number | null }) => void;
  /** Extra tries for an idempotent GET that failed transiently (never for POSTs). Default 2. */
  getRetries?: number;
}

/** The run was stopped (Ctrl-C, shutdown): thrown instead of starting a request. */
export class RequestAbortedError extends Error {
  override readonly name = 'RequestAbortedError';
}

const API_VERSION = /^v\d{1,3}\.\d{1,3}$/;
const GRAPH_ID = /^\d{1,32}$/;

/** Every id that goes into a URL path is digits only: a path is never built from an unchecked
 *  string (a stored `phoneNumberId` of "1/phone_numbers?x=" would otherwise aim a POST elsewhere). */
export function assertGraphId(id: unknown, what: string): string {
  if (typeof id !== 'string' || !GRAPH_ID.test(id)) throw new Error(`${what} ${JSON.stringify(id)} is not a Graph id (digits only); nothing was sent`);
  return id;
}

/** TLS failures: permanent (retrying cannot fix a certificate) and nothing was sent over them. */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function tlsCode(err: unknown): string | null {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && TLS_CODES.has(e.code)) return e.code;
  }
  return null;
}

export interface CreateNumberBody {
  cc: string;
  phone_number: string;
  migrate_phone_number: true;
  verified_name?: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Throws a plain Error (a usage error, not a Graph error) when the URL is not acceptable. */
export function assertSafeGraphUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`graph URL "${raw}" is not a URL: use e.g. https://graph.facebook.com`);
  }
  const loopback = LOOPBACK.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && loopback) return url;
  throw new Error(
    `graph URL "${raw}" must use https (plain http is allowed only for a loopback host such as 127.0.0.1): the access token would travel in clear text`,
  );
}

export class GraphClient {
  readonly baseUrl: string;
  readonly apiVersion: string;
  readonly #token: string;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #timeoutMs: number;
  readonly #onCall: ((c: CallSummary) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #budget: RateBudget | undefined;
  readonly #rateScope: (id: string) => string;
  readonly #maxBudgetWaitMs: number | undefined;
  readonly #onBudgetWait: GraphClientOptions['onBudgetWait'];
  readonly #getRetries: number;

  constructor(opts: GraphClientOptions) {
    if (!opts.token) throw new Error('access token is empty: set WABA_ACCESS_TOKEN or use --token-file');
    // A header value with CR/LF or other control characters would be refused by undici on every
    // call and look like a network error: refuse it here, once, clearly.
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(opts.token)) throw new Error('access token contains a line break or control character: copy the token again (WABA_ACCESS_TOKEN or --token-file, one line)');
    const url = assertSafeGraphUrl(opts.baseUrl ?? DEFAULT_GRAPH_URL);
    this.baseUrl = url.origin;
    this.apiVersion = opts.apiVersion ?? DEFAULT_API_VERSION;
    if (!API_VERSION.test(this.apiVersion)) throw new Error(`api-version ${JSON.stringify(this.apiVersion)} is not a Graph API version: use v<major>.<minor>, e.g. ${DEFAULT_API_VERSION}`);
    this.#signal = opts.signal;
    this.#token = opts.token;
    this.#dispatcher = opts.dispatcher;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#onCall = opts.onCall;
    this.#budget = opts.budget;
    this.#rateScope = opts.rateScope ?? ((id) => id);
    this.#maxBudgetWaitMs = opts.maxBudgetWaitMs;
    this.#onBudgetWait = opts.onBudgetWait;
    this.#getRetries = Math.max(0, Math.min(opts.getRetries ?? 2, 5));
  }

  // ---- reads -------------------------------------------------------------------------------

  /** The token's permissions (`GET /me/permissions`; a system-user token is a user token). */
  async getPermissions(): Promise<{ permission: string; status: string }[]> {
    return (await this.#call('GET', '/me/permissions', {}, undefined, PermissionsPage)).data;
  }

  getBusiness(businessId: string): Promise<BusinessInfo> {
    return this.#call('GET', `/${assertGraphId(businessId, 'business id')}`, { fields: 'id,name,verification_status' }, undefined, BusinessInfo);
  }

  getWaba(wabaId: string): Promise<WabaInfo> {
    return this.#call(
      'GET',
      `/${assertGraphId(wabaId, 'WABA id')}`,
      { fields: 'id,name,account_review_status,primary_funding_id,owner_business_info' },
      undefined,
      WabaInfo,
    );
  }

  /** All WABA ids the business owns, following paging cursors to the end. */
  async listOwnedWabaIds(businessId: string): Promise<string[]> {
    const ids: string[] = [];
    // No `fields`: Meta's spec defines none for this edge; the default answer carries id and name.
    await this.#paginate(`/${assertGraphId(businessId, 'business id')}/owned_whatsapp_business_accounts`, {}, WabasPage, (page) => {
      for (const w of page.data) ids.push(w.id);
    });
    return ids;
  }

  /** All phone numbers of a WABA, following paging cursors to the end. */
  async listPhoneNumbers(wabaId: string): Promise<PhoneNumber[]> {
    const out: PhoneNumber[] = [];
    await this.#paginate(
      `/${assertGraphId(wabaId, 'WABA id')}/phone_numbers`,
      // Big pages: every page is one more request that can fail (the spec defines `limit` here).
      // platform_type: ON_PREMISE / CLOUD_API / NOT_APPLICABLE (`check` shows it; the spec calls it host_platform, see docs/spec-divergences.md).
      { fields: 'id,display_phone_number,verified_name,status,code_verification_status,quality_rating,name_status,platform_type', limit: '100' },
      PhoneNumbersPage,
      (page) => {
        out.push(...page.data);
      },
    );
    return out;
  }

  /**
   * Whether a WABA lists a number, newest onboarded first (`sort=last_onboarded_time.desc`, in the
   * spec), stopping at the page that holds it: a number just registered is on the first page, so
   * confirming one number no longer pages through a WABA of thousands.
   */
  async wabaListsNumber(wabaId: string, phoneNumberId: string): Promise<boolean> {
    let found = false;
    await this.#paginate(
      `/${assertGraphId(wabaId, 'WABA id')}/phone_numbers`,
      // The spec makes id, display_phone_number and status required in every listed number.
      { fields: 'id,display_phone_number,status', sort: 'last_onboarded_time.desc', limit: '100' },
      PhoneNumbersPage,
      (page) => {
        found = page.data.some((n) => n.id === phoneNumberId);
        return found;
      },
    );
    return found;
  }

  getPhoneNumber(phoneNumberId: string): Promise<PhoneNumber> {
    return this.#call(
      'GET',
      `/${assertGraphId(phoneNumberId, 'phone_number_id')}`,
      { fields: 'id,status,code_verification_status,display_phone_number,verified_name,quality_rating' },
      undefined,
      PhoneNumber,
    );
  }

  async countSubscribedApps(wabaId: string): Promise<number> {
    let n = 0;
    await this.#paginate(`/${assertGraphId(wabaId, 'WABA id')}/subscribed_apps`, {}, SubscribedAppsPage, (p) => {
      n += p.data.length;
    });
    return n;
  }

  // ---- writes: one HTTP request each, never retried here -------------------------------------

  async createPhoneNumber(wabaId: string, body: CreateNumberBody): Promise<string> {
    const r = await this.#call('POST', `/${assertGraphId(wabaId, 'WABA id')}/phone_numbers`, {}, body, CreatedResponse);
    return r.id;
  }

  async requestCode(phoneNumberId: string, body: { code_method: 'SMS' | 'VOICE'; language: string }): Promise<void> {
    await this.#call('POST', `/${assertGraphId(phoneNumberId, 'phone_number_id')}/request_code`, {}, body, SuccessResponse);
  }

  async verifyCode(phoneNumberId: string, code: string): Promise<void> {
    await this.#call('POST', `/${assertGraphId(phoneNumberId, 'phone_number_id')}/verify_code`, {}, { code }, SuccessResponse);
  }

  async register(phoneNumberId: string, pin: string): Promise<void> {
    await this.#call('POST', `/${assertGraphId(phoneNumberId, 'phone_number_id')}/register`, {}, { messaging_product: 'whatsapp', pin }, SuccessResponse);
  }

  // ---- On-Premises → Cloud API (issue 12) ----------------------------------------------------

  /** The WABA's numbers with `platform_type` (ON_PREMISE, CLOUD_API, NOT_APPLICABLE). */
  async listPhoneNumbersWithPlatform(wabaId: string): Promise<PhoneNumber[]> {
    const out: PhoneNumber[] = [];
    await this.#paginate(
      `/${assertGraphId(wabaId, 'WABA id')}/phone_numbers`,
      { fields: 'id,display_phone_number,verified_name,status,code_verification_status,quality_rating,platform_type', limit: '100' },
      PhoneNumbersPage,
      (page) => {
        out.push(...page.data);
      },
    );
    return out;
  }

  getPhoneNumberPlatform(phoneNumberId: string): Promise<PhoneNumber> {
    return this.#call(
      'GET',
      `/${assertGraphId(phoneNumberId, 'phone_number_id')}`,
      { fields: 'id,status,platform_type,display_phone_number,verified_name,quality_rating' },
      undefined,
      PhoneNumber,
    );
  }

  /** Register with the On-Premises backup. Meta says it can take ~15 s: at least 60 s here. */
  async registerWithBackup(phoneNumberId: string, pin: string, backup: { data: string; password: string }): Promise<void> {
    await this.#call(
      'POST',
      `/${assertGraphId(phoneNumberId, 'phone_number_id')}/register`,
      {},
      { messaging_product: 'whatsapp', pin, backup },
      SuccessResponse,
      Math.max(this.#timeoutMs, 60_000),
    );
  }

  async setWebhookConfiguration(phoneNumberId: string, config: { override_callback_uri: string; verify_token?: string }): Promise<void> {
    await this.#call('POST', `/${assertGraphId(phoneNumberId, 'phone_number_id')}`, {}, { webhook_configuration: config }, SuccessResponse);
  }

  /** `POST /{phone-number-id}` with `whatsapp_business_api_data` (PhoneNumberStatusUpdateRequest →
   *  WhatsAppBusinessApiData): one or both of show_security_notifications, notify_user_change_number. */
  async setBusinessApiData(phoneNumberId: string, data: { show_security_notifications?: boolean; notify_user_change_number?: boolean }): Promise<void> {
    await this.#call('POST', `/${assertGraphId(phoneNumberId, 'phone_number_id')}`, {}, { whatsapp_business_api_data: data }, SuccessResponse);
  }

  /** The number's own callback override, or null. */
  async getWebhookOverride(phoneNumberId: string): Promise<string | null> {
    const r = await this.#call('GET', `/${assertGraphId(phoneNumberId, 'phone_number_id')}`, { fields: 'webhook_configuration' }, undefined, WebhookConfigurationView);
    return r.webhook_configuration?.phone_number ?? null;
  }

  // ---- transport ------------------------------------------------------------------------------

  async #paginate<S extends z.ZodType<{ paging?: { cursors?: { after?: string }; next?: string } }>>(
    path: string,
    query: Record<string, string>,
    schema: S,
    /** Returns true to stop early (what was looked for is found). */
    onPage: (page: z.infer<S>) => boolean | void,
  ): Promise<void> {
    // Follow the `after` cursor rather than `paging.next`: `next` is an absolute URL on Meta's
    // host and would leave a sandbox or proxy the operator pointed us at.
    let after: string | undefined;
    for (let guard = 0; guard < 10_000; guard++) {
      const page = await this.#call('GET', path, after ? { ...query, after } : query, undefined, schema);
      if (onPage(page) === true) return;
      const next = page.paging?.next ? page.paging.cursors?.after : undefined;
      if (!next || next === after) return;
      after = next;
    }
  }

  /**
   * One call, metered by the rate budget. An idempotent GET that fails transiently (network, 5xx,
   * a malformed answer) is tried again after a short jittered pause, at most `getRetries` times;
   * a throttling answer is never retried early (the budget pauses the WABA instead), and a POST is
   * never retried here: the machine reconciles with Meta's state first.
   */
  #closed = false;

  /** Ends this client's use (the run is over): no retry starts after this, and no new request. */
  close(): void {
    this.#closed = true;
  }

  async #call<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string>,
    body: object | undefined,
    schema: S,
    timeoutMs: number = this.#timeoutMs,
  ): Promise<z.infer<S>> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new RequestAbortedError(`${method} ${path} not sent: the run is over`);
      try {
        return await this.#metered(method, path, query, body, schema, timeoutMs);
      } catch (e) {
        const retry =
          method === 'GET' &&
          attempt < this.#getRetries &&
          e instanceof GraphApiError &&
          e.transient &&
          !(e instanceof ThrottledError) &&
          !(e.code !== null && THROTTLE_CODES.has(e.code)) &&
          !this.#signal?.aborted &&
          !this.#closed;
        if (!retry) throw e;
        // 50-150 ms, then 100-300 ms: short, so a step does not give up on a blip.
        await new Promise((r) => setTimeout(r, (50 + Math.random() * 100) * 2 ** attempt));
      }
    }
  }

  async #metered<S extends z.ZodType>(method: 'GET' | 'POST', path: string, query: Record<string, string>, body: object | undefined, schema: S, timeoutMs: number): Promise<z.infer<S>> {
    const budget = this.#budget;
    if (!budget) return this.#once(method, path, query, body, schema, undefined, timeoutMs);
    const key = this.#rateScope(path.split('/')[1] ?? '');
    const release = await budget.acquire(key, {
      ...(this.#maxBudgetWaitMs !== undefined ? { maxWaitMs: this.#maxBudgetWaitMs } : {}),
      ...(this.#onBudgetWait ? { onWait: this.#onBudgetWait } : {}),
      ...(this.#signal ? { signal: this.#signal } : {}),
      method,
      path: `/${this.apiVersion}${path}`,
    });
    let seen: Record<string, string | string[] | undefined> = {};
    try {
      return await this.#once(
        method,
        path,
        query,
        body,
        schema,
        (headers) => {
          seen = headers;
          budget.observe(headers);
        },
        timeoutMs,
      );
    } catch (e) {
      if (e instanceof GraphApiError && e.code !== null && THROTTLE_CODES.has(e.code)) {
        // Meta's time when it gave one (even "0": retry now), else the budget's default pause.
        const given = seen['retry-after'] !== undefined || /estimated_time_to_regain_access/.test(String(seen['x-business-use-case-usage'] ?? ''));
        budget.throttled(key, e.code, given ? (e.retryAfterMs ?? 0) : null);
      }
      throw e;
    } finally {
      release();
    }
  }

  async #once<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string>,
    body: object | undefined,
    schema: S,
    onHeaders?: (h: Record<string, string | string[] | undefined>) => void,
    timeoutMs: number = this.#timeoutMs,
  ): Promise<z.infer<S>> {
    if (this.#signal?.aborted) throw new RequestAbortedError(`${method} ${path} not sent: the run was stopped`);
    const qs = new URLSearchParams(query).toString();
    const fullPath = `/${this.apiVersion}${path}`;
    const url = `${this.baseUrl}${fullPath}${qs ? `?${qs}` : ''}`;
    const started = performance.now();
    const summary: CallSummary = {
      at: new Date().toISOString(),
      method,
      path: fullPath,
      status: null,
      code: null,
      fbtraceId: null,
      durationMs: 0,
    };
    const fail = (fields: Partial<ConstructorParameters<typeof GraphApiError>[0]> & { kind: GraphApiError['kind']; message: string }, cause?: unknown) => {
      const err = new GraphApiError(
        {
          method,
          path: fullPath,
          httpStatus: summary.status,
          code: null,
          subcode: null,
          type: null,
          fbtraceId: summary.fbtraceId,
          isTransientFlag: null,
          userTitle: null,
          userMessage: null,
          retryAfterMs: null,
          ...fields,
        },
        { cause },
      );
      summary.code = err.code;
      summary.fbtraceId = err.fbtraceId;
      summary.error = err.message;
      return err;
    };
    const finish = () => {
      summary.durationMs = Math.round((performance.now() - started) * 10) / 10;
      this.#onCall?.(summary);
    };

    // An AbortSignal rather than undici's headersTimeout/bodyTimeout: those run on undici's coarse
    // timer wheel (about a second) and would let a sub-second deadline slip. One controller and
    // one timer per call, both ended with the call: AbortSignal.timeout()'s timer outlives the call
    // by the whole timeout, and AbortSignal.any() registers the signal with the run's for good.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    const outer = this.#signal;
    const forward = () => deadline.abort(outer?.reason);
    outer?.addEventListener('abort', forward, { once: true });

    // Every exit, success or error, reports the call exactly once.
    try {
      let status: number;
      let headers: Record<string, string | string[] | undefined>;
      let text: string;
      try {
        const res = await request(url, {
          method,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept: 'application/json',
            ...(body ? { 'content-type': 'application/json' } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
          dispatcher: this.#dispatcher,
          signal: deadline.signal,
        });
        status = res.statusCode;
        headers = res.headers;
        // Meta names every answer in x-fb-trace-id (an error body's fbtrace_id wins below).
        const trace = headers['x-fb-trace-id'];
        if (typeof trace === 'string' && trace) summary.fbtraceId = trace;
        onHeaders?.(headers);
        summary.status = status;
        text = await res.body.text();
      } catch (cause) {
        const tls = tlsCode(cause);
        if (tls)
          throw fail(
            { kind: 'tls', message: `${method} ${fullPath}: the TLS certificate of ${this.baseUrl} was refused (${tls}); nothing was sent, and nothing will be sent over this connection` },
            cause,
          );
        const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
        const err = fail(
          {
            kind: 'network',
            message: timedOut
              ? `${method} ${fullPath}: no answer within ${timeoutMs} ms`
              : `${method} ${fullPath}: ${cause instanceof Error ? cause.message : String(cause)}`,
          },
          cause,
        );
        throw err;
      }

      let json: unknown = undefined;
      let jsonOk = false;
      try {
        json = JSON.parse(text);
        jsonOk = true;
      } catch {
        // handled below: a non-JSON body is never a success
      }

      if (status < 200 || status >= 300) {
        const parsed = jsonOk ? GraphErrorBody.safeParse(json) : undefined;
        const retryAfterMs = parseRetryAfter(headers);
        if (parsed?.success) {
          const e = parsed.data.error;
          const err = fail({
            kind: 'graph',
            message: e.message,
            code: e.code,
            subcode: e.error_subcode ?? null,
            type: e.type ?? null,
            fbtraceId: e.fbtrace_id ?? summary.fbtraceId,
            isTransientFlag: e.is_transient ?? null,
            userTitle: e.error_user_title ?? null,
            userMessage: e.error_user_msg ?? null,
            retryAfterMs,
          });
          throw err;
        }
        const err = fail({ kind: 'graph', message: `HTTP ${status} without a Graph error body`, retryAfterMs });
        throw err;
      }

      if (!jsonOk) {
        const err = fail({ kind: 'bad_response', message: `${method} ${fullPath}: HTTP ${status} with a body that is not JSON` });
        throw err;
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? issue.path.join('.') : 'body';
        const err = fail({
          kind: 'bad_response',
          message: `${method} ${fullPath}: HTTP ${status} but the answer is not a success (${where}: ${issue?.message ?? 'unexpected shape'})`,
        });
        throw err;
      }
      return parsed.data;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', forward);
      finish();
    }
  }
}
