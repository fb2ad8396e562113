/** `waba-migrate check`: the prerequisites only, read-only, nothing stored. */
import type { Command } from 'commander';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('check the prerequisites only (no side effects, nothing stored)')
    .requiredOption('--phone <e164>', 'the number to migrate, E.164 (e.g. +16315551000)')
    .requiredOption('--source-waba <id>', 'WABA the number is on now')
    .requiredOption('--dest-waba <id>', 'WABA to move it to')
    .option('--business <id>', 'Business Manager ID owning both WABAs (read from the destination WABA if omitted)')
    .option('--confirm <check...>', 'confirm a check the API cannot see (e.g. two_step_disabled)')
    .action(async (o: { phone: string; sourceWaba: string; destWaba: string; business?: string; confirm?: string[] }, cmd: Command) => {
      const { GraphClient } = await import('../../graph/client.js');
      const { buildInput } = await import('../../runner/engine.js');
      const { runChecks } = await import('../../steps/checks.js');
      const { parseCheckName } = await import('../../runner/validate.js');
      const { globals, readToken } = await import('../context.js');
      const { EXIT } = await import('../errors.js');
      const { checksTable, printJson } = await import('../output.js');
      const g = globals(cmd);
      const input = buildInput(
        { phone: o.phone, sourceWabaId: o.sourceWaba, destWabaId: o.destWaba, businessId: o.business ?? null, confirm: (o.confirm ?? []).map((c) => parseCheckName(c)) },
        'operator',
      );
      const client = new GraphClient({ token: readToken(g), baseUrl: g.graphUrl, apiVersion: g.apiVersion });
      const out = await runChecks(client, input, input.confirmations);
      const ok = out.checks.every((c) => c.status === 'pass');
      if (g.json) printJson({ phone: input.phone, businessId: out.businessId, ok, checks: out.checks, existingNumber: out.existing });
      else {
        process.stdout.write(`${checksTable(out.checks)}\n`);
        if (out.existing) process.stdout.write(`The number is already in WABA ${input.destWabaId} as ${out.existing.id} (status ${out.existing.status ?? '?'}): start will adopt it.\n`);
        process.stdout.write(ok ? 'All prerequisites pass: run `waba-migrate start` with the same arguments.\n' : 'Fix what fails (or confirm what the API cannot see), then check again.\n');
      }
      process.exitCode = ok ? EXIT.ok : EXIT.blocked;
    });
}
