/** `waba-migrate status <id>` and `waba-migrate list`: read-only, no lock, no token. */
import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import type { MigrationView } from '../../runner/view.js';

/** States where the migration waits for a person (or is over): `status --watch` stops there. */
const PERSON_OR_END = new Set(['awaiting_code', 'blocked', 'failed', 'completed', 'cancelled']);
/** Over for good: nobody can hold these, so no lock probe. */
const FINAL = new Set(['completed', 'cancelled']);

/**
 * A streamed listing holds one document at a time, but V8 grows its young generation (to 32 MB
 * of semi-spaces here) whenever enough objects have survived collections in total, which a long
 * stream always reaches: `list --json` over 100,000 PostgreSQL rows peaked at 155 MB RSS with a
 * live set of about 25 MB, and at 106 MB (and no slower) with the young generation kept at its
 * starting size (bench P3). Heap-size flags cannot be set once V8 runs, but the growth factor is
 * read each time the young generation would grow, so it still applies. Set first thing, before
 * this command's modules load (they grew it too: 123 MB when set after them). A V8 that did not
 * know the flag would print one "unrecognized flag" line on stderr and change nothing else: the
 * JSON on stdout stays whole, only the memory bound is lost (bench P3 would show it).
 */
function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

export function registerStatus(program: Command): void {
  program
    .command('status <id>')
    .description('where one migration stands and what a person must do next')
    .option('--watch', 'follow it until it needs a person or ends (Ctrl-C stops watching)')
    .option('--interval <ms>', 'with --watch: how often to look again', '1000')
    .action(async (id: string, o: { watch?: boolean; interval: string }, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { getView } = await import('../../runner/read.js');
      const { openStore } = await import('../../store/open.js');
      const { checksTable, printJson, printView } = await import('../output.js');
      const { UsageError } = await import('../errors.js');
      const g = globals(cmd);
      const store = await openStore(g.store);
      const interval = Number(o.interval);
      if (!Number.isFinite(interval) || interval < 50) throw new UsageError(`--interval: ${JSON.stringify(o.interval)} must be a number of milliseconds >= 50`, 'interval');
      const show = async (view: MigrationView) => {
        const holder = FINAL.has(view.state) ? null : await store.holder(id);
        if (g.json) return printJson(holder ? { ...view, runningIn: holder } : view);
        printView(view, { localTime: g.localTime, holder });
        if (view.state !== 'blocked' && view.checks.length && g.verbosity >= 0) process.stdout.write(`${checksTable(view.checks)}\n`);
      };
      let view = await getView(store, id, g.notifyUrl).catch(async (e) => {
        await store.close();
        throw e;
      });
      if (!o.watch) return show(view).finally(() => store.close());
      // Watch: print on every change (the store tells us, with a poll as a safety net) until a
      // person is needed or the migration is over.
      let last = '';
      const stop = new AbortController();
      const onSig = () => stop.abort();
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      const unwatch = store.watch((changed) => {
        if (changed === id) wake();
      });
      let wake = () => {};
      try {
        for (;;) {
          const key = `${view.state}|${view.updatedAt}`;
          if (key !== last) {
            last = key;
            if (!g.json && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
            await show(view);
          }
          if (PERSON_OR_END.has(view.state) || stop.signal.aborted) return;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, interval);
            wake = () => {
              clearTimeout(t);
              resolve();
            };
            stop.signal.addEventListener('abort', () => wake(), { once: true });
          });
          if (stop.signal.aborted) return;
          view = await getView(store, id, g.notifyUrl);
        }
      } finally {
        unwatch();
        await store.close();
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });

  program
    .command('list')
    .description('every migration in the store: newest first (--json and pages: id order)')
    .option('--state <state>', 'only migrations in this state (e.g. awaiting_code)')
    .option('--phone <e164>', 'only migrations of this number')
    .option('--batch <id>', 'only migrations of this batch')
    .option('--limit <n>', 'at most n migrations (a page, in id order)')
    .option('--after <id>', 'only ids after this one (the next page starts after the last id shown; id order)')
    .action(async (o: { state?: string; phone?: string; batch?: string; limit?: string; after?: string }, cmd: Command) => {
      // Only the streamed listing: the table holds every view, and a small young generation
      // made that slower and bigger (100,000 rows: 19 s / 1.07 GB instead of 17 s / 0.82 GB).
      if (cmd.optsWithGlobals<{ json?: boolean }>().json === true) keepYoungGenerationSmall();
      const { globals } = await import('../globals.js');
      const { toView } = await import('../../runner/view.js');
      const { parsePhone } = await import('../../runner/validate.js');
      const { openStore } = await import('../../store/open.js');
      const { EXIT, SilentExit } = await import('../errors.js');
      const { renderTable, formatTime, localizeSentence } = await import('../format.js');
      const { runningText } = await import('../output.js');
      const g = globals(cmd);
      const { UsageError } = await import('../errors.js');
      const page: { limit?: number; after?: string } = {};
      if (o.limit !== undefined) {
        const n = Number(o.limit);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit: ${JSON.stringify(o.limit)} is not a positive whole number (e.g. --limit 50)`, 'limit');
        page.limit = n;
      }
      if (o.after !== undefined) page.after = o.after;
      const paged = page.limit !== undefined || page.after !== undefined;
      const store = await openStore(g.store);
      const phone = o.phone !== undefined ? parsePhone(o.phone, 'phone').e164 : undefined;
      let skipped = 0;
      const problem = (e: { message: string }) => {
        skipped++;
        process.stderr.write(`waba-migrate: skipped ${e.message}\n`);
      };
      const now = Date.now();
      const match = (v: MigrationView, batch: string | null) =>
        (o.state === undefined || v.state === o.state) && (phone === undefined || v.phone === phone) && (o.batch === undefined || batch === o.batch);
      const done = () => {
        if (skipped) throw new SilentExit(EXIT.stateDocument);
      };
      let views: MigrationView[] = [];
      let holderOf: (id: string) => { pid: number; host: string; since: string } | null = () => null;
      /** Every matching view, in id order, handed to `onView` as its document is read. */
      const eachMatching = (onView: (v: MigrationView) => void) =>
        store.scan(
          (m) => {
            if (m.error) problem(m.error);
            else if (m.doc) {
              const v = toView(m.doc, now);
              if (match(v, (m.doc as { batch?: string | null }).batch ?? null)) onView(v);
            }
            return null;
          },
          { ...page, withoutHistory: true },
        );
      try {
        // Who runs what, read once (one kernel lock table read / one query), not once per row.
        holderOf = await store.holders();
        if (g.json) {
          // Streamed in id order (stable for scripts and paging): one document at a time in
          // memory, whatever the store's size (bench figure 4, P3), written in 64 KB pieces
          // (one write per migration was a tenth of the time).
          let buf = '[';
          let sep = '';
          await eachMatching((v) => {
            const h = FINAL.has(v.state) ? null : holderOf(v.id);
            buf += `${sep}${JSON.stringify(h ? { ...v, runningIn: h } : v)}`;
            sep = ',';
            if (buf.length >= 1 << 16) {
              process.stdout.write(buf);
              buf = '';
            }
          });
          process.stdout.write(`${buf}]\n`);
          return done();
        }
        await eachMatching((v) => views.push(v));
      } finally {
        await store.close();
      }
      // The table a person reads is newest first; pages (--limit/--after) keep the id order.
      if (!paged) views = views.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
      const holders = new Map<string, { pid: number; host: string; since: string }>();
      for (const v of views) {
        const h = FINAL.has(v.state) ? null : holderOf(v.id);
        if (h) holders.set(v.id, h);
      }
      if (!views.length) {
        const filtered = o.state !== undefined || phone !== undefined || o.batch !== undefined;
        process.stdout.write(`No migrations${filtered ? ' matching the filters' : ''} in ${g.stateDir}.\n`);
        return done();
      }
      const rows = views.map((v) => {
        const h = holders.get(v.id);
        return [v.id, v.state, v.phone, v.phoneNumberId ?? '-', formatTime(v.updatedAt, g.localTime), h ? runningText(h, g.localTime).replace('<id>', v.id) : localizeSentence(v.nextAction, g.localTime)];
      });
      const head = ['id', 'state', 'phone', 'phone_number_id', 'updated', 'next action'];
      process.stdout.write(`${await renderTable(head, rows, { fixed: [true, true, true, true, false, false], weights: [0, 0, 0, 0, 1, 4] })}\n`);
      return done();
    });
}
