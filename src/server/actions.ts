/**
 * Optional write actions (`serve --allow-actions`): retry now, cancel with a reason, submit a
 * code. Each goes through `MigrationEngine` with the operator's name as the history's `by`, so
 * the dashboard never writes a document itself. The register PIN is refused unless the server
 * was started with `--allow-pin`, and then accepted only from a loopback client (this server
 * has no TLS; anything else would carry the PIN in clear over a network).
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { MigrationEngine } from '../runner/engine.js';
import { parseMigrationId } from '../runner/validate.js';
import { toView } from '../runner/view.js';
import type { MigrationStore } from '../store/store.js';
import { isLoopback } from './auth.js';

export interface ActionOptions {
  /** An engine that records `operator` as the person acting (`by` in the history). */
  engine(operator: string): MigrationEngine;
  /** Accept the register PIN with a code (loopback clients only). */
  allowPin: boolean;
}

export type ActionName = 'retry' | 'cancel' | 'code';

export class ForbiddenError extends Error {
  override readonly name = 'ForbiddenError';
}

const Operator = z
  .string({ error: 'operator: give your name (it is recorded in the history)' })
  .trim()
  .regex(/^[\p{L}\p{N} .'_@-]{2,64}$/u, 'operator: 2-64 letters, digits, spaces or . \' _ @ -');
const Bodies = {
  retry: z.object({ operator: Operator }),
  cancel: z.object({ operator: Operator, reason: z.string({ error: 'reason: say why (recorded in the history)' }).trim().min(3, 'reason: at least 3 characters').max(500, 'reason: at most 500 characters') }),
  code: z.object({ operator: Operator, code: z.string({ error: 'code: the 6 digits Meta sent' }), pin: z.string().optional() }),
};

class BodyError extends Error {
  override readonly name = 'InputError';
}

function parseBody<K extends ActionName>(name: K, raw: unknown): z.infer<(typeof Bodies)[K]> {
  const r = Bodies[name].safeParse(raw ?? {});
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new BodyError(i.message.includes(':') ? i.message : `${String(i.path[0] ?? 'body')}: ${i.message}`);
  }
  return r.data as z.infer<(typeof Bodies)[K]>;
}

/** Runs one action; resolves to what the API answers. */
export async function runAction(store: MigrationStore, opts: ActionOptions, name: ActionName, id: string, raw: unknown, req: FastifyRequest): Promise<{ status: number; body: unknown }> {
  parseMigrationId(id, 'id');
  if (name === 'cancel') {
    const b = parseBody('cancel', raw);
    return { status: 200, body: await opts.engine(b.operator).cancel(id, b.reason) };
  }
  if (name === 'code') {
    const b = parseBody('code', raw);
    const pin = b.pin?.trim() ? b.pin : undefined;
    if (pin && !opts.allowPin) throw new ForbiddenError('pin: this dashboard does not accept the register PIN (start it with --allow-pin, or supply the PIN with `waba-migrate resume`)');
    if (pin && !isLoopback(req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '')) throw new ForbiddenError('pin: the register PIN is accepted only from this machine (loopback): this server has no TLS');
    return { status: 200, body: await opts.engine(b.operator).resume(id, { code: b.code, ...(pin ? { pin } : {}) }) };
  }
  // Retry now: the run may wait and call Meta for a while; answer once it has started (or
  // failed to start: locked, finished, unknown), and let the event stream show the rest.
  const b = parseBody('retry', raw);
  const run = opts.engine(b.operator).resume(id);
  const early = await Promise.race([run.then((v) => ({ v }), (e: unknown) => ({ e })), new Promise<null>((r) => setTimeout(r, 300, null))]);
  if (early && 'e' in early) throw early.e;
  // A later failure is recorded in the migration itself (its state and history); say it here too.
  run.catch((e: Error) => process.stderr.write(`waba-migrate serve: retry of ${id} by ${b.operator}: ${e.message}\n`));
  return { status: early ? 200 : 202, body: early ? early.v : toView(await store.load(id)) };
}

/**
 * Registers the API routes (JSON) and the page routes (forms, answered with a redirect back).
 * A browser's form post rides on the session cookie, so it must also come from this origin.
 */
export async function registerActions(app: FastifyInstance, store: MigrationStore, opts: ActionOptions, renderError: (reply: FastifyReply, status: number, message: string) => unknown): Promise<void> {
  await app.register(formbody, { bodyLimit: 4096 });
  const sameOrigin = (req: FastifyRequest) => {
    if (!(req as FastifyRequest & { viaCookie?: boolean }).viaCookie) return true;
    // Browsers say where a request comes from: Sec-Fetch-Site, or Origin (sent as "null" under
    // some referrer policies, hence both).
    if (req.headers['sec-fetch-site'] === 'same-origin') return true;
    const origin = req.headers.origin;
    return origin !== undefined && origin === `${req.protocol}://${req.headers.host}`;
  };
  for (const name of ['retry', 'cancel', 'code'] as const) {
    app.post(`/api/migrations/:id/${name}`, { bodyLimit: 4096 }, async (req, reply) => {
      if (!sameOrigin(req)) throw new ForbiddenError('origin: a cookie-authenticated request must come from this dashboard');
      const r = await runAction(store, opts, name, (req.params as { id: string }).id, req.body, req);
      return reply.code(r.status).header('cache-control', 'no-store').send(r.body);
    });
    app.post(`/migrations/:id/${name}`, { bodyLimit: 4096 }, async (req, reply) => {
      const id = (req.params as { id: string }).id;
      if (!sameOrigin(req)) return renderError(reply, 403, 'This form must be sent from the dashboard itself.');
      try {
        await runAction(store, opts, name, id, req.body, req);
      } catch (e) {
        const err = e as Error;
        const status = err.name === 'ForbiddenError' ? 403 : ['InputError', 'QueryError'].includes(err.name) ? 400 : ['WrongStateError', 'MigrationLockedError', 'NumberBusyError', 'ResendTooSoonError'].includes(err.name) ? 409 : err.name === 'MigrationNotFoundError' ? 404 : 500;
        return renderError(reply, status, status === 500 ? 'internal error' : err.message);
      }
      return reply.header('cache-control', 'no-store').redirect(`/migrations/${encodeURIComponent(id)}`, 303);
    });
  }
}
