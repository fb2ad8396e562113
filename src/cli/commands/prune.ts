/**
 * `waba-migrate prune`: remove cancelled migrations' documents, and only those. Each removal is
 * first appended (and fsynced) to `<state dir>/pruned.log`, one JSON line with the whole document,
 * so nothing is lost without a record; unfinished or completed work is never touched.
 */
import type { Command } from 'commander';

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description('remove cancelled migrations (asks first; each is recorded in pruned.log; nothing else is touched)')
    .option('-y, --yes', 'do not ask (required without a TTY)')
    .option('--dry-run', 'only list what would be removed')
    .action(async (o: { yes?: boolean; dryRun?: boolean }, cmd: Command) => {
      const { open, rm } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const { hostname, userInfo } = await import('node:os');
      const { globals, interactive } = await import('../context.js');
      const { FileStore } = await import('../../store/store.js');
      const { EXIT, SilentExit, UsageError } = await import('../errors.js');
      const { printJson } = await import('../output.js');
      const g = globals(cmd);
      // Removing a document is a file-store operation (the store contract has no delete).
      if (!g.store.startsWith('file:')) throw new UsageError(`prune works on a file store (--store file:<dir>); ${g.stateDir} is not one`, 'store');
      const store = new FileStore(g.stateDir);
      const ids = (await store.scan((m) => (m.doc && m.doc.state === 'cancelled' ? m.doc.id : null))).filter((x): x is string => x !== null);
      if (!ids.length || o.dryRun) {
        if (g.json) printJson({ pruned: [], wouldPrune: ids });
        else process.stdout.write(ids.length ? `Would remove ${ids.length} cancelled migration(s): ${ids.join(', ')}\n` : `No cancelled migrations in ${g.stateDir}.\n`);
        return;
      }
      if (!o.yes) {
        if (!interactive() || g.json) throw new UsageError(`prune: pass --yes to remove ${ids.length} cancelled migration(s) (no TTY to ask on); nothing was changed`, 'yes');
        const { default: confirm } = await import('@inquirer/confirm');
        if (!(await confirm({ message: `Remove ${ids.length} cancelled migration(s) (${ids.join(', ')})? Each is kept in pruned.log.`, default: false }, { output: process.stderr }))) {
          process.stderr.write('Nothing removed.\n');
          throw new SilentExit(EXIT.ok);
        }
      }
      let by = 'unknown';
      try {
        by = userInfo().username;
      } catch {
        // no user name on this system
      }
      const pruned: string[] = [];
      for (const id of ids) {
        const lease = await store.lock(id);
        try {
          // Under the lock, read again: only a document that is still cancelled goes.
          const doc = await store.load(id);
          if (doc.state !== 'cancelled') continue;
          const log = await open(join(g.stateDir, 'pruned.log'), 'a', 0o600);
          try {
            await log.write(`${JSON.stringify({ prunedAt: new Date().toISOString(), by, host: hostname(), id, document: doc })}\n`);
            await log.sync();
          } finally {
            await log.close();
          }
          await rm(store.file(id));
          pruned.push(id);
        } finally {
          await lease.release();
        }
      }
      if (g.json) printJson({ pruned, log: join(g.stateDir, 'pruned.log') });
      else process.stdout.write(`Removed ${pruned.length} cancelled migration(s): ${pruned.join(', ')}; recorded in ${join(g.stateDir, 'pruned.log')}\n`);
    });
}
