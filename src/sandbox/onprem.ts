/**
 * An On-Premises API client simulator (issue 12): a real HTTP server on 127.0.0.1 with the admin
 * login, the application settings of Meta's "Application settings" page (fields and defaults as
 * documented there) and the settings backup. Linked to a GraphSandbox, it checks the backups given
 * to Cloud `register`, and once the Cloud side registered its number (or refused its PIN, which
 * Meta documents as leaving the On-Premises deployment down) it answers as disconnected.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback.js';
import { randomBytes } from 'node:crypto';
import { FIXTURES, prng, type GraphSandbox } from './server.js';

/** The documented defaults (Meta's "Application settings" page, parameters table). */
export function defaultApplicationSettings(waId: string): Record<string, unknown> {
  return {
    axolotl_context_striping_disabled: false,
    callback_backoff_delay_ms: '3000',
    callback_persist: true,
    garbagecollector_enable: { messages: true, media: false },
    heartbeat_interval: 5,
    log_level: 'info',
    max_callback_backoff_delay_ms: '900000',
    media: { auto_download: [] },
    notify_user_change_number: false,
    pass_through: false,
    show_security_notifications: false,
    skip_referral_media_download: false,
    unhealthy_interval: 30,
    verbose_logging: false,
    wa_id: waId,
    webhooks: { url: '', max_concurrent_requests: 6, message: { sent: true, delivered: true, read: true } },
  };
}

export interface OnPremSandboxOptions {
  port?: number;
  /** Admin credentials for `POST /v1/users/login`. */
  user?: string;
  password?: string;
  /** The number this client serves (E.164). */
  phone?: string;
  /** Settings applied over the defaults at start (a customised deployment). */
  settings?: Record<string, unknown>;
  faults?: { serverError?: number; reset?: number; lostResponse?: number };
  seed?: number;
}

export const ONPREM_FIXTURES = {
  user: 'admin',
  password: 'onprem-admin-secret',
  /** A customised deployment: a webhook URL with a shared secret in its query (as the page suggests). */
  settings: {
    webhooks: { url: 'https://hooks.example.com/whatsapp?auth=shared-secret-123', max_concurrent_requests: 12, message: { sent: true, delivered: true, read: false } },
    media: { auto_download: ['image', 'document'] },
    show_security_notifications: true,
    callback_backoff_delay_ms: '5000',
  },
} as const;

