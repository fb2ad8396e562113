/** `waba-migrate store copy --from <url> --to <url>`: move state between stores (see store/copy.ts). */
import type { Command } from 'commander';

export function registerStore(program: Command): void {
  const store = program.command('store').description('manage where migrations are stored');
  store
    .command('copy')
    .description('copy every migration (with history) and batch from one store to another; idempotent, verified')
    .requiredOption('--from <url>', 'source store: file:<dir> or postgres://user@host:port/db')
    .requiredOption('--to <url>', 'target store: file:<dir> or postgres://user@host:port/db')
    .action(async (o: { from: string; to: string }, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { openStore, parseStoreUrl } = await import('../../store/open.js');
      const { copyStore } = await import('../../store/copy.js');
      const { printJson } = await import('../output.js');
      const { UsageError } = await import('../errors.js');
      const g = globals(cmd);
      const a = parseStoreUrl(o.from);
      const b = parseStoreUrl(o.to);
      if (JSON.stringify(a) === JSON.stringify(b)) throw new UsageError('--to: it is the same store as --from; name a different one');
      const from = await openStore(o.from);
      const to = await openStore(o.to, { fsync: 'always' });
      try {
        const report = await copyStore(from, to);
        if (g.json) return printJson(report);
        process.stdout.write(
          `Copied ${report.copied} migrations (${report.unchanged} already there, identical) and ${report.batchesCopied} batches from ${report.from} to ${report.to}.\n` +
            `Verified: ${report.migrations} migrations and ${report.historyEntries} history entries read back identical; ${report.batches} batches.\n`,
        );
      } finally {
        await from.close();
        await to.close();
      }
    });
  store.commands.forEach((c) => c.exitOverride());
  store.exitOverride();
}
