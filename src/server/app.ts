/**
 * `waba-migrate serve`: the dashboard and its read-only JSON API on fastify. Reads go through the
 * `MigrationStore` contract only (scan, load, holder, listBatches, disabledEndpoints, watch) and the runner's view
 * helpers; nothing here writes to the store.
 */
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { toView } from '../runner/view.js';
import { parseMigrationId } from '../runner/validate.js';
import { disabledFor } from '../notify/endpoint.js';
import { isPending, notificationPanel } from '../notify/events.js';
import type { BatchRecord, DisabledEndpoint, MigrationDocument } from '../store/document.js';
import type { MigrationStore } from '../store/store.js';
import { registerActions, type ActionOptions } from './actions.js';
import { ASSETS } from './assets.js';
import { bearer, COOKIE, sameSecret, sessionValue } from './auth.js';
import { LiveIndex, type MigrationSummary, type TransitionEvent } from './live.js';
import { errorPage, listPage, migrationPage, overviewPage, type BatchProgress, type Overview } from './pages.js';
import { applyQuery, parseListQuery, QueryError, type ListQuery } from './query.js';

export interface DashboardOptions {
  store: MigrationStore;
  /** The bearer token every request must present (or its session cookie). */
  token: string;
  /** Keep-alive comment interval on event streams. */
  heartbeatMs?: number;
  /** Rows in the overview's "needs a person" table. */
  attentionRows?: number;
  /** How often the index re-reads migrations whose next action changed with time alone. */
  sweepMs?: number;
  /** Write actions (retry, cancel, submit a code); absent = read-only. */
  actions?: ActionOptions;
  /** The notify URL in use (`--notify-url`), to tell whether its endpoint is disabled; without
   *  it, the endpoint disabled last is assumed to be the one in use. Never served. */
  notifyUrl?: string;
}

export interface Dashboard {
  app: FastifyInstance;
  index: LiveIndex;
  /** Listens and resolves to the base URL (http://host:port). */
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

/** A slow event-stream client is dropped past this much unsent data rather than buffered forever. */
const MAX_BUFFERED = 1 << 20;

const isApi = (url: string) => url.startsWith('/api/') || url === '/api' || url.startsWith('/healthz');

function apiError(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).header('cache-control', 'no-store').send({ error: { code, message } });
}

function htmlReply(reply: FastifyReply, status: number, body: string) {
  return reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body);
}