class OnPremError {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly title: string,
    readonly details: string,
  ) {}
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(into: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...into };
  for (const [k, v] of Object.entries(patch)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

export class OnPremSandbox {
  readonly phoneDigits: string;
  settings: Record<string, unknown>;
  /** Set once the Cloud side registered this number (or refused its PIN): every call then fails. */
  disconnected = false;
  readonly counters: Record<string, number> = {};
  readonly #user: string;
  readonly #password: string;
  readonly #tokens = new Set<string>();
  /** Backups made: data → password (the blob is opaque to everyone else). */
  readonly #backups = new Map<string, string>();
  readonly #opts: OnPremSandboxOptions;
  readonly #rand: () => number;
  #server: LoopbackServer | null = null;

  constructor(opts: OnPremSandboxOptions = {}) {
    this.#opts = opts;
    this.#user = opts.user ?? ONPREM_FIXTURES.user;
    this.#password = opts.password ?? ONPREM_FIXTURES.password;
    this.phoneDigits = (opts.phone ?? FIXTURES.onpremPhone).replace(/\D/g, '');
    this.settings = merge(defaultApplicationSettings(this.phoneDigits), (opts.settings ?? ONPREM_FIXTURES.settings) as Record<string, unknown>);
    this.#rand = prng(opts.seed ?? 7);
  }

  /** Lets the Graph sandbox check backups given to register, and disconnects this client once
   *  the Cloud side took its number. */
  link(graph: GraphSandbox): this {
    const previous = graph.backupVerifier;
    graph.backupVerifier = (data, password) => (this.#backups.get(data) === password ? this.phoneDigits : (previous?.(data, password) ?? null));
    graph.events.on('onprem_disconnected', (digits: string) => {
      if (digits === this.phoneDigits) this.disconnected = true;
    });
    return this;
  }

  async start(): Promise<string> {
    this.#server = await LoopbackServer.listen((req, res) => {
      this.#handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.#send(res, 500, { errors: [{ code: 500, title: 'Internal error', details: String(e) }] });
      });
    }, this.#opts.port ?? 0);
    return this.url;
  }

  get url(): string {
    if (!this.#server) throw new Error('On-Premises sandbox is not running');
    return this.#server.url;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    await server?.stop();
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify({ ...(body as object), meta: { api_status: 'stable', version: '2.53.1' } });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const key = `${method} ${url.pathname}`;
    this.counters[key] = (this.counters[key] ?? 0) + 1;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const f = { serverError: 0, reset: 0, lostResponse: 0, ...this.#opts.faults };
    const roll = this.#rand();
    if (roll < f.reset) return void req.socket.destroy();
    if (roll < f.reset + f.serverError) return this.#send(res, 500, { errors: [{ code: 500, title: 'Internal error', details: 'try again' }] });
    const lost = roll < f.reset + f.serverError + f.lostResponse;
    try {
      let body: unknown = {};
      const raw = Buffer.concat(chunks).toString('utf8');
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new OnPremError(400, 1005, 'Invalid request', 'the body is not valid JSON');
        }
      }
      const answer = this.#route(method, url.pathname, req, body);
      if (lost) return void req.socket.destroy();
      this.#send(res, 200, answer);
    } catch (e) {
      if (!(e instanceof OnPremError)) throw e;
      this.#send(res, e.status, { errors: [{ code: e.code, title: e.title, details: e.details }] });
    }
  }

  #route(method: string, path: string, req: IncomingMessage, body: unknown): unknown {
    if (this.disconnected)
      throw new OnPremError(503, 1011, 'Service not ready', 'this client is disconnected: its number was registered on the Cloud API');
    if (method === 'POST' && path === '/v1/users/login') {
      const h = req.headers.authorization ?? '';
      const [u, p] = h.startsWith('Basic ') ? Buffer.from(h.slice(6), 'base64').toString('utf8').split(/:(.*)/s) : [];
      if (u !== this.#user || p !== this.#password) throw new OnPremError(401, 1005, 'Access denied', 'Invalid credentials');
      const token = randomBytes(24).toString('base64url');
      this.#tokens.add(token);
      return { users: [{ token, expires_after: new Date(Date.now() + 7 * 86400_000).toISOString() }] };
    }
    const h = req.headers.authorization ?? '';
    if (!h.startsWith('Bearer ') || !this.#tokens.has(h.slice(7))) throw new OnPremError(401, 1005, 'Access denied', 'Invalid or expired token');
    if (path === '/v1/settings/application') {
      if (method === 'GET') return { settings: { application: this.settings } };
      if (method === 'PATCH') {
        if (!isObj(body)) throw new OnPremError(400, 1006, 'Resource not found', 'expected a JSON object of settings');
        this.settings = merge(this.settings, body);
        return {};
      }
      if (method === 'DELETE') {
        this.settings = defaultApplicationSettings(this.phoneDigits);
        return {};
      }
    }
    if (method === 'POST' && path === '/v1/settings/backup') {
      const password = isObj(body) ? body.password : undefined;
      if (typeof password !== 'string' || password.length < 1) throw new OnPremError(400, 2000, 'Parameter missing', 'password is required');
      const data = randomBytes(48).toString('base64');
      this.#backups.set(data, password);
      return { settings: { data } };
    }
    throw new OnPremError(404, 1006, 'Resource not found', `${method} ${path} is not supported`);
  }

  /** Every backup blob this client handed out (tests look for them on disk and in output). */
  get backupsIssued(): string[] {
    return [...this.#backups.keys()];
  }

  /** How many backups this client made. */
  get backupCount(): number {
    return this.#backups.size;
  }
}
