/** `waba-migrate batch …`: many numbers as one piece of work (see src/batch/). */
import type { Command } from 'commander';
import { EXIT, exitCodeFor, UsageError } from '../errors.js';
import type { GlobalOptions } from '../globals.js';
import type { OnPremSecrets, TransitionInfo } from '../../runner/engine.js';
import type { CallSummary } from '../../graph/client.js';
import type { BatchSummary } from '../../batch/read.js';
import type { BatchEvent } from '../../batch/runner.js';

/**
 * The On-Premises secrets for a batch with `from = onprem` rows: exactly as `start --from onprem`
 * reads them (env, --backup-password-file, or a masked prompt), never from the batch file. Missing
 * admin access or backup password is a usage error naming the variables (nothing written).
 * WABA_WEBHOOK_URL is not used: one URL would go to every row; each row carries its own client's
 * webhooks.url (carry_webhook = yes).
 */
async function onPremSecretsFor(rows: number, o: { backupPasswordFile?: string }): Promise<OnPremSecrets | undefined> {
  if (rows === 0) return undefined;
  const { readOnPremSecrets } = await import('../onprem.js');
  try {
    const s = await readOnPremSecrets(o, true);
    delete s.webhookUrl;
    return s;
  } catch (e) {
    if ((e as Error).name !== 'UsageError') throw e;
    throw new UsageError(`${rows} row${rows === 1 ? ' has' : 's have'} from = onprem: ${(e as Error).message}`);
  }
}

function positiveInt(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`${flag}: ${JSON.stringify(raw)} must be a whole number from 1 to 256`);
  return n;
}