export async function createDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { store, token } = options;
  if (!token) throw new Error('dashboard token is empty');
  const session = sessionValue(token);
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const index = new LiveIndex(store, options.sweepMs !== undefined ? { sweepMs: options.sweepMs } : {});
  await index.start();

  // No request logging: a `?token=` exchange URL must never reach a log.
  // On close, open event streams and idle keep-alive sockets are cut rather than waited for.
  const app = Fastify({ logger: false, trustProxy: false, forceCloseConnections: true });
  await app.register(helmet, {
    // No referrer ever leaves the dashboard; same-origin requests keep theirs (and their Origin).
    referrerPolicy: { policy: 'same-origin' },
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
  });
  await app.register(cookie);

  app.addHook('onRequest', async (req, reply) => {
    const byBearer = sameSecret(token, bearer(req.headers.authorization));
    const byCookie = !byBearer && sameSecret(session, req.cookies[COOKIE]);
    const url = new URL(req.url, 'http://dashboard.invalid');
    const given = url.searchParams.get('token');
    // A page address carrying ?token= is always answered with a redirect to the clean URL, also
    // when the browser is already signed in: the token must not stay in the address bar, the
    // history or the Referer of every request the page makes.
    if (given !== null && req.method === 'GET' && !isApi(url.pathname) && (byBearer || byCookie || sameSecret(token, given))) {
      url.searchParams.delete('token');
      if (sameSecret(token, given)) reply.setCookie(COOKIE, session, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.protocol === 'https' });
      // One leading slash only: "//host" would send the browser to another site.
      return reply.header('cache-control', 'no-store').redirect(`/${url.pathname.replace(/^\/+/, '')}${url.search}`, 303);
    }
    if (byBearer) return;
    if (byCookie) {
      (req as FastifyRequest & { viaCookie?: boolean }).viaCookie = true;
      return;
    }
    reply.header('www-authenticate', 'Bearer realm="waba-migrate dashboard"');
    if (isApi(url.pathname)) return apiError(reply, 401, 'unauthorized', 'send Authorization: Bearer <token> (the token printed by `waba-migrate serve`, or WABA_DASHBOARD_TOKEN)');
    return htmlReply(reply, 401, errorPage(401, 'Sign-in needed', 'Open the address printed by `waba-migrate serve` (it ends in ?token=…), or append ?token=<WABA_DASHBOARD_TOKEN> to this URL once.'));
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const api = isApi(req.url);
    const [status, code] =
      err.name === 'QueryError' || err.name === 'InputError'
        ? [400, 'bad_request']
        : err.name === 'ForbiddenError'
          ? [403, 'forbidden']
        : ['WrongStateError', 'MigrationLockedError', 'NumberBusyError', 'ResendTooSoonError'].includes(err.name)
          ? [409, 'conflict']
        : err.name === 'MigrationNotFoundError' || err.name === 'BatchNotFoundError'
          ? [404, 'not_found']
          : err.name === 'StateDocumentError'
            ? [422, 'unreadable_document']
            : err.statusCode && err.statusCode < 500
              ? [err.statusCode, 'bad_request']
              : [500, 'internal'];
    // Internal errors are not described to the client (they may name paths or internals). A body
    // that could not be parsed is not quoted back: JSON.parse's message quotes the text around
    // the fault, which can be a verification code or a PIN.
    const unparsed = (err as { code?: string }).code?.startsWith('FST_ERR_CTP_') || err.name === 'SyntaxError';
    const message = status === 500 ? 'internal error' : unparsed ? `the request body could not be read (${(err as { code?: string }).code ?? 'not valid'}): send JSON, e.g. {"code":"123456","operator":"alice"}; nothing was done` : err.message;
    if (api) return apiError(reply, status, code, message);
    return htmlReply(reply, status, errorPage(status, status === 404 ? 'Not found' : status === 500 ? 'Something went wrong' : 'Cannot show this', message));
  });
  app.setNotFoundHandler((req, reply) => (isApi(req.url) ? apiError(reply, 404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`) : htmlReply(reply, 404, errorPage(404, 'Not found', 'No such page.'))));

  // --- what the pages and the API share -------------------------------------------------------

  async function batches(): Promise<{ records: BatchRecord[]; problem: string | null }> {
    // `listBatches` is part of the contract on main; a store without it simply has no batches.
    if (typeof store.listBatches !== 'function') return { records: [], problem: null };
    try {
      return { records: await store.listBatches(), problem: null };
    } catch (e) {
      return { records: [], problem: (e as Error).message };
    }
  }

  function progressOf(b: BatchRecord): BatchProgress {
    let completed = 0;
    let failed = 0;
    let attention = 0;
    for (const r of b.rows) {
      const m = index.get(r.migrationId);
      if (!m) continue;
      if (m.state === 'completed') completed++;
      if (m.state === 'failed') failed++;
      if (m.attention) attention++;
    }
    return { id: b.id, createdAt: b.createdAt, createdBy: b.createdBy, total: b.rows.length, completed, failed, attention, cancelled: b.cancelled !== null };
  }

  async function batchMembership(q: ListQuery): Promise<(id: string) => string | null> {
    if (!q.batch) return () => null;
    const { records } = await batches();
    const of = new Map<string, string>();
    for (const b of records) for (const r of b.rows) of.set(r.migrationId, b.id);
    return (id) => of.get(id) ?? null;
  }

  async function overview(rows = options.attentionRows ?? 50): Promise<Overview> {
    const counts = index.counts();
    const attention: MigrationSummary[] = [];
    for (const m of index.all()) if (m.attention) attention.push(m);
    // Longest waiting first.
    attention.sort((a, b) => (a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.id < b.id ? -1 : 1));
    const { records, problem } = await batches();
    const problems = [...index.problems].map(([id, message]) => ({ id, message }));
    if (problem) problems.push({ id: 'batches', message: problem });
    return {
      counts,
      total: index.size,
      attention: { total: attention.length, items: attention.slice(0, rows) },
      batches: records.map(progressOf),
      problems,
    };
  }

  async function listPageOf(raw: Record<string, unknown>) {
    const q = parseListQuery(raw);
    return { q, page: applyQuery(index.all(), q, await batchMembership(q)) };
  }

  // --- pages ----------------------------------------------------------------------------------

  app.get('/', async (_req, reply) => htmlReply(reply, 200, overviewPage(await overview(), index.since(0).slice(-20).reverse())));

  app.get('/migrations', async (req, reply) => {
    try {
      const { q, page } = await listPageOf(req.query as Record<string, unknown>);
      return htmlReply(reply, 200, listPage(q, page));
    } catch (e) {
      if (!(e instanceof QueryError)) throw e;
      const q = parseListQuery({});
      return htmlReply(reply, 400, listPage(q, applyQuery(index.all(), q), e.message));
    }
  });

  /** The disabled endpoint holding this document's pending notifications back, if any. */
  async function disabledOf(doc: MigrationDocument): Promise<DisabledEndpoint | null> {
    if (!doc.outbox?.some(isPending) || typeof store.disabledEndpoints !== 'function') return null;
    return disabledFor(await store.disabledEndpoints(), options.notifyUrl);
  }

  app.get('/migrations/:id', async (req, reply) => {
    const id = parseMigrationId((req.params as { id: string }).id, 'id');
    const doc = await store.load(id);
    const holder = typeof store.holder === 'function' ? await store.holder(id).catch(() => null) : null;
    const disabled = await disabledOf(doc);
    return htmlReply(reply, 200, migrationPage(doc, toView(doc, Date.now(), disabled), holder, options.actions ? { allowPin: options.actions.allowPin } : null, notificationPanel(doc.outbox, disabled)));
  });

  // Browsers ask for it on every page; an empty answer keeps their consoles clean.
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());

  app.get('/static/:name', async (req, reply) => {
    const name = (req.params as { name: string }).name;
    // Own keys only: `constructor`, `__proto__`, … are not files.
    const a = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!a) return htmlReply(reply, 404, errorPage(404, 'Not found', 'No such file.'));
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.header('etag', a.etag).header('cache-control', 'private, no-cache').type(a.type).send(a.body);
  });

  // --- JSON API -------------------------------------------------------------------------------

  app.get('/healthz', async () => ({ status: 'ok', migrations: index.size, eventClients: index.listeners }));

  app.get('/api/overview', async (_req, reply) => reply.header('cache-control', 'no-store').send(await overview()));

  app.get('/api/migrations', async (req, reply) => reply.header('cache-control', 'no-store').send((await listPageOf(req.query as Record<string, unknown>)).page));

  app.get('/api/migrations/:id', async (req, reply) => {
    const id = parseMigrationId((req.params as { id: string }).id, 'id');
    const doc = await store.load(id);
    return reply.header('cache-control', 'no-store').send(toView(doc, Date.now(), await disabledOf(doc)));
  });

  app.get('/api/migrations/:id/notifications', async (req, reply) => {
    const id = parseMigrationId((req.params as { id: string }).id, 'id');
    const doc = await store.load(id);
    const panel = notificationPanel(doc.outbox, await disabledOf(doc));
    return reply.header('cache-control', 'no-store').send({ id, endpointDisabled: panel?.endpointDisabled ?? null, events: panel?.events ?? null });
  });

  app.get('/api/migrations/:id/history', async (req, reply) => {
    const id = parseMigrationId((req.params as { id: string }).id, 'id');
    return reply.header('cache-control', 'no-store').send({ id, history: (await store.load(id)).history });
  });

  app.get('/api/batches', async (_req, reply) => {
    const { records } = await batches();
    return reply.header('cache-control', 'no-store').send({ items: records.map(progressOf) });
  });

  app.get('/api/batches/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (typeof store.loadBatch !== 'function') return apiError(reply, 404, 'not_found', 'this store keeps no batches');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) throw new QueryError('id', `"${id}" is not a batch id: use 1-64 letters, digits, '.', '_' or '-'`);
    const b = await store.loadBatch(id);
    const migrations = b.rows.map((r) => {
      const m = index.get(r.migrationId);
      return { line: r.line, phone: r.phone, migrationId: r.migrationId, state: m?.state ?? null, attention: m?.attention ?? null, nextAction: m?.nextAction ?? null };
    });
    return reply.header('cache-control', 'no-store').send({ batch: b, progress: progressOf(b), migrations });
  });

  if (options.actions) await registerActions(app, store, options.actions, (reply, status, message) => htmlReply(reply, status, errorPage(status, 'Not done', message)));

  // Server-Sent Events, written by hand: the format is three lines per event, and fastify's
  // reply pipeline would buffer a never-ending body. Headers are set here because hijacked
  // responses skip the plugins' hooks.
  const streams = new Set<ServerResponse>();
  app.get('/api/events', (req: FastifyRequest, reply: FastifyReply) => {
    const only = (req.query as { id?: string }).id || null;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    streams.add(res);
    const send = (t: TransitionEvent) => {
      if (only && t.id !== only) return;
      if (res.writableLength > MAX_BUFFERED) return res.destroy();
      res.write(`id: ${t.seq}\nevent: transition\ndata: ${JSON.stringify(t)}\n\n`);
    };
    const last = Number(req.headers['last-event-id']);
    if (Number.isInteger(last) && last > 0) for (const t of index.since(last)) send(t);
    const unsubscribe = index.subscribe(send);
    // A migration's page also hears of writes without a transition (a notification delivered),
    // to refresh its Notifications and carry-over panels. Not replayed (no id): the page re-reads.
    const unsubscribeChanges = only
      ? index.subscribeChanges((changed) => {
          if (changed !== only) return;
          if (res.writableLength > MAX_BUFFERED) return res.destroy();
          res.write(`event: update\ndata: ${JSON.stringify({ id: changed })}\n\n`);
        })
      : () => {};
    const beat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
    res.on('close', () => {
      unsubscribe();
      unsubscribeChanges();
      clearInterval(beat);
      streams.delete(res);
    });
  });

  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  return {
    app,
    index,
    async listen(host: string, port: number) {
      await app.listen({ host, port });
      const addr = app.server.address();
      const p = typeof addr === 'object' && addr ? addr.port : port;
      return `http://${host.includes(':') ? `[${host}]` : host}:${p}`;
    },
    async close() {
      index.stop();
      await app.close();
    },
  };
}
