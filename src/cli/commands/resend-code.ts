/** `waba-migrate resend-code <id>`: request a new code, honouring the cool-down. */
import type { Command } from 'commander';

export function registerResendCode(program: Command): void {
  program
    .command('resend-code <id>')
    .description('request a new verification code (after the cool-down), optionally by voice')
    .option('--code-method <method>', 'sms or voice (default: as before)')
    .action(async (id: string, o: { codeMethod?: string }, cmd: Command) => {
      const { parseCodeMethod } = await import('../../runner/validate.js');
      const { globals, makeEngine, readToken } = await import('../context.js');
      const { runWithProgress } = await import('./run-shared.js');
      const g = globals(cmd);
      const method = o.codeMethod !== undefined ? parseCodeMethod(o.codeMethod, '--code-method') : undefined;
      const token = readToken(g);
      process.exitCode = await runWithProgress(g.json, async (progress, signal) => (await makeEngine(g, token, progress, { signal })).resendCode(id, method), g.verbosity < 0);
    });
}
