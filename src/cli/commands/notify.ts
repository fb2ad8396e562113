/** `waba-migrate notify list|deliver|retry|test`: the notification outbox (src/notify/). */
import type { Command } from 'commander';

/** A test notification the receiver did not accept. */
export class NotifyTestFailedError extends Error {
  override readonly name = 'NotifyTestFailedError';
}

interface Row {
  id: string;
  owner: string;
  ownerKind: 'migration' | 'batch';
  seq: number;
  type: string;
  /** `endpoint-disabled`: pending, held back because the endpoint answered 410 Gone. */
  status: 'pending' | 'delivered' | 'dead' | 'endpoint-disabled';
  attempts: number;
  createdAt: string;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  lastError: string | null;
  /** Set when status is `endpoint-disabled`. */
  endpointDisabled?: { key: string; endpoint: string; disabledAt: string; eventId: string; owner: string | null; label: string };
}

export function registerNotify(program: Command): void {
  const notify = program.command('notify').description('progress notifications: list, deliver pending ones, retry dead ones, send a test');

  notify
    .command('list')
    .description('pending and dead notifications (with --all, delivered ones too)')
    .option('--all', 'include delivered notifications')
    .action(async (o: { all?: boolean }, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { openStore } = await import('../../store/open.js');
      const { disabledFor, disabledLabel } = await import('../../notify/endpoint.js');
      const g = globals(cmd);
      const store = await openStore(g.store);
      const disabledList = await store.disabledEndpoints();
      const disabled = disabledFor(disabledList, g.notifyUrl);
      const held = disabled ? { key: disabled.key, endpoint: disabled.endpoint, disabledAt: disabled.disabledAt, eventId: disabled.eventId, owner: disabled.owner, label: disabledLabel(disabled) } : null;
      const rows: Row[] = [];
      const push = (ownerKind: Row['ownerKind'], owner: string, outbox: import('../../store/document.js').OutboxEntry[] | undefined) => {
        for (const e of outbox ?? []) {
          const status = e.deliveredAt !== null ? 'delivered' : e.dead ? 'dead' : held ? 'endpoint-disabled' : 'pending';
          if (status === 'delivered' && !o.all) continue;
          const waiting = status === 'pending' || status === 'endpoint-disabled';
          rows.push({
            id: e.id, owner, ownerKind, seq: e.seq, type: e.type, status, attempts: e.attempts, createdAt: e.createdAt,
            nextAttemptAt: waiting ? e.nextAttemptAt : null, deliveredAt: e.deliveredAt, lastError: e.lastError,
            ...(status === 'endpoint-disabled' && held ? { endpointDisabled: held } : {}),
          });
        }
      };
      await store.scan((m) => (m.error ? process.stderr.write(`waba-migrate: skipped ${m.error.message}\n`) : push('migration', m.id, m.doc?.outbox)));
      for (const b of await store.listBatches()) push('batch', b.id, b.outbox);
      if (g.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (!rows.length) {
        process.stdout.write(o.all ? 'No notifications.\n' : 'No pending or dead notifications.\n');
        return;
      }
      const { default: Table } = await import('cli-table3');
      const t = new Table({ head: ['event id', 'migration / batch', '#', 'type', 'status', 'tries', 'next attempt / delivered', 'last error'], colWidths: [38, 24, 4, 26, 19, 7, 34, 40], wordWrap: true, style: { head: [], border: [] } });
      for (const r of rows)
        t.push([r.id, r.ownerKind === 'batch' ? `batch ${r.owner}` : r.owner, r.seq, r.type, r.endpointDisabled ? 'endpoint disabled' : r.status, r.attempts, r.deliveredAt ?? (r.endpointDisabled ? `410 at ${r.endpointDisabled.disabledAt}` : r.nextAttemptAt) ?? '-', r.lastError ?? '']);
      process.stdout.write(`${t.toString()}\n`);
      for (const d of disabledList)
        process.stdout.write(`Endpoint ${d.endpoint} (key ${d.key.slice(0, 12)}): ${disabledLabel(d)}: it answered 410 Gone to event ${d.eventId}${d.owner ? ` of ${d.owner}` : ''}. Nothing is sent to it; its events wait. Fix the receiver, then \`waba-migrate notify enable\`.\n`);
    });

  notify
    .command('deliver')
    .description('send every notification that is due (what `work` does continuously)')
    .option('--follow', 'keep going, waiting for retries, until nothing is pending')
    .action(async (o: { follow?: boolean }, cmd: Command) => {
      const { globals, readNotify } = await import('../context.js');
      const { deliverPending } = await import('../../notify/deliver.js');
      const { openStore } = await import('../../store/open.js');
      const g = globals(cmd);
      const opts = readNotify(g, true)!;
      const store = await openStore(g.store);
      const total = { attempted: 0, delivered: 0, failed: 0, dead: 0, pending: 0, gone: false, skippedLocked: [] as string[], unrecorded: [] as string[], disabledEndpoint: null as import('../../store/document.js').DisabledEndpoint | null };
      for (;;) {
        const s = await deliverPending(store, opts);
        total.attempted += s.attempted;
        total.delivered += s.delivered;
        total.failed += s.failed;
        total.dead += s.dead;
        total.pending = s.pending;
        total.gone ||= s.gone;
        total.skippedLocked = s.skippedLocked;
        total.unrecorded = s.unrecorded;
        total.disabledEndpoint = s.disabledEndpoint;
        for (const p of s.problems) process.stderr.write(`waba-migrate: skipped ${p}\n`);
        if (!o.follow || s.pending === 0 || s.gone || s.disabled) break;
        // Sleep until the next one is due (at least 100 ms; one in use elsewhere is tried again in 1 s).
        const wait = s.skippedLocked.length || s.unrecorded.length ? 1000 : s.nextAt === null ? 1000 : Math.max(100, s.nextAt - Date.now());
        await new Promise((r) => setTimeout(r, Math.min(wait, 60_000)));
      }
      if (g.json) {
        process.stdout.write(`${JSON.stringify(total)}\n`);
        return;
      }
      process.stdout.write(
        `delivered ${total.delivered}, failed ${total.failed}, dead ${total.dead}, still pending ${total.pending}${total.skippedLocked.length ? `; being delivered by another process: ${total.skippedLocked.join(', ')}` : ''}${total.unrecorded.length ? `; sent but not yet recorded (a run held the migration; sent again later with the same id): ${total.unrecorded.join(', ')}` : ''}\n`,
      );
      const d = total.disabledEndpoint;
      if (d) process.stderr.write(`waba-migrate: endpoint ${d.endpoint} is disabled: it answered 410 Gone at ${d.disabledAt} (event ${d.eventId}). Nothing is sent to it; events stay pending. Fix the receiver, then \`waba-migrate notify enable\`.\n`);
    });

  notify
    .command('retry <id>')
    .description('make dead notifications pending again and try them now: an event id, or a migration or batch id for all of its own')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { globals, readNotify } = await import('../context.js');
      const { deliverOne, revive } = await import('../../notify/deliver.js');
      const { openStore } = await import('../../store/open.js');
      const { UsageError } = await import('../errors.js');
      const g = globals(cmd);
      const opts = readNotify(g);
      const store = await openStore(g.store);
      // Which record holds it: an event id is looked up, anything else is a migration or batch id.
      let owner: { kind: 'migration' | 'batch'; id: string } | null = null;
      let eventId: string | null = null;
      if (id.startsWith('evt_')) {
        eventId = id;
        const hits = (await store.scan((m) => (m.doc?.outbox?.some((e) => e.id === id) ? m.id : null))).filter((x): x is string => x !== null);
        if (hits[0]) owner = { kind: 'migration', id: hits[0] };
        else for (const b of await store.listBatches()) if (b.outbox?.some((e) => e.id === id)) owner = { kind: 'batch', id: b.id };
      } else if (await store.exists(id).catch(() => false)) owner = { kind: 'migration', id };
      else if ((await store.listBatches()).some((b) => b.id === id)) owner = { kind: 'batch', id };
      if (!owner) throw new UsageError(`id: no notification, migration or batch "${id}"; see \`waba-migrate notify list\``);

      // Revive under the owner's lock (an instant), then deliver like everyone else: under the
      // delivery lock, without holding the migration during the POSTs.
      const lease = owner.kind === 'migration' ? await store.lock(owner.id) : await store.lockBatch(owner.id);
      let revived = 0;
      try {
        if (owner.kind === 'migration') {
          const h = await store.open(owner.id);
          revived = revive(h.data.outbox ?? [], eventId, Date.now());
          if (revived) await h.save();
        } else {
          const b = await store.loadBatch(owner.id);
          revived = revive(b.outbox ?? [], eventId, Date.now());
          if (revived) await store.saveBatch(b);
        }
      } finally {
        await lease.release();
      }
      const result = opts && revived ? await deliverOne(store, owner.kind, owner.id, opts) : null;
      for (const p of result?.problems ?? []) process.stderr.write(`waba-migrate: ${p}\n`);
      const summary = { id, owner: owner.id, revived, delivered: result?.delivered ?? 0, failed: result?.failed ?? 0, dead: result?.dead ?? 0 };
      if (g.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      if (!revived) process.stdout.write(`Nothing to retry for ${id}: its notifications are delivered.\n`);
      else if (!opts) process.stdout.write(`${revived} notification(s) of ${owner.id} are pending again; set --notify-url / WABA_NOTIFY_URL and run \`waba-migrate notify deliver\` to send them.\n`);
      else if (result?.disabled || result?.gone) process.stdout.write(`${revived} notification(s) of ${owner.id} are pending again, but the endpoint is disabled (410 Gone): fix the receiver, then \`waba-migrate notify enable\`.\n`);
      else if (result?.locked) process.stdout.write(`${revived} notification(s) of ${owner.id} are pending again; another process is delivering them right now.\n`);
      else process.stdout.write(`${revived} notification(s) of ${owner.id} retried: delivered ${summary.delivered}, failed ${summary.failed}, dead ${summary.dead}.\n`);
    });

  notify
    .command('enable [key]')
    .description('re-enable an endpoint that answered 410 Gone (that of --notify-url, the only one, or the key prefix shown by `notify list --json`), then deliver what waited, in order')
    .action(async (key: string | undefined, _o: unknown, cmd: Command) => {
      const { globals, readNotify } = await import('../context.js');
      const { deliverPending, endpointKey } = await import('../../notify/deliver.js');
      const { openStore } = await import('../../store/open.js');
      const { UsageError } = await import('../errors.js');
      const g = globals(cmd);
      const store = await openStore(g.store);
      const list = await store.disabledEndpoints();
      let target: import('../../store/document.js').DisabledEndpoint | undefined;
      if (key !== undefined) {
        if (!/^[0-9a-f]{6,64}$/.test(key)) throw new UsageError(`key: "${key}" is not an endpoint key: give at least 6 hex digits of the key that \`waba-migrate notify list --json\` shows`, 'key');
        const hits = list.filter((d) => d.key.startsWith(key));
        if (hits.length > 1) throw new UsageError(`key: "${key}" matches ${hits.length} disabled endpoints; give more digits`, 'key');
        target = hits[0];
        if (!target) throw new UsageError(`key: no disabled endpoint with key ${key}; disabled: ${list.map((d) => `${d.key.slice(0, 12)} (${d.endpoint})`).join(', ') || 'none'}`, 'key');
      } else if (g.notifyUrl) {
        const k = endpointKey(g.notifyUrl);
        target = list.find((d) => d.key === k);
      } else if (list.length > 1) {
        throw new UsageError(`endpoint: ${list.length} endpoints are disabled (${list.map((d) => `${d.key.slice(0, 12)} ${d.endpoint}`).join('; ')}): name one with --notify-url or its key`, 'key');
      } else target = list[0];
      if (!target) {
        if (g.json) process.stdout.write(`${JSON.stringify({ enabled: null })}\n`);
        else process.stdout.write('No disabled endpoint to enable: nothing answered 410 Gone.\n');
        return;
      }
      await store.enableEndpoint(target.key);
      // Deliver what waited, now, when this command can sign (URL and secret given).
      let opts: ReturnType<typeof readNotify>;
      try {
        opts = readNotify(g);
      } catch {
        opts = undefined;
      }
      const s = opts && endpointKey(opts.url) === target.key ? await deliverPending(store, opts) : null;
      if (g.json) {
        process.stdout.write(`${JSON.stringify({ enabled: target, delivery: s ? { delivered: s.delivered, failed: s.failed, dead: s.dead, pending: s.pending, disabledEndpoint: s.disabledEndpoint } : null })}\n`);
        return;
      }
      process.stdout.write(`Endpoint ${target.endpoint} enabled again (it answered 410 Gone at ${target.disabledAt}, event ${target.eventId}).\n`);
      if (s) process.stdout.write(`delivered ${s.delivered}, failed ${s.failed}, dead ${s.dead}, still pending ${s.pending}\n`);
      else process.stdout.write('Pending notifications go out with the next run, `waba-migrate work`, or `waba-migrate notify deliver`.\n');
      if (s?.disabledEndpoint) process.stderr.write(`waba-migrate: the receiver answered 410 Gone again at ${s.disabledEndpoint.disabledAt}: the endpoint is disabled again.\n`);
    });

  notify
    .command('test')
    .description('send one signed test notification (type notify.test) and report the answer; nothing is stored')
    .action(async (_o: unknown, cmd: Command) => {
      const { globals, readNotify } = await import('../context.js');
      const { sendPayload, testPayload } = await import('../../notify/deliver.js');
      const g = globals(cmd);
      const opts = readNotify(g, true)!;
      const payload = testPayload(Date.now());
      const r = await sendPayload(opts, payload);
      if (g.json) process.stdout.write(`${JSON.stringify({ id: payload.id, url: new URL(opts.url).origin, ...r })}\n`);
      if (!r.ok) throw new NotifyTestFailedError(`test notification ${payload.id} to ${new URL(opts.url).origin} failed: ${r.error}`);
      if (!g.json) process.stdout.write(`Test notification ${payload.id} delivered to ${new URL(opts.url).origin} (HTTP ${r.status}).\n`);
    });
}
