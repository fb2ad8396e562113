/**
 * A Graph API simulator: a real HTTP server on 127.0.0.1 that answers the calls a migration
 * makes, with bodies and errors shaped as in Meta's OpenAPI description. Businesses, WABAs and
 * numbers live in memory; codes are "sent" to an outbox; every endpoint is counted; faults and
 * latency can be injected (seeded, so a run can be replayed).
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback.js';
import { randomBytes } from 'node:crypto';
import { parsePhoneNumberWithError } from 'libphonenumber-js/max';
import { SandboxRateLimiter, type RateLimitOptions } from './rate-limiter.js';

export { SandboxRateLimiter, DEFAULT_RATE_LIMIT, type RateLimitOptions } from './rate-limiter.js';

export const SCENARIOS = [
  'happy',
  'unverified_business',
  'waba_pending_review',
  'no_payment_method',
  'wrong_code',
  'expired_code',
  'register_limit',
  'no_webhooks',
  // On-Premises → Cloud API (issue 12): an ON_PREMISE number in the source WABA.
  'onprem_happy',
  'onprem_wrong_pin',
  'onprem_no_subscribed_app',
  'rate_limited',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface FaultRates {
  /** HTTP 500 with a transient Graph error (code 2). */
  serverError?: number;
  /** HTTP 429 with code 4 or 80007 and X-Business-Use-Case-Usage. */
  rateLimit?: number;
  /** Connection reset before anything is done. */
  reset?: number;
  /** Apply the request, then answer only after `timeoutDelayMs` (past the client's timeout). */
  timeout?: number;
  /** Apply the request (a POST's change included), then drop the connection without answering. */
  lostResponse?: number;
}

export interface SandboxOptions {
  port?: number;
  token?: string;
  scenario?: ScenarioName;
  faults?: FaultRates;
  timeoutDelayMs?: number;
  /** Added to every answer. */
  latencyMs?: number;
  seed?: number;
  /** How long a sent code stays valid. */
  codeTtlMs?: number;
  /** Page size for list endpoints (small by default so clients must follow cursors). */
  pageSize?: number;
  /** Keep every exchange in `exchanges`. */
  record?: boolean;
  /**
   * Meta's per-WABA rate limit (see rate-limiter.ts): `true` for the scaled defaults, or the calls
   * per window. Off unless given or the scenario is `rate_limited`.
   */
  rateLimit?: boolean | Partial<RateLimitOptions>;
}

/** One request and its answer, kept when `record` is on (for conformance tests). */
export interface Exchange {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  status: number;
  response: unknown;
}

export interface OutboxEntry {
  at: string;
  phoneNumberId: string;
  phone: string;
  code: string;
  method: 'SMS' | 'VOICE';
  language: string;
}

interface Business {
  id: string;
  name: string;
  verification_status: string;
}
interface Waba {
  id: string;
  name: string;
  owner: string;
  account_review_status: string;
  primary_funding_id: string;
  apps: { id: string; name: string }[];
}
interface NumberRec {
  id: string;
  wabaId: string;
  cc: string;
  national: string;
  verified_name: string;
  status: string;
  code_verification_status: 'VERIFIED' | 'UNVERIFIED';
  quality_rating: string;
  code: { value: string; expiresAt: number } | null;
  registerCalls: number[];
  failNextVerify: boolean;
  /** ON_PREMISE, CLOUD_API or NOT_APPLICABLE (Meta's values); set on every number. */
  platform_type: string;
  /** The number's existing two-step PIN, when it has one: register must give it (else 133005). */
  twoStepPin: string | null;
  /** The per-number webhook override (`POST /{phone-number-id}` webhook_configuration). */
  webhook: { override_callback_uri: string; verify_token: string | null } | null;
  /** What `POST /{phone-number-id}` whatsapp_business_api_data set (absent: never set). */
  apiData?: { show_security_notifications?: boolean; notify_user_change_number?: boolean };
}

export interface EndpointCounter {
  calls: number;
  /** Requests whose effect was applied (a 2xx, including one whose answer was then lost). */
  applied: number;
  errors: number;
  faults: number;
}

export const FIXTURES = {
  token: 'sandbox-token',
  businessId: '100000000000001',
  sourceWabaId: '200000000000001',
  destWabaId: '200000000000002',
  phone: '+16315551000',
  /** The On-Premises number of the onprem_* scenarios (in the source WABA; wa_id of Meta's example). */
  onpremPhone: '+16315551019',
  /** Its two-step PIN (onprem_wrong_pin gives it another one, so this one is then wrong). */
  onpremPin: '246810',
} as const;

