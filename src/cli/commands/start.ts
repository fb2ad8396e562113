/** `waba-migrate start`: create a migration and run it as far as it goes without a person. */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { addOnPremOptions, requireWabaFlags, type OnPremFlags } from '../onprem.js';

const POLICY_FLAGS = { retryBaseMs: ['retryBaseMs', '--retry-base-ms'], retryCapMs: ['retryCapMs', '--retry-cap-ms'], maxAttempts: ['maxAttemptsPerStep', '--max-attempts'], resendCooldownMs: ['resendCooldownMs', '--resend-cooldown-ms'] } as const;

/** Policy overrides from flags; a value that is not a non-negative number is a usage error. */
export function policyFrom(o: Partial<Record<keyof typeof POLICY_FLAGS, string>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [flag, [key, name]] of Object.entries(POLICY_FLAGS)) {
    const raw = o[flag as keyof typeof POLICY_FLAGS];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name}: ${JSON.stringify(raw)} must be a non-negative number`);
    out[key] = n;
  }
  return out;
}

export function registerStart(program: Command): void {
  const start = program
    .command('start')
    .description('create a migration and run it until it needs a person (normally awaiting_code)')
    .requiredOption('--phone <e164>', 'the number to migrate, E.164 (e.g. +16315551000)')
    .option('--source-waba <id>', 'WABA the number is on now (required unless --from onprem)')
    .option('--dest-waba <id>', 'WABA to move it to (required unless --from onprem)')
    .option('--business <id>', 'Business Manager ID owning both WABAs')
    .option('--id <name>', 'migration id (generated when omitted)')
    .option('--code-method <method>', 'sms or voice', 'sms')
    .option('--language <code>', 'language of the code message', 'en_US')
    .option('--confirm <check...>', 'confirm checks the API cannot see (e.g. two_step_disabled)')
    .option('--verified-name <name>', 'display name to send with the create call (only when given)')
    .option('--retry-base-ms <ms>', 'backoff base for temporary Graph errors (default 1000)')
    .option('--retry-cap-ms <ms>', 'longest backoff (default 300000)')
    .option('--max-attempts <n>', 'temporary failures tolerated per step (default 8)')
    .option('--resend-cooldown-ms <ms>', 'wait before a code may be resent (default 60000)');
  addOnPremOptions(start).action(async (o: OnPremFlags & { phone: string; sourceWaba: string; destWaba: string; business?: string; id?: string; codeMethod: string; language: string; confirm?: string[]; verifiedName?: string; retryBaseMs?: string; retryCapMs?: string; maxAttempts?: string; resendCooldownMs?: string }, cmd: Command) => {
      const { globals, makeEngine, readPin, readToken } = await import('../context.js');
      const { runWithProgress } = await import('./run-shared.js');
      const g = globals(cmd);
      requireWabaFlags(o);
      const token = readToken(g);
      const pin = await readPin(g, false);
      const { readOnPremSecrets } = await import('../onprem.js');
      const onprem = o.from === 'onprem' ? await readOnPremSecrets(o, true) : undefined;
      process.exitCode = await runWithProgress(
        g.json,
        async (progress, signal) =>
        (await makeEngine(g, token, progress, { signal, ...(onprem ? { onprem } : {}) })).start({
          phone: o.phone,
          sourceWabaId: o.sourceWaba,
          destWabaId: o.destWaba,
          ...(o.from === 'onprem'
            ? { from: 'onprem' as const, ...(o.waba !== undefined ? { waba: o.waba } : {}), ...(o.onpremUrl !== undefined ? { onpremUrl: o.onpremUrl } : {}), ...(o.carryWebhook !== undefined ? { carryWebhook: o.carryWebhook } : {}), ...(o.carrySettings ? { carrySettings: true } : {}) }
            : {}),
          businessId: o.business ?? null,
          ...(o.id !== undefined ? { id: o.id } : {}),
          codeMethod: o.codeMethod,
          language: o.language,
          confirm: o.confirm ?? [],
          verifiedName: o.verifiedName ?? null,
          policy: policyFrom(o),
          ...(pin ? { pin } : {}),
        }),
        g.verbosity < 0,
      );
    });
}
