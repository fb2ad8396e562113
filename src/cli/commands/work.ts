/** `waba-migrate work`: drive every migration that can move without a person (see src/batch/worker.ts). */
import type { Command } from 'commander';
import type { CallSummary } from '../../graph/client.js';
import type { TransitionInfo } from '../../runner/engine.js';

export function registerWork(program: Command): void {
  program
    .command('work')
    .description('drive every migration that can move without a person; sleeps until the next is due; SIGINT/SIGTERM stop it cleanly')
    .option('--concurrency <n>', 'migrations at once (default 4)')
    .option('--once', 'one pass over what is due now, then exit (for cron)')
    .option('--batch <id>', "only this batch's migrations")
    .option('--backup-password-file <path>', 'migrations from On-Premises: file holding the backup password (else env WABA_BACKUP_PASSWORD; admin access from WABA_ONPREM_USER+WABA_ONPREM_PASSWORD or WABA_ONPREM_TOKEN)')
    .action(async (o: { concurrency?: string; once?: boolean; batch?: string; backupPasswordFile?: string }, cmd: Command) => {
      const { globals, readPin, readToken } = await import('../context.js');
      const { parseMigrationId, InputError } = await import('../../runner/validate.js');
      const { Worker } = await import('../../batch/index.js');
      const { callLine, printJson, transitionLine } = await import('../output.js');
      const g = globals(cmd);
      const concurrency = o.concurrency === undefined ? 4 : Number(o.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new InputError('--concurrency', `${JSON.stringify(o.concurrency)} must be a whole number from 1 to 256`);
      if (o.batch !== undefined) parseMigrationId(o.batch, '--batch');
      const token = readToken(g);
      // Never prompts: a worker runs unattended. Without a PIN it leaves PIN-held migrations resting.
      const pin = await readPin(g, false);
      // Migrations from On-Premises continue with the same secrets as `start --from onprem` (never
      // a prompt: a worker runs unattended; WABA_WEBHOOK_URL is not used: one URL for every number).
      const { readOnPremSecrets } = await import('../onprem.js');
      const onprem = await readOnPremSecrets(o, false);
      delete onprem.webhookUrl;
      const { graphOptions, storeFor, readNotify } = await import('../context.js');
      const notify = readNotify(g);
      const store = await storeFor(g);
      if (o.batch !== undefined) await store.loadBatch(o.batch);
      const controller = new AbortController();
      // Every run and every wait for Meta's rate limit listens to it: more than Node's default 10.
      (await import('node:events')).EventEmitter.setMaxListeners(1_000, controller.signal);
      const stop = (sig: NodeJS.Signals) => {
        if (!g.json) process.stderr.write(`${sig}: finishing the runs in flight, then exiting\n`);
        controller.abort(new Error(`stopped by ${sig}`));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // --quiet: only errors (and the closing summary); the progress lines are for a person watching.
      const log = (s: string, always = false) => {
        if (!g.json && (always || g.verbosity >= 0)) process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
      };
      const worker = new Worker({
        store,
        token,
        ...graphOptions(g),
        concurrency,
        once: o.once === true,
        ...(o.batch !== undefined ? { batch: o.batch } : {}),
        ...(pin ? { pin } : {}),
        ...(notify ? { notify } : {}),
        signal: controller.signal,
        ...(Object.keys(onprem).length ? { onprem } : {}),
        // --verbose: one stderr line per Graph call and per transition.
        ...(g.verbosity >= 1
          ? {
              onCall: (c: CallSummary) => process.stderr.write(`${callLine(c)}\n`),
              onTransition: (t: TransitionInfo) => process.stderr.write(`${transitionLine(t)}\n`),
            }
          : {}),
        onEvent: (e) => {
          if (e.type === 'done') log(`${e.id} → ${e.view.state}${e.view.state === 'completed' ? ` (phone_number_id ${e.view.phoneNumberId})` : ''}`);
          else if (e.type === 'error') log(`${e.id}: ${e.error}`, true);
          else if (e.type === 'throttle') log(e.message);
          else if (e.type === 'notify') log(`notifications: ${e.delivered} delivered, ${e.failed} failed, ${e.pending} pending${e.disabled ? ' (endpoint disabled by a 410: waba-migrate notify enable)' : ''}`);
          else if (e.type === 'sleep') log(e.until === null ? 'nothing due: waiting for new work' : `next due at ${new Date(e.until).toISOString().slice(11, 19)} UTC`);
        },
      });
      if (!pin) log('no register PIN (WABA_REGISTER_PIN / --pin-file): migrations waiting for it are left for resume or batch codes');
      const report = await worker.run().finally(() => store.close());
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (g.json) printJson(report);
      else process.stdout.write(`work: ${report.runs} runs, ${report.completed} completed, ${report.errors} errors, ${report.skippedLocked} skipped (locked elsewhere)\n`);
      process.exitCode = 0;
    });
}