async function readInput(path: string, flag: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}): give a readable CSV or JSON Lines file`);
  }
}

/** A runner wired to the CLI: Ctrl-C / SIGTERM stop it cleanly (state saved, locks released). */
async function runner(g: GlobalOptions, opts: { token?: string; total?: number; label?: string; concurrency?: number; onprem?: OnPremSecrets | undefined; onEvent?: (e: BatchEvent) => void }) {
  const { BatchRunner } = await import('../../batch/index.js');
  const { graphOptions, storeFor } = await import('../context.js');
  const { BatchProgress } = await import('../batch-output.js');
  const { callLine, transitionLine } = await import('../output.js');
  // The store the global options select (a state directory, or PostgreSQL).
  const store = await storeFor(g);
  const controller = new AbortController();
  // Every run and every wait for Meta's rate limit listens to it: more than Node's default 10.
  (await import('node:events')).EventEmitter.setMaxListeners(1_000, controller.signal);
  const progress = new BatchProgress(!g.json, opts.total ?? 0);
  const r = new BatchRunner({
    store,
    ...(opts.token ? { token: opts.token } : {}),
    ...graphOptions(g),
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(opts.onprem ? { onprem: opts.onprem } : {}),
    signal: controller.signal,
    onEvent: (e) => {
      progress.event(e);
      opts.onEvent?.(e);
    },
    // --verbose: one stderr line per Graph call and per transition, for every row.
    ...(g.verbosity >= 1
      ? {
          onCall: (c: CallSummary) => process.stderr.write(`${callLine(c)}\n`),
          onTransition: (t: TransitionInfo) => process.stderr.write(`${transitionLine(t)}\n`),
        }
      : {}),
  });
  let stoppedBy: string | null = null;
  const stop = (sig: NodeJS.Signals) => {
    stoppedBy = sig;
    controller.abort(new Error(`stopped by ${sig}`));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { printJson } = await import('../output.js');
  const { printSummary } = await import('../batch-output.js');
  let closed = false;
  const done = () => {
    if (closed) return;
    closed = true;
    progress.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    void store.close();
  };
  const stoppedCode = () => (stoppedBy === 'SIGINT' ? 130 : stoppedBy === 'SIGTERM' ? 143 : null);
  return {
    r,
    progress,
    stoppedCode,
    done,
    /** The run is over: the progress bar goes, the summary is printed, the exit code set. */
    report: (s: BatchSummary) => {
      done();
      if (g.json) printJson(s);
      else printSummary(s);
      process.exitCode = stoppedCode() ?? 0;
    },
  };
}

export function registerBatch(program: Command): void {
  const batch = program.command('batch').description('run many numbers as one batch: start, status, list, resume, cancel, codes');

  batch
    .command('start <file>')
    .description(
      'validate every row of a CSV or JSON Lines file (columns phone, source_waba, dest_waba, …; rows with from = onprem: phone, waba, onprem_url, secrets from env as for start --from onprem), store the batch, then run each number until it needs a person',
    )
    .option('--id <batch-id>', 'batch id (generated when omitted); run again with the same id to continue after a crash')
    .option('--concurrency <n>', 'migrations at once (default 8)')
    .option('--retry-base-ms <ms>', 'backoff base for temporary Graph errors (default 1000), for every row')
    .option('--retry-cap-ms <ms>', 'longest backoff (default 300000)')
    .option('--max-attempts <n>', 'temporary failures tolerated per step (default 8)')
    .option('--resend-cooldown-ms <ms>', 'wait before a code may be resent (default 60000)')
    .option('--backup-password-file <path>', 'rows with from = onprem: file holding the On-Premises backup password (else env WABA_BACKUP_PASSWORD, or a prompt)')
    .action(async (file: string, o: { id?: string; concurrency?: string; retryBaseMs?: string; retryCapMs?: string; maxAttempts?: string; resendCooldownMs?: string; backupPasswordFile?: string }, cmd: Command) => {
      const { policyFrom } = await import('./start.js');
      const { globals, readPin, readToken } = await import('../context.js');
      const g = globals(cmd);
      const concurrency = positiveInt(o.concurrency, '--concurrency');
      const token = readToken(g);
      const text = await readInput(file, 'file');
      const pin = await readPin(g, false);
      const { countOnPremRows } = await import('../../batch/index.js');
      const onprem = await onPremSecretsFor(countOnPremRows(text, file), o);
      const lines = text.split('\n').filter((l) => l.trim()).length;
      const ctx = await runner(g, { token, total: Math.max(0, lines - (text.trimStart().startsWith('{') ? 0 : 1)), ...(concurrency ? { concurrency } : {}), onprem });
      try {
        await ctx.progress.init('batch');
        const policy = policyFrom(o);
        ctx.report(await ctx.r.start(text, { name: file, ...(Object.keys(policy).length ? { policy } : {}), ...(o.id !== undefined ? { id: o.id } : {}), ...(concurrency ? { concurrency } : {}), ...(pin ? { pin } : {}) }));
      } finally {
        ctx.done();
      }
    });

  batch
    .command('resume <batch-id>')
    .description('continue every row that can move without a person (after a crash, or once retries are due)')
    .option('--concurrency <n>', 'migrations at once')
    .option('--backup-password-file <path>', 'rows with from = onprem: file holding the On-Premises backup password (else env WABA_BACKUP_PASSWORD, or a prompt)')
    .action(async (id: string, o: { concurrency?: string; backupPasswordFile?: string }, cmd: Command) => {
      const { globals, readPin, readToken, storeFor } = await import('../context.js');
      const g = globals(cmd);
      const concurrency = positiveInt(o.concurrency, '--concurrency');
      const token = readToken(g);
      const pin = await readPin(g, false);
      // On-Premises rows not finished yet need the On-Premises secrets (finished ones do not).
      let unfinishedOnPrem = 0;
      {
        const { onPremRows } = await import('../../batch/index.js');
        const { UNFINISHED } = await import('../../store/document.js');
        const store = await storeFor(g);
        try {
          for (const r of onPremRows((await store.loadBatch(id)).rows)) {
            const state = await store.load(r.migrationId).then((d) => d.state, () => null);
            if (state === null || UNFINISHED(state)) unfinishedOnPrem++;
          }
        } finally {
          await store.close();
        }
      }
      const onprem = await onPremSecretsFor(unfinishedOnPrem, o);
      const ctx = await runner(g, { token, ...(concurrency ? { concurrency } : {}), onprem });
      const record = await ctx.r.store.loadBatch(id).catch((e: unknown) => {
        ctx.done();
        throw e;
      });
      ctx.progress.total = record.rows.length;
      try {
        await ctx.progress.init('batch');
        ctx.report(await ctx.r.resume(id, { ...(concurrency ? { concurrency } : {}), ...(pin ? { pin } : {}) }));
      } finally {
        ctx.done();
      }
    });

  batch
    .command('status <batch-id>')
    .description('counts by state, and the rows that need a person with what each needs (read-only)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { printSummary } = await import('../batch-output.js');
      const g = globals(cmd);
      // The read side alone (src/batch/read.ts): no engine, no Graph client to load.
      const { openStore } = await import('../../store/open.js');
      const { batchStatus } = await import('../../batch/read.js');
      const store = await openStore(g.store);
      try {
        const s = await batchStatus(store, id);
        if (!g.json) printSummary(s);
        else {
          // One document, its rows streamed one per line (a 10,000-row batch stays small in memory).
          const { rows, ...head } = s;
          const top = JSON.stringify(head, null, 2);
          process.stdout.write(`${top.slice(0, -2)},\n  "rows": [`);
          let buf = '';
          rows.forEach((r, i) => {
            buf += `${i ? ',' : ''}\n    ${JSON.stringify(r)}`;
            if (buf.length > 1 << 16) {
              process.stdout.write(buf);
              buf = '';
            }
          });
          process.stdout.write(`${buf}${rows.length ? '\n  ' : ''}]\n}\n`);
        }
      } finally {
        await store.close();
      }
    });

  batch
    .command('list')
    .description('every batch with its counts')
    .action(async (_o: unknown, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { printJson } = await import('../output.js');
      const g = globals(cmd);
      const { openStore } = await import('../../store/open.js');
      const { listBatches } = await import('../../batch/read.js');
      const store = await openStore(g.store);
      try {
        const list = await listBatches(store);
        if (g.json) return printJson(list);
        if (!list.length) return void process.stdout.write(`No batches in ${g.stateDir}.\n`);
        for (const b of list) process.stdout.write(`${b.id}  ${b.total} rows  ${b.createdAt.replace('T', ' ').slice(0, 19)} UTC  ${b.cancelled ? 'cancelled  ' : ''}${Object.entries(b.counts).map(([k, v]) => `${k} ${v}`).join(' · ')}\n`);
      } finally {
        await store.close();
      }
    });

  batch
    .command('cancel <batch-id>')
    .description('cancel the batch and every unfinished migration in it (what Meta already did is not undone)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { printJson } = await import('../output.js');
      const { printSummary } = await import('../batch-output.js');
      const g = globals(cmd);
      // Migrations that could not be cancelled (running in another process, unreadable): they
      // are not cancelled, so the command must not report success.
      const failed: { id: string; error: string; name: string }[] = [];
      const ctx = await runner(g, { onEvent: (e) => void (e.type === 'row' && e.error !== undefined && failed.push({ id: e.migrationId, error: e.error, name: e.errorName ?? 'Error' })) });
      try {
        const s = await ctx.r.cancel(id);
        if (g.json) printJson(s);
        else printSummary(s);
        if (failed.length) {
          if (!g.json)
            process.stderr.write(
              `waba-migrate: ${failed.length} migration${failed.length === 1 ? '' : 's'} of batch ${id} could not be cancelled; run \`waba-migrate batch cancel ${id}\` again once ${failed.length === 1 ? 'it is' : 'they are'} free:\n` +
                failed.map((f) => `  ${f.id}: ${f.error}\n`).join(''),
            );
          process.exitCode = exitCodeFor(Object.assign(new Error(failed[0]!.error), { name: failed[0]!.name }));
        }
      } finally {
        ctx.done();
      }
    });

  batch
    .command('codes <batch-id> <file>')
    .description('submit verification codes from a file: columns phone,code or id,code (optional pin); codes and PINs never reach the store')
    .option('--concurrency <n>', 'codes submitted at once')
    .action(async (id: string, file: string, o: { concurrency?: string }, cmd: Command) => {
      const { globals, readPin, readToken } = await import('../context.js');
      const { printJson } = await import('../output.js');
      const { printCodeResults, printSummary } = await import('../batch-output.js');
      const g = globals(cmd);
      const concurrency = positiveInt(o.concurrency, '--concurrency');
      const token = readToken(g);
      const text = await readInput(file, 'file');
      // A pin column wins; otherwise WABA_REGISTER_PIN / --pin-file. Never a prompt: without a PIN
      // the numbers verify and wait for it (work with the PIN, or codes again with one, finish them).
      const pin = await readPin(g, false);
      const ctx = await runner(g, { token, total: text.split('\n').filter((l) => l.trim()).length - 1, ...(concurrency ? { concurrency } : {}) });
      try {
        await ctx.progress.init('codes');
        const { results, summary } = await ctx.r.codes(id, text, { name: file, ...(pin ? { pin } : {}), ...(concurrency ? { concurrency } : {}) });
        ctx.done();
        if (g.json) printJson({ results, summary });
        else {
          printCodeResults(results);
          printSummary(summary);
        }
        process.exitCode = ctx.stoppedCode() ?? (results.some((r) => r.outcome === 'error') ? EXIT.failed : results.some((r) => r.outcome === 'refused') ? EXIT.wrongCode : EXIT.ok);
      } finally {
        ctx.done();
      }
    });
}