/** mulberry32: a tiny seeded PRNG so fault runs replay exactly (no library needed for 6 lines). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class HttpError {
  constructor(
    readonly status: number,
    readonly body: { message: string; type: string; code: number; error_subcode?: number; is_transient?: boolean; error_user_title?: string; error_user_msg?: string },
    readonly headers: Record<string, string> = {},
  ) {}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class GraphSandbox {
  readonly events = new EventEmitter();
  readonly outbox: OutboxEntry[] = [];
  readonly counters: Record<string, EndpointCounter> = {};
  readonly businesses = new Map<string, Business>();
  readonly wabas = new Map<string, Waba>();
  readonly numbers = new Map<string, NumberRec>();
  /** Per phone (digits): how many creates and registers took effect. */
  readonly created = new Map<string, number>();
  readonly registered = new Map<string, number>();
  readonly exchanges: Exchange[] = [];
  /**
   * Checks an On-Premises backup given to register (set by OnPremSandbox.link): the phone digits
   * the backup belongs to, or null when data/password do not match a backup it made.
   */
  backupVerifier: ((data: string, password: string) => string | null) | null = null;
  options: Required<Omit<SandboxOptions, 'faults' | 'rateLimit'>> & { faults: Required<FaultRates> };
  /** The rate limiter, when enabled (option `rateLimit` or scenario `rate_limited`). */
  readonly limiter: SandboxRateLimiter | null;
  #server: LoopbackServer | null = null;
  #rand: () => number;
  #idSeq = 0;

  constructor(options: SandboxOptions = {}) {
    this.options = {
      port: options.port ?? 0,
      token: options.token ?? FIXTURES.token,
      scenario: options.scenario ?? 'happy',
      timeoutDelayMs: options.timeoutDelayMs ?? 35_000,
      latencyMs: options.latencyMs ?? 0,
      seed: options.seed ?? 1,
      codeTtlMs: options.codeTtlMs ?? 10 * 60_000,
      pageSize: options.pageSize ?? 2,
      record: options.record ?? false,
      faults: { serverError: 0, rateLimit: 0, reset: 0, timeout: 0, lostResponse: 0, ...options.faults },
    };
    this.#rand = prng(this.options.seed);
    const rl = options.rateLimit ?? (this.options.scenario === 'rate_limited' ? true : false);
    this.limiter = rl ? new SandboxRateLimiter(rl === true ? {} : rl) : null;
    this.#seed();
  }

  #loseNext = new Set<string>();

  /** The next request to this edge (e.g. `request_code`) is applied and its answer lost. */
  loseNextAnswer(edge: string): void {
    this.#loseNext.add(edge);
  }

  #failNext = new Map<string, { status: number; retryAfterSec: number | null; times: number }>();

  /**
   * The next `times` requests to `key` (as in `counters`, e.g. `POST phone_numbers`) answer
   * `status` with a transient Graph error (code 2) before anything is done, with `Retry-After`
   * when given: a deterministic temporary outage.
   */
  failNext(key: string, status: number, opts: { retryAfterSec?: number; times?: number } = {}): void {
    this.#failNext.set(key, { status, retryAfterSec: opts.retryAfterSec ?? null, times: opts.times ?? 1 });
  }

  /** Replaces the fault rates (e.g. to finish a run cleanly). */
  setFaults(faults: FaultRates): void {
    this.options.faults = { serverError: 0, rateLimit: 0, reset: 0, timeout: 0, lostResponse: 0, ...faults };
  }

  #seed(): void {
    const s = this.options.scenario;
    this.businesses.set(FIXTURES.businessId, {
      id: FIXTURES.businessId,
      name: 'Jasper’s Market',
      verification_status: s === 'unverified_business' ? 'pending' : 'verified',
    });
    const waba = (id: string, name: string, extra: Partial<Waba> = {}): Waba => ({
      id,
      name,
      owner: FIXTURES.businessId,
      account_review_status: 'APPROVED',
      primary_funding_id: `9${id.slice(1)}`,
      apps: [{ id: '300000000000001', name: 'Jasper’s integration' }],
      ...extra,
    });
    // Filler WABAs first, so the owned list needs more than one page to reach ours.
    this.wabas.set('200000000000010', waba('200000000000010', 'Old marketing'));
    this.wabas.set('200000000000011', waba('200000000000011', 'Support'));
    this.wabas.set(FIXTURES.sourceWabaId, waba(FIXTURES.sourceWabaId, 'Jasper’s Market (BSP)'));
    this.wabas.set(
      FIXTURES.destWabaId,
      waba(FIXTURES.destWabaId, 'Jasper’s Market (Cloud API)', {
        account_review_status: s === 'waba_pending_review' ? 'PENDING' : 'APPROVED',
        ...(s === 'no_payment_method' ? { primary_funding_id: '' } : {}),
        ...(s === 'no_webhooks' ? { apps: [] } : {}),
      }),
    );
    if (s.startsWith('onprem_')) {
      // The On-Premises number stays in its own WABA (the "source" one here).
      if (s === 'onprem_no_subscribed_app') this.wabas.get(FIXTURES.sourceWabaId)!.apps = [];
      const onprem = this.numbers.get(this.addSourceNumber(FIXTURES.sourceWabaId, FIXTURES.onpremPhone))!;
      onprem.platform_type = 'ON_PREMISE';
      onprem.twoStepPin = s === 'onprem_wrong_pin' ? '135790' : FIXTURES.onpremPin;
    }
    // Two numbers already on the destination WABA, so the phone list pages too.
    this.#addNumber(FIXTURES.destWabaId, '1', '6315550100', 'CONNECTED', 'VERIFIED');
    this.#addNumber(FIXTURES.destWabaId, '1', '6315550101', 'CONNECTED', 'VERIFIED');
    // The fixture number lives on the source WABA (the BSP's) until it is registered elsewhere.
    this.addSourceNumber(FIXTURES.sourceWabaId, FIXTURES.phone);
  }

  /**
   * Puts a number on a WABA as it is before a migration (connected at its BSP). Its id is derived
   * from the digits (no PRNG draw, so seeded runs keep their ids and codes); returns it.
   * A register of the same number on another WABA removes it from here: the number moved.
   */
  addSourceNumber(wabaId: string, e164: string): string {
    const digits = e164.replace(/\D/g, '');
    const cc = parsePhoneNumberWithError(e164).countryCallingCode;
    const id = `5${digits.padStart(14, '0')}`;
    this.numbers.set(id, {
      id,
      wabaId,
      cc,
      national: digits.slice(cc.length),
      verified_name: 'Jasper’s Market',
      status: 'CONNECTED',
      code_verification_status: 'VERIFIED',
      quality_rating: 'GREEN',
      code: null,
      registerCalls: [],
      failNextVerify: false,
      platform_type: 'CLOUD_API',
      twoStepPin: null,
      webhook: null,
    });
    return id;
  }

  /**
   * Another customer: its own business, source WABA and destination WABA (ids derived from `n`),
   * all approved, verified and with a payment method. Lets one sandbox host many migrations
   * without one WABA's phone list growing past anything real.
   */
  addTenant(n: number): { businessId: string; sourceWabaId: string; destWabaId: string } {
    const suffix = String(n).padStart(6, '0');
    const businessId = `110000000${suffix}`;
    const sourceWabaId = `210000000${suffix}`;
    const destWabaId = `220000000${suffix}`;
    this.businesses.set(businessId, { id: businessId, name: `Tenant ${n}`, verification_status: 'verified' });
    for (const [id, name] of [
      [sourceWabaId, `Tenant ${n} (BSP)`],
      [destWabaId, `Tenant ${n} (Cloud API)`],
    ] as const) {
      this.wabas.set(id, { id, name, owner: businessId, account_review_status: 'APPROVED', primary_funding_id: `9${id.slice(1)}`, apps: [{ id: '300000000000001', name: 'integration' }] });
    }
    return { businessId, sourceWabaId, destWabaId };
  }

  #newId(): string {
    this.#idSeq++;
    return `1${String(this.#idSeq).padStart(3, '0')}${Math.floor(this.#rand() * 1e11).toString().padStart(11, '0')}`;
  }

  #addNumber(wabaId: string, cc: string, national: string, status: string, cvs: 'VERIFIED' | 'UNVERIFIED', verifiedName = 'Jasper’s Market'): NumberRec {
    const rec: NumberRec = {
      id: this.#newId(),
      wabaId,
      cc,
      national,
      verified_name: verifiedName,
      status,
      code_verification_status: cvs,
      quality_rating: 'GREEN',
      code: null,
      registerCalls: this.options.scenario === 'register_limit' ? Array.from({ length: 10 }, () => Date.now()) : [],
      failNextVerify: this.options.scenario === 'wrong_code',
      platform_type: status === 'CONNECTED' ? 'CLOUD_API' : 'NOT_APPLICABLE',
      twoStepPin: null,
      webhook: null,
    };
    this.numbers.set(rec.id, rec);
    return rec;
  }

  async start(): Promise<string> {
    this.#server = await LoopbackServer.listen((req, res) => {
      this.#handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.#send(res, 500, { error: { message: String(e), type: 'OAuthException', code: 1, fbtrace_id: this.#trace() } });
      });
    }, this.options.port);
    return this.url;
  }

  get url(): string {
    if (!this.#server) throw new Error('sandbox is not running');
    return this.#server.url;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    await server?.stop();
  }

  /** Resolves with the next code sent to this phone-number id (or the latest one already sent). */
  waitForCode(phoneNumberId: string, after = 0): Promise<OutboxEntry> {
    const found = this.outbox.slice(after).find((o) => o.phoneNumberId === phoneNumberId);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const on = (o: OutboxEntry) => {
        if (o.phoneNumberId !== phoneNumberId) return;
        this.events.off('code', on);
        resolve(o);
      };
      this.events.on('code', on);
    });
  }

  lastCodeFor(phoneNumberId: string): OutboxEntry | undefined {
    return [...this.outbox].reverse().find((o) => o.phoneNumberId === phoneNumberId);
  }

  findByPhone(e164: string): NumberRec | undefined {
    const digits = e164.replace(/\D/g, '');
    return [...this.numbers.values()].find((n) => n.cc + n.national === digits && n.wabaId === FIXTURES.destWabaId) ?? [...this.numbers.values()].find((n) => n.cc + n.national === digits);
  }

  #count(key: string): EndpointCounter {
    return (this.counters[key] ??= { calls: 0, applied: 0, errors: 0, faults: 0 });
  }

  #trace(): string {
    return `A${randomBytes(16).toString('base64url').slice(0, 22)}`;
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    // Meta names every answer (randomBytes, not the seeded PRNG: seeded runs keep their sequence).
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), 'x-fb-trace-id': randomBytes(9).toString('base64url'), ...headers });
    res.end(text);
  }

  async #readParams(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
    if (!raw) return params;
    const type = req.headers['content-type'] ?? '';
    if (type.includes('application/json')) {
      try {
        Object.assign(params, JSON.parse(raw));
      } catch {
        throw new HttpError(400, { message: '(#100) The request body is not valid JSON', type: 'OAuthException', code: 100 });
      }
    } else {
      Object.assign(params, Object.fromEntries(new URLSearchParams(raw)));
    }
    return params;
  }

  /** Requests received whose effect is not yet decided (applied or refused). */
  #undecided = 0;

  /** Resolves once every request received so far has been applied or refused (e.g. the last
   *  request of a killed client), whether or not its answer has been sent. */
  async idle(): Promise<void> {
    while (this.#undecided > 0) await sleep(2);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#undecided++;
    let decided = false;
    const decide = () => {
      if (!decided) {
        decided = true;
        this.#undecided--;
      }
    };
    try {
      await this.#handleInner(req, res, decide);
    } finally {
      decide();
    }
  }

  async #handleInner(req: IncomingMessage, res: ServerResponse, decide: () => void): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] && /^v\d+\.\d+$/.test(parts[0])) parts.shift();
    const [id = '', edge = ''] = parts;
    const method = req.method ?? 'GET';
    const kind = id === 'me' ? 'me' : this.businesses.has(id) ? 'business' : this.wabas.has(id) ? 'waba' : this.numbers.has(id) ? 'phone' : 'unknown';
    const key = `${method} ${edge || kind}`;
    const counter = this.#count(key);
    counter.calls++;

    const forced = this.#failNext.get(key);
    if (forced && forced.times > 0) {
      if (--forced.times === 0) this.#failNext.delete(key);
      counter.faults++;
      this.#send(
        res,
        forced.status,
        { error: { message: 'Service temporarily unavailable. Please retry your request later.', type: 'OAuthException', code: 2, is_transient: true, fbtrace_id: this.#trace() } },
        forced.retryAfterSec !== null ? { 'retry-after': String(forced.retryAfterSec) } : {},
      );
      return;
    }
    const f = this.options.faults;
    if (this.options.latencyMs) await sleep(this.options.latencyMs);
    const roll = this.#rand();
    let acc = 0;
    const hit = (rate: number) => {
      acc += rate;
      return roll < acc;
    };
    if (hit(f.reset)) {
      counter.faults++;
      req.socket.destroy();
      return;
    }
    if (hit(f.serverError)) {
      counter.faults++;
      this.#send(res, 500, { error: { message: 'An unexpected error has occurred. Please retry your request later.', type: 'OAuthException', code: 2, is_transient: true, fbtrace_id: this.#trace() } });
      return;
    }
    if (hit(f.rateLimit)) {
      counter.faults++;
      const code = this.#rand() < 0.5 ? 4 : 80007;
      const usage = JSON.stringify({ [FIXTURES.destWabaId]: [{ type: 'whatsapp_business_management', call_count: 100, total_cputime: 10, total_time: 10, estimated_time_to_regain_access: 0 }] });
      this.#send(
        res,
        429,
        { error: { message: code === 4 ? '(#4) Application request limit reached' : '(#80007) Rate limit hit for WhatsApp Business Account', type: 'OAuthException', code, fbtrace_id: this.#trace() } },
        { 'x-business-use-case-usage': usage, 'retry-after': '0' },
      );
      return;
    }
    // A slow answer: the request is applied at once, the answer comes after the client gave up.
    const timeout = hit(f.timeout);
    const lost = hit(f.lostResponse) || this.#loseNext.delete(edge);
    const answerLate = async () => {
      decide();
      if (timeout) {
        counter.faults++;
        await sleep(this.options.timeoutDelayMs);
      }
    };

    let params: Record<string, unknown> = {};
    /** Rate-limit headers for this answer (when the limiter is on). */
    const usage: Record<string, string> = {};
    const record = (status: number, response: unknown) => {
      if (!this.options.record) return;
      const { access_token: _t, ...rest } = params;
      const query = Object.fromEntries(url.searchParams);
      const body = Object.fromEntries(Object.entries(rest).filter(([k]) => !(k in query)));
      this.exchanges.push({
        method,
        path: url.pathname,
        query,
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        body: method === 'POST' ? body : undefined,
        status,
        response,
      });
    };
    try {
      params = await this.#readParams(req, url);
      this.#auth(req, params);
      this.#limit(id, kind, usage);
      const body = this.#route(method, id, kind, edge, params);
      counter.applied++;
      if (lost) {
        counter.faults++;
        decide();
        req.socket.destroy();
        return;
      }
      record(200, body);
      await answerLate();
      this.#send(res, 200, body, usage);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      counter.errors++;
      const answer = { error: { ...e.body, fbtrace_id: this.#trace() } };
      record(e.status, answer);
      await answerLate();
      this.#send(res, e.status, answer, { ...usage, ...e.headers });
    }
  }

  /** Counts the call against its WABA (a number's WABA; a business itself); refuses it past the limit. */
  #limit(id: string, kind: string, usage: Record<string, string>): void {
    if (!this.limiter || kind === 'unknown') return;
    const key = kind === 'phone' ? this.numbers.get(id)!.wabaId : id;
    const d = this.limiter.take(key);
    Object.assign(usage, d.headers);
    if (!d.allowed)
      throw new HttpError(400, {
        message: '(#80007) Rate limit hit for WhatsApp Business Account',
        type: 'OAuthException',
        code: 80007,
        error_user_title: 'Rate limit hit',
        error_user_msg: 'Too many calls to this WhatsApp Business Account. Wait before trying again.',
      });
  }

  #auth(req: IncomingMessage, params: Record<string, unknown>): void {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : typeof params.access_token === 'string' ? params.access_token : '';
    if (!token)
      throw new HttpError(401, { message: 'An access token is required to request this resource.', type: 'OAuthException', code: 190 });
    if (token !== this.options.token)
      throw new HttpError(401, { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190, error_subcode: 463 });
  }

  #route(method: string, id: string, kind: string, edge: string, p: Record<string, unknown>): unknown {
    if (kind === 'unknown')
      throw new HttpError(400, {
        message: `Unsupported ${method.toLowerCase()} request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        type: 'GraphMethodException',
        code: 100,
        error_subcode: 33,
      });
    // The token's own user (a system user): what `doctor` asks to check the token's permissions.
    if (method === 'GET' && kind === 'me' && edge === 'permissions')
      return { data: ['whatsapp_business_management', 'business_management', 'whatsapp_business_messaging'].map((permission) => ({ permission, status: 'granted' })) };
    if (kind === 'me') throw new HttpError(400, { message: `Unsupported ${method.toLowerCase()} request on /me/${edge}.`, type: 'GraphMethodException', code: 100 });
    const fields = typeof p.fields === 'string' ? p.fields.split(',').map((s) => s.trim()) : null;
    const pick = (o: Record<string, unknown>, defaults: string[]) => {
      const want = fields ?? defaults;
      return Object.fromEntries(['id', ...want].filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    };
    if (method === 'GET' && kind === 'business' && edge === '') {
      const b = this.businesses.get(id)!;
      return pick({ ...b }, ['name']);
    }
    if (method === 'GET' && kind === 'business' && edge === 'owned_whatsapp_business_accounts') {
      const list = [...this.wabas.values()].filter((w) => w.owner === id).map((w) => pick(this.#wabaView(w), ['name']));
      return this.#page(list, p);
    }
    if (method === 'GET' && kind === 'waba' && edge === '') return pick(this.#wabaView(this.wabas.get(id)!), ['name']);
    if (method === 'GET' && kind === 'waba' && edge === 'phone_numbers') {
      const list = this.#sorted([...this.numbers.values()].filter((n) => n.wabaId === id), p.sort).map((n) => pick(this.#numberView(n), ['display_phone_number', 'verified_name', 'status', 'quality_rating']));
      return this.#page(list, p);
    }
    if (method === 'GET' && kind === 'waba' && edge === 'subscribed_apps') {
      return { data: this.wabas.get(id)!.apps.map((a) => ({ whatsapp_business_api_data: { id: a.id, name: a.name, link: 'https://example.com' } })) };
    }
    if (method === 'GET' && kind === 'phone' && edge === '')
      return pick(this.#numberView(this.numbers.get(id)!), ['display_phone_number', 'verified_name', 'quality_rating', 'code_verification_status']);
    if (method === 'POST' && kind === 'waba' && edge === 'phone_numbers') return this.#create(id, p);
    if (method === 'POST' && kind === 'phone' && edge === 'request_code') return this.#requestCode(this.numbers.get(id)!, p);
    if (method === 'POST' && kind === 'phone' && edge === 'verify_code') return this.#verifyCode(this.numbers.get(id)!, p);
    if (method === 'POST' && kind === 'phone' && edge === 'register') return this.#register(this.numbers.get(id)!, p);
    if (method === 'POST' && kind === 'phone' && edge === '') return this.#updateNumber(this.numbers.get(id)!, p);
    throw new HttpError(400, { message: `Unknown path components: /${edge}`, type: 'OAuthException', code: 2500 });
  }

  /** When each number last registered (onboarded) here, in order: backs `sort=last_onboarded_time.*`. */
  #onboarded = new Map<string, number>();
  #onboardSeq = 0;

  /** The spec's `sort` on a WABA's phone_numbers: creation_time (insertion order) or last_onboarded_time. */
  #sorted(list: NumberRec[], sort: unknown): NumberRec[] {
    if (sort === undefined) return list;
    const [field, dir] = String(sort).split('.');
    if (!['creation_time', 'last_onboarded_time'].includes(field ?? '') || !['asc', 'desc'].includes(dir ?? ''))
      throw new HttpError(400, { message: `(#100) Param sort must be one of creation_time.asc, creation_time.desc, last_onboarded_time.asc, last_onboarded_time.desc`, type: 'OAuthException', code: 100 });
    const keyed = field === 'creation_time' ? list : [...list].sort((a, b) => (this.#onboarded.get(a.id) ?? 0) - (this.#onboarded.get(b.id) ?? 0));
    return dir === 'desc' ? [...keyed].reverse() : keyed;
  }

  #page(list: unknown[], p: Record<string, unknown>): unknown {
    const size = Math.max(1, Math.min(Number(p.limit) || this.options.pageSize, 100));
    const start = typeof p.after === 'string' ? Number(Buffer.from(p.after, 'base64url').toString()) || 0 : 0;
    const data = list.slice(start, start + size);
    const end = start + data.length;
    const cursor = (n: number) => Buffer.from(String(n)).toString('base64url');
    return {
      data,
      paging: {
        cursors: { before: cursor(start), after: cursor(end) },
        ...(end < list.length ? { next: `${this.url}/v23.0/...?after=${cursor(end)}` } : {}),
      },
    };
  }

  #wabaView(w: Waba): Record<string, unknown> {
    const b = this.businesses.get(w.owner);
    return {
      id: w.id,
      name: w.name,
      account_review_status: w.account_review_status,
      primary_funding_id: w.primary_funding_id,
      owner_business_info: b ? { id: b.id, name: b.name } : undefined,
    };
  }

  #numberView(n: NumberRec): Record<string, unknown> {
    const nat = n.national;
    const display = n.cc === '1' && nat.length === 10 ? `+1 ${nat.slice(0, 3)}-${nat.slice(3, 6)}-${nat.slice(6)}` : `+${n.cc} ${nat}`;
    return {
      id: n.id,
      display_phone_number: display,
      verified_name: n.verified_name,
      status: n.status,
      code_verification_status: n.code_verification_status,
      quality_rating: n.quality_rating,
      platform_type: n.platform_type,
      // The spec's name for the same field (answered only when asked for).
      host_platform: n.platform_type,
      // Meta answers with the URL in force at each level; only the number's override is simulated.
      webhook_configuration: n.webhook ? { phone_number: n.webhook.override_callback_uri, application: 'https://example.com/app-webhook' } : { application: 'https://example.com/app-webhook' },
    };
  }

  #create(wabaId: string, p: Record<string, unknown>): unknown {
    const cc = String(p.cc ?? '');
    const national = String(p.phone_number ?? '');
    if (!/^\d{1,3}$/.test(cc)) throw new HttpError(400, { message: '(#100) Param cc must be a valid country calling code', type: 'OAuthException', code: 100 });
    if (!/^\d{4,14}$/.test(national)) throw new HttpError(400, { message: '(#100) Param phone_number must be a valid phone number', type: 'OAuthException', code: 100 });
    if (p.verified_name !== undefined && (typeof p.verified_name !== 'string' || p.verified_name.length < 2))
      throw new HttpError(400, { message: '(#100) Param verified_name must be 2 to 75 characters', type: 'OAuthException', code: 100 });
    const dup = [...this.numbers.values()].find((n) => n.wabaId === wabaId && n.cc + n.national === cc + national);
    if (dup)
      throw new HttpError(400, {
        message: '(#100) The phone number is already registered to this WhatsApp Business Account',
        type: 'OAuthException',
        code: 100,
        error_user_msg: 'This phone number is already added to the account.',
      });
    const rec = this.#addNumber(wabaId, cc, national, 'PENDING', 'UNVERIFIED', typeof p.verified_name === 'string' ? p.verified_name : 'Jasper’s Market');
    this.created.set(cc + national, (this.created.get(cc + national) ?? 0) + 1);
    return { id: rec.id };
  }

  #requestCode(n: NumberRec, p: Record<string, unknown>): unknown {
    const method = String(p.code_method ?? '').toUpperCase();
    if (method !== 'SMS' && method !== 'VOICE') throw new HttpError(400, { message: '(#100) Param code_method must be one of {SMS, VOICE}', type: 'OAuthException', code: 100 });
    if (typeof p.language !== 'string' || !/^[a-z]{2,3}(_[A-Z]{2})?$/.test(p.language))
      throw new HttpError(400, { message: '(#100) Param language must be a valid language code', type: 'OAuthException', code: 100 });
    if (n.code_verification_status === 'VERIFIED')
      throw new HttpError(400, { message: 'Phone number is already verified', type: 'OAuthException', code: 136024, error_user_msg: 'This phone number has already been verified.' });
    const value = String(Math.floor(this.#rand() * 1e6)).padStart(6, '0');
    const ttl = this.options.scenario === 'expired_code' && !this.outbox.some((o) => o.phoneNumberId === n.id) ? 0 : this.options.codeTtlMs;
    n.code = { value, expiresAt: Date.now() + ttl };
    const entry: OutboxEntry = { at: new Date().toISOString(), phoneNumberId: n.id, phone: `+${n.cc}${n.national}`, code: value, method, language: p.language };
    this.outbox.push(entry);
    this.events.emit('code', entry);
    return { success: true };
  }

  #verifyCode(n: NumberRec, p: Record<string, unknown>): unknown {
    const code = typeof p.code === 'string' ? p.code : typeof p.code === 'number' ? String(p.code) : '';
    if (!/^\d{6}$/.test(code)) throw new HttpError(400, { message: '(#100) Param code must be 6 digits', type: 'OAuthException', code: 100 });
    if (n.code_verification_status === 'VERIFIED') return { success: true, id: n.id };
    const wrong = () =>
      new HttpError(400, { message: 'Code couldn’t be verified. You have entered the wrong code or the code has expired.', type: 'OAuthException', code: 136025, error_user_msg: 'Enter the latest code, or request a new one.' });
    if (n.failNextVerify) {
      n.failNextVerify = false;
      throw wrong();
    }
    if (!n.code || n.code.value !== code || Date.now() >= n.code.expiresAt) throw wrong();
    n.code_verification_status = 'VERIFIED';
    n.code = null;
    return { success: true, id: n.id };
  }

  #register(n: NumberRec, p: Record<string, unknown>): unknown {
    if (p.messaging_product !== 'whatsapp') throw new HttpError(400, { message: '(#100) Param messaging_product must be "whatsapp"', type: 'OAuthException', code: 100 });
    if (typeof p.pin !== 'string' || !/^\d{6}$/.test(p.pin)) throw new HttpError(400, { message: '(#100) Param pin must be 6 digits', type: 'OAuthException', code: 100 });
    const now = Date.now();
    n.registerCalls = n.registerCalls.filter((t) => now - t < 72 * 3600_000);
    if (n.registerCalls.length >= 10)
      throw new HttpError(400, { message: 'Rate limit hit: too many register attempts for this phone number. Try again in 72 hours.', type: 'OAuthException', code: 133016 });
    n.registerCalls.push(now);
    if (p.backup !== undefined) return this.#registerWithBackup(n, p);
    if (n.code_verification_status !== 'VERIFIED')
      throw new HttpError(400, { message: '(#100) The phone number must be verified before it can be registered', type: 'OAuthException', code: 100 });
    n.status = 'CONNECTED';
    this.#onboarded.set(n.id, ++this.#onboardSeq);
    for (const other of [...this.numbers.values()]) if (other !== n && other.wabaId !== n.wabaId && other.cc + other.national === n.cc + n.national) this.numbers.delete(other.id);
    n.platform_type = 'CLOUD_API';
    this.registered.set(n.cc + n.national, (this.registered.get(n.cc + n.national) ?? 0) + 1);
    return { success: true };
  }

  /** On-Premises → Cloud API: the PIN must be the number's existing two-step PIN, the backup one
   *  the On-Premises client made. Either way the On-Premises client is disconnected afterwards. */
  #registerWithBackup(n: NumberRec, p: Record<string, unknown>): unknown {
    const b = p.backup as { data?: unknown; password?: unknown } | null;
    if (!b || typeof b !== 'object' || typeof b.data !== 'string' || typeof b.password !== 'string' || !b.data || !b.password)
      throw new HttpError(400, { message: '(#100) Param backup must be an object with data and password', type: 'OAuthException', code: 100 });
    const digits = n.cc + n.national;
    if (n.twoStepPin !== null && n.twoStepPin !== p.pin) {
      this.events.emit('onprem_disconnected', digits);
      throw new HttpError(400, { message: 'Two step verification PIN Mismatch', type: 'OAuthException', code: 133005, error_user_msg: 'The PIN does not match the two-step verification PIN of this number.' });
    }
    if (this.backupVerifier?.(b.data, b.password) !== digits)
      throw new HttpError(400, { message: '(#100) Invalid backup data or password', type: 'OAuthException', code: 100 });
    n.status = 'CONNECTED';
    n.platform_type = 'CLOUD_API';
    n.twoStepPin = p.pin as string;
    this.registered.set(digits, (this.registered.get(digits) ?? 0) + 1);
    this.events.emit('onprem_disconnected', digits);
    return { success: true };
  }

  /** `POST /{phone-number-id}` (PhoneNumberStatusUpdateRequest): webhook_configuration and/or
   *  whatsapp_business_api_data {show_security_notifications, notify_user_change_number}. */
  #updateNumber(n: NumberRec, p: Record<string, unknown>): unknown {
    const parse = (v: unknown): unknown => {
      if (typeof v !== 'string') return v;
      try {
        return JSON.parse(v);
      } catch {
        return null;
      }
    };
    const known = ['webhook_configuration', 'whatsapp_business_api_data'];
    if (!known.some((k) => p[k] !== undefined))
      throw new HttpError(400, { message: '(#100) Param webhook_configuration[override_callback_uri] is required', type: 'OAuthException', code: 100 });
    let apiData: NonNullable<NumberRec['apiData']> | null = null;
    if (p.whatsapp_business_api_data !== undefined) {
      const d = parse(p.whatsapp_business_api_data) as Record<string, unknown> | null;
      if (!d || typeof d !== 'object' || Array.isArray(d))
        throw new HttpError(400, { message: '(#100) Param whatsapp_business_api_data must be an object', type: 'OAuthException', code: 100 });
      apiData = {};
      for (const [k, v] of Object.entries(d)) {
        if (k !== 'show_security_notifications' && k !== 'notify_user_change_number')
          throw new HttpError(400, { message: `(#100) Param whatsapp_business_api_data[${k}] is not supported by the sandbox`, type: 'OAuthException', code: 100 });
        if (typeof v !== 'boolean') throw new HttpError(400, { message: `(#100) Param whatsapp_business_api_data[${k}] must be a boolean`, type: 'OAuthException', code: 100 });
        apiData[k] = v;
      }
      if (!Object.keys(apiData).length) throw new HttpError(400, { message: '(#100) Param whatsapp_business_api_data is empty', type: 'OAuthException', code: 100 });
    }
    let webhook: NumberRec['webhook'] | undefined;
    if (p.webhook_configuration !== undefined) {
      const c = parse(p.webhook_configuration) as { override_callback_uri?: unknown; verify_token?: unknown } | null;
      if (!c || typeof c !== 'object' || typeof c.override_callback_uri !== 'string')
        throw new HttpError(400, { message: '(#100) Param webhook_configuration[override_callback_uri] is required', type: 'OAuthException', code: 100 });
      if (c.override_callback_uri !== '' && !/^https:\/\//.test(c.override_callback_uri))
        throw new HttpError(400, { message: '(#100) Param webhook_configuration[override_callback_uri] must be an https URL', type: 'OAuthException', code: 100 });
      // Meta: the app must be subscribed to the WABA before a number's callback can be overridden.
      if (this.wabas.get(n.wabaId)!.apps.length === 0)
        throw new HttpError(400, { message: '(#100) The app must be subscribed to the WhatsApp Business Account before overriding the callback URL', type: 'OAuthException', code: 100 });
      webhook = c.override_callback_uri ? { override_callback_uri: c.override_callback_uri, verify_token: typeof c.verify_token === 'string' ? c.verify_token : null } : null;
    }
    // All or nothing: a refused part leaves the number as it was.
    if (webhook !== undefined) n.webhook = webhook;
    if (apiData) n.apiData = { ...(n.apiData ?? {}), ...apiData };
    return { success: true };
  }
}
