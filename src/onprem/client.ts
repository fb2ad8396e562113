/**
 * A client for the On-Premises API (the WhatsApp Business API client a customer runs itself):
 * admin login, application settings and the settings backup. undici + zod, like the Graph client.
 * The base URL must be https, or plain http on a loopback host only (the admin password and the
 * backup travel over it). Errors are plain objects the machine reads (see toFailure).
 */
import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { assertSafeGraphUrl, type CallSummary } from '../graph/client.js';

export type OnPremAuth = { user: string; password: string } | { token: string };

export interface OnPremClientOptions {
  baseUrl: string;
  auth: OnPremAuth | null;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  /** Called after each request (the audit history keeps them beside the Graph calls). */
  onCall?: (call: CallSummary) => void;
}

/** Why an On-Premises call failed, in the shape the machine keeps (kind, transient, message…). */
export class OnPremApiError extends Error {
  override readonly name = 'OnPremApiError';
  readonly kind: 'network' | 'bad_response' | 'internal';
  readonly transient: boolean;
  readonly httpStatus: number | null;
  readonly code: number | null;
  constructor(fields: { kind: OnPremApiError['kind']; transient: boolean; httpStatus: number | null; code: number | null; message: string }) {
    super(fields.message);
    this.kind = fields.kind;
    this.transient = fields.transient;
    this.httpStatus = fields.httpStatus;
    this.code = fields.code;
  }
}

const ErrorsBody = z.looseObject({ errors: z.array(z.looseObject({ code: z.number().optional(), title: z.string().optional(), details: z.string().optional() })) });
const LoginBody = z.looseObject({ users: z.array(z.looseObject({ token: z.string().min(1) })).min(1) });
const SettingsBody = z.looseObject({ settings: z.looseObject({ application: z.record(z.string(), z.unknown()) }) });
const BackupBody = z.looseObject({ settings: z.looseObject({ data: z.string().min(1) }) });

export function assertSafeOnPremUrl(raw: string): URL {
  try {
    return assertSafeGraphUrl(raw);
  } catch {
    throw new Error(`On-Premises URL "${raw}" must be an https URL (plain http only on a loopback host such as 127.0.0.1): the admin password and the backup would travel in clear text`);
  }
}

export class OnPremClient {
  readonly baseUrl: string;
  readonly #auth: OnPremAuth | null;
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #onCall: ((c: CallSummary) => void) | undefined;
  #token: string | null;

  constructor(opts: OnPremClientOptions) {
    this.baseUrl = assertSafeOnPremUrl(opts.baseUrl).toString().replace(/\/$/, '');
    this.#auth = opts.auth;
    this.#token = opts.auth && 'token' in opts.auth ? opts.auth.token : null;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#dispatcher = opts.dispatcher;
    this.#onCall = opts.onCall;
  }

  async getApplicationSettings(): Promise<Record<string, unknown>> {
    return (await this.#authed('GET', '/v1/settings/application', undefined, SettingsBody)).settings.application;
  }

  /** `POST /v1/settings/backup {password}` → the encrypted blob (kept in memory only by callers). */
  async backup(password: string): Promise<string> {
    return (await this.#authed('POST', '/v1/settings/backup', { password }, BackupBody)).settings.data;
  }

  async #login(): Promise<string> {
    if (this.#token) return this.#token;
    const a = this.#auth;
    if (!a || !('user' in a))
      throw new OnPremApiError({ kind: 'internal', transient: false, httpStatus: null, code: null, message: 'On-Premises admin credentials are needed: set WABA_ONPREM_USER and WABA_ONPREM_PASSWORD, or WABA_ONPREM_TOKEN' });
    const basic = Buffer.from(`${a.user}:${a.password}`).toString('base64');
    const r = await this.#send('POST', '/v1/users/login', undefined, LoginBody, `Basic ${basic}`);
    this.#token = r.users[0]!.token;
    return this.#token;
  }

  async #authed<S extends z.ZodType>(method: 'GET' | 'POST', path: string, body: object | undefined, schema: S): Promise<z.infer<S>> {
    try {
      return await this.#send(method, path, body, schema, `Bearer ${await this.#login()}`);
    } catch (e) {
      // An expired login token: log in again once (only possible with a user and password).
      if (e instanceof OnPremApiError && e.httpStatus === 401 && this.#auth && 'user' in this.#auth && this.#token) {
        this.#token = null;
        return this.#send(method, path, body, schema, `Bearer ${await this.#login()}`);
      }
      throw e;
    }
  }

  async #send<S extends z.ZodType>(method: 'GET' | 'POST', path: string, body: object | undefined, schema: S, authorization: string): Promise<z.infer<S>> {
    const started = performance.now();
    const summary: CallSummary = { at: new Date().toISOString(), method, path: `on-premises ${path}`, status: null, code: null, fbtraceId: null, durationMs: 0 };
    try {
      return await this.#sendInner(method, path, body, schema, authorization, summary);
    } catch (e) {
      if (e instanceof OnPremApiError) {
        summary.code = e.code;
        summary.error = e.message;
      }
      throw e;
    } finally {
      summary.durationMs = Math.round((performance.now() - started) * 10) / 10;
      this.#onCall?.(summary);
    }
  }

  async #sendInner<S extends z.ZodType>(method: 'GET' | 'POST', path: string, body: object | undefined, schema: S, authorization: string, summary: CallSummary): Promise<z.infer<S>> {
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        dispatcher: this.#dispatcher,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = res.statusCode;
      summary.status = status;
      text = await res.body.text();
    } catch (cause) {
      throw new OnPremApiError({ kind: 'network', transient: true, httpStatus: null, code: null, message: `On-Premises ${method} ${path}: no answer (${(cause as Error).message})` });
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* handled below */
    }
    if (status >= 200 && status < 300) {
      const parsed = schema.safeParse(json);
      if (parsed.success) return parsed.data;
      throw new OnPremApiError({ kind: 'bad_response', transient: true, httpStatus: status, code: null, message: `On-Premises ${method} ${path}: unexpected answer` });
    }
    const err = ErrorsBody.safeParse(json);
    const first = err.success ? err.data.errors[0] : undefined;
    const why = first ? `${first.title ?? 'error'}${first.details ? `: ${first.details}` : ''} (code ${first.code ?? '-'})` : `HTTP ${status}`;
    throw new OnPremApiError({
      kind: 'bad_response',
      // 5xx and 429 may pass; but a disconnected client (503 after the Cloud side took the number) does not.
      transient: (status >= 500 || status === 429) && first?.code !== 1011,
      httpStatus: status,
      code: first?.code ?? null,
      message: `On-Premises ${method} ${path}: ${why}`,
    });
  }
}
