/** `waba-migrate start`: create a migration and run it as far as it goes without a person. */
import type { Command } from 'commander';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('create a migration and run it until it needs a person (normally awaiting_code)')
    .requiredOption('--phone <e164>', 'the number to migrate, E.164 (e.g. +16315551000)')
    .requiredOption('--source-waba <id>', 'WABA the number is on now')
    .requiredOption('--dest-waba <id>', 'WABA to move it to')
    .option('--business <id>', 'Business Manager ID owning both WABAs')
    .option('--id <name>', 'migration id (generated when omitted)')
    .option('--code-method <method>', 'sms or voice', 'sms')
    .option('--language <code>', 'language of the code message', 'en_US')
    .option('--confirm <check...>', 'confirm checks the API cannot see (e.g. two_step_disabled)')
    .option('--verified-name <name>', 'display name to send with the create call (only when given)')
    .action(async (o: { phone: string; sourceWaba: string; destWaba: string; business?: string; id?: string; codeMethod: string; language: string; confirm?: string[]; verifiedName?: string }, cmd: Command) => {
      const { globals, makeEngine, readPin, readToken } = await import('../context.js');
      const { runWithProgress } = await import('./run-shared.js');
      const g = globals(cmd);
      const token = readToken(g);
      const pin = await readPin(g, false);
      process.exitCode = await runWithProgress(g.json, (progress) =>
        makeEngine(g, token, progress).start({
          phone: o.phone,
          sourceWabaId: o.sourceWaba,
          destWabaId: o.destWaba,
          businessId: o.business ?? null,
          ...(o.id !== undefined ? { id: o.id } : {}),
          codeMethod: o.codeMethod,
          language: o.language,
          confirm: o.confirm ?? [],
          verifiedName: o.verifiedName ?? null,
          ...(pin ? { pin } : {}),
        }),
      );
    });
}
