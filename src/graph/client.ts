/**
 * The Graph API client: undici underneath, every response parsed with zod, every failure a
 * {@link GraphApiError}. It never retries on its own: a POST that may have been applied must be
 * reconciled with Meta's state by the engine before it is sent again, so retry decisions belong
 * to the machine, not to the transport.
 */
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { GraphApiError, parseRetryAfter } from './errors.js';
import {
  BusinessInfo,
  CreatedResponse,
  GraphErrorBody,
  PhoneNumber,
  PhoneNumbersPage,
  SubscribedAppsPage,
  SuccessResponse,
  WabaInfo,
  WabasPage,
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

  constructor(opts: GraphClientOptions) {
    if (!opts.token) throw new Error('access token is empty: set WABA_ACCESS_TOKEN or use --token-file');
    const url = assertSafeGraphUrl(opts.baseUrl ?? DEFAULT_GRAPH_URL);
    this.baseUrl = url.origin;
    this.apiVersion = opts.apiVersion ?? DEFAULT_API_VERSION;
    this.#token = opts.token;
    this.#dispatcher = opts.dispatcher;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#onCall = opts.onCall;
  }

  // ---- reads -------------------------------------------------------------------------------

  getBusiness(businessId: string): Promise<BusinessInfo> {
    return this.#call('GET', `/${businessId}`, { fields: 'id,name,verification_status' }, undefined, BusinessInfo);
  }

  getWaba(wabaId: string): Promise<WabaInfo> {
    return this.#call(
      'GET',
      `/${wabaId}`,
      { fields: 'id,name,account_review_status,primary_funding_id,owner_business_info' },
      undefined,
      WabaInfo,
    );
  }

  /** All WABA ids the business owns, following paging cursors to the end. */
  async listOwnedWabaIds(businessId: string): Promise<string[]> {
    const ids: string[] = [];
    // No `fields`: Meta's spec defines none for this edge; the default answer carries id and name.
    await this.#paginate(`/${businessId}/owned_whatsapp_business_accounts`, {}, WabasPage, (page) => {
      for (const w of page.data) ids.push(w.id);
    });
    return ids;
  }

  /** All phone numbers of a WABA, following paging cursors to the end. */
  async listPhoneNumbers(wabaId: string): Promise<PhoneNumber[]> {
    const out: PhoneNumber[] = [];
    await this.#paginate(
      `/${wabaId}/phone_numbers`,
      // Big pages: every page is one more request that can fail (the spec defines `limit` here).
      { fields: 'id,display_phone_number,verified_name,status,code_verification_status,quality_rating', limit: '100' },
      PhoneNumbersPage,
      (page) => {
        out.push(...page.data);
      },
    );
    return out;
  }

  getPhoneNumber(phoneNumberId: string): Promise<PhoneNumber> {
    return this.#call(
      'GET',
      `/${phoneNumberId}`,
      { fields: 'id,status,code_verification_status,display_phone_number,verified_name,quality_rating' },
      undefined,
      PhoneNumber,
    );
  }

  async countSubscribedApps(wabaId: string): Promise<number> {
    let n = 0;
    await this.#paginate(`/${wabaId}/subscribed_apps`, {}, SubscribedAppsPage, (p) => {
      n += p.data.length;
    });
    return n;
  }

  // ---- writes: one HTTP request each, never retried here -------------------------------------

  async createPhoneNumber(wabaId: string, body: CreateNumberBody): Promise<string> {
    const r = await this.#call('POST', `/${wabaId}/phone_numbers`, {}, body, CreatedResponse);
    return r.id;
  }

  async requestCode(phoneNumberId: string, body: { code_method: 'SMS' | 'VOICE'; language: string }): Promise<void> {
    await this.#call('POST', `/${phoneNumberId}/request_code`, {}, body, SuccessResponse);
  }

  async verifyCode(phoneNumberId: string, code: string): Promise<void> {
    await this.#call('POST', `/${phoneNumberId}/verify_code`, {}, { code }, SuccessResponse);
  }

  async register(phoneNumberId: string, pin: string): Promise<void> {
    await this.#call('POST', `/${phoneNumberId}/register`, {}, { messaging_product: 'whatsapp', pin }, SuccessResponse);
  }

  // ---- transport ------------------------------------------------------------------------------

  async #paginate<S extends z.ZodType<{ paging?: { cursors?: { after?: string }; next?: string } }>>(
    path: string,
    query: Record<string, string>,
    schema: S,
    onPage: (page: z.infer<S>) => void,
  ): Promise<void> {
    // Follow the `after` cursor rather than `paging.next`: `next` is an absolute URL on Meta's
    // host and would leave a sandbox or proxy the operator pointed us at.
    let after: string | undefined;
    for (let guard = 0; guard < 10_000; guard++) {
      const page = await this.#call('GET', path, after ? { ...query, after } : query, undefined, schema);
      onPage(page);
      const next = page.paging?.next ? page.paging.cursors?.after : undefined;
      if (!next || next === after) return;
      after = next;
    }
  }

  async #call<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    query: Record<string, string>,
    body: object | undefined,
    schema: S,
  ): Promise<z.infer<S>> {
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
          fbtraceId: null,
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
          // An AbortSignal rather than undici's headersTimeout/bodyTimeout: those run on undici's
          // coarse timer wheel (about a second) and would let a sub-second deadline slip.
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        status = res.statusCode;
        headers = res.headers;
        summary.status = status;
        text = await res.body.text();
      } catch (cause) {
        const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
        const err = fail(
          {
            kind: 'network',
            message: timedOut
              ? `${method} ${fullPath}: no answer within ${this.#timeoutMs} ms`
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
            fbtraceId: e.fbtrace_id ?? null,
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
      finish();
    }
  }
}
