#!/usr/bin/env node
/**
 * waba-migrate command line. Thin: each command lives in commands/<name>.ts; errors become exit
 * codes only here (see errors.ts for the table).
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { registerAudit } from './commands/audit.js';
import { registerCancel } from './commands/cancel.js';
import { registerCheck } from './commands/check.js';
import { registerDemo } from './commands/demo.js';
import { registerGraph } from './commands/graph.js';
import { registerResendCode } from './commands/resend-code.js';
import { registerResume } from './commands/resume.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerStart } from './commands/start.js';
import { registerStatus } from './commands/status.js';
import { describeError, exitCodeFor } from './errors.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('waba-migrate')
    .description('Move a WhatsApp business phone number onto the WhatsApp Cloud API: resumable, audited.')
    .version(version)
    .addOption(new Option('--state-dir <dir>', 'where migrations are stored (env WABA_MIGRATE_STATE_DIR)'))
    .addOption(new Option('--graph-url <url>', 'Graph API base URL (env WABA_GRAPH_URL)'))
    .addOption(new Option('--api-version <v>', 'Graph API version').default('v23.0'))
    .addOption(new Option('--token-file <path>', 'file holding the access token (else env WABA_ACCESS_TOKEN)'))
    .addOption(new Option('--pin-file <path>', 'file holding the 6-digit register PIN (else env WABA_REGISTER_PIN, or a prompt)'))
    .addOption(new Option('--timeout <ms>', 'deadline per Graph request (env WABA_GRAPH_TIMEOUT_MS)').default(undefined))
    .addOption(new Option('--max-wait <ms>', 'longest retry wait to sit through before exiting; resume continues (env WABA_MAX_WAIT_MS)'))
    .option('--json', 'one JSON document on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of [registerCheck, registerStart, registerResume, registerResendCode, registerStatus, registerAudit, registerCancel, registerGraph, registerSandbox, registerDemo]) {
    register(program);
  }
  for (const c of program.commands) c.exitOverride();
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    const code = exitCodeFor(err);
    if (!(err instanceof CommanderError)) process.stderr.write(`waba-migrate: ${describeError(err)}\n`);
    if (code === 1 && process.env.WABA_MIGRATE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}

await main();
