/** `waba-migrate check`: the prerequisites only, read-only, nothing stored. */
import type { Command } from 'commander';
import { addOnPremOptions, requireWabaFlags, type OnPremFlags } from '../onprem.js';

export function registerCheck(program: Command): void {
  const check = program
    .command('check')
    .description('check the prerequisites only (no side effects, nothing stored)')
    .requiredOption('--phone <e164>', 'the number to migrate, E.164 (e.g. +16315551000)')
    .option('--source-waba <id>', 'WABA the number is on now (required unless --from onprem)')
    .option('--dest-waba <id>', 'WABA to move it to (required unless --from onprem)')
    .option('--business <id>', 'Business Manager ID owning both WABAs (read from the destination WABA if omitted)')
    .option('--confirm <check...>', 'confirm a check the API cannot see (e.g. two_step_disabled)');
  addOnPremOptions(check, false).action(async (o: OnPremFlags & { phone: string; sourceWaba: string; destWaba: string; business?: string; confirm?: string[] }, cmd: Command) => {
      const { GraphClient } = await import('../../graph/client.js');
      const { buildInput } = await import('../../runner/engine.js');
      const { runChecks } = await import('../../steps/checks.js');
      const { parseCheckName } = await import('../../runner/validate.js');
      const { globals, readToken } = await import('../context.js');
      const { EXIT } = await import('../errors.js');
      const { callLine, checksTable, printJson } = await import('../output.js');
      const g = globals(cmd);
      requireWabaFlags(o);
      const onprem =
        o.from === 'onprem'
          ? { from: 'onprem' as const, ...(o.waba !== undefined ? { waba: o.waba } : {}), ...(o.onpremUrl !== undefined ? { onpremUrl: o.onpremUrl } : {}), ...(o.carryWebhook !== undefined ? { carryWebhook: o.carryWebhook } : {}), ...(o.carrySettings ? { carrySettings: true } : {}) }
          : {};
      const input = buildInput(
        { phone: o.phone, sourceWabaId: o.sourceWaba, destWabaId: o.destWaba, businessId: o.business ?? null, confirm: (o.confirm ?? []).map((c) => parseCheckName(c)), ...onprem },
        'operator',
      );
      const { stopOnSignals } = await import('./run-shared.js');
      const { StoppedError } = await import('../errors.js');
      const showProgress = !g.json && g.verbosity >= 0;
      const stop = stopOnSignals(() => {
        if (!g.json) process.stderr.write('\nStopping (nothing was changed: check only reads)…\n');
      });
      const client = new GraphClient({
        token: readToken(g),
        baseUrl: g.graphUrl,
        apiVersion: g.apiVersion,
        signal: stop.signal,
        ...(g.timeoutMs !== undefined ? { timeoutMs: g.timeoutMs } : {}),
        onCall: (c) => {
          if (g.verbosity >= 1) process.stderr.write(`${callLine(c)}\n`);
          else if (showProgress) process.stderr.write(`  ${c.method} ${c.path.replace(/^\/v[\d.]+/, '')} → ${c.status ?? 'no answer'} (${Math.round(c.durationMs)} ms)\n`);
        },
      });
      if (showProgress) process.stderr.write(`Checking ${input.phone}: ${input.sourceWabaId} → ${input.destWabaId}…\n`);
      let out: Awaited<ReturnType<typeof runChecks>>;
      try {
        out = await runChecks(client, input, input.confirmations);
      } catch (e) {
        if (stop.received()) throw new StoppedError(stop.received()!);
        throw e;
      } finally {
        stop.dispose();
      }
      const src = out.sourceNumber;
      // The number itself: not in the source WABA (or already moved) is a failure `start` would hit later.
      if (src && src.found === false && !out.existing && input.from !== 'onprem')
        out.checks.push({
          name: 'number_in_source' as never,
          status: 'fail',
          detail: `${input.phone} is not among the phone numbers of source WABA ${input.sourceWabaId}.`,
          remedy: 'Check the number and --source-waba (WhatsApp Manager > Phone numbers shows which WABA holds it).',
        });
      const ok = out.checks.every((c) => c.status === 'pass');
      if (g.json) printJson({ phone: input.phone, businessId: out.businessId, ok, checks: out.checks, sourceNumber: out.sourceNumber ?? null, existingNumber: out.existing });
      else {
        process.stdout.write(`${checksTable(out.checks)}\n`);
        if (src?.found)
          process.stdout.write(
            `In ${input.from === 'onprem' ? '' : 'source '}WABA ${input.sourceWabaId}: phone_number_id ${src.id}, platform ${src.platform ?? 'not reported'}, status ${src.status ?? 'unknown'}${input.from === 'onprem' ? '' : `, name status ${src.nameStatus ?? 'unknown'}`}, code verification ${src.codeVerificationStatus ?? 'unknown'}.\n`,
          );
        else if (src?.found === null) process.stdout.write(`Could not list the numbers of source WABA ${input.sourceWabaId}: ${src.error}\n`);
        if (out.existing && input.from !== 'onprem') process.stdout.write(`The number is already in WABA ${input.destWabaId} as ${out.existing.id} (status ${out.existing.status ?? '?'}): start will adopt it.\n`);
        process.stdout.write(ok ? 'All prerequisites pass: run `waba-migrate start` with the same arguments.\n' : 'Fix what fails (or confirm what the API cannot see), then check again.\n');
      }
      process.exitCode = ok ? EXIT.ok : EXIT.blocked;
    });
}
