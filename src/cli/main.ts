#!/usr/bin/env node
/**
 * waba-migrate command line. Thin: each command lives in commands/<name>.ts; errors become exit
 * codes only in errors.ts. A new command is one `register*` function added to COMMANDS below; its
 * `--help` gains the global options, environment, its examples (help.ts) and the exit codes.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { registerAudit } from './commands/audit.js';
import { registerBatch } from './commands/batch.js';
import { registerWork } from './commands/work.js';
import { registerCancel } from './commands/cancel.js';
import { registerCheck } from './commands/check.js';
import { registerCompletion } from './commands/completion.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerGraph } from './commands/graph.js';
import { registerPrune } from './commands/prune.js';
import { registerResendCode } from './commands/resend-code.js';
import { registerResume } from './commands/resume.js';
import { registerNotify } from './commands/notify.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerServe } from './commands/serve.js';
import { registerStart } from './commands/start.js';
import { registerStatus } from './commands/status.js';
import { registerStore } from './commands/store.js';
import { describeError, errorCodeName, errorField, exitCodeFor, EXIT } from './errors.js';
import { envFlag } from './globals.js';
import { commandHelp, ENV_HELP } from './help.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

export const COMMANDS = [
  registerCheck,
  registerStart,
  registerResume,
  registerResendCode,
  registerStatus,
  registerAudit,
  registerCancel,
  registerPrune,
  registerGraph,
  registerSandbox,
  registerDemo,
  registerServe,
  registerNotify,
  registerStore,
  registerBatch,
  registerWork,
  registerDoctor,
  registerCompletion,
];

export function buildProgram(): Command {
  const program = new Command('waba-migrate')
    .description('Move a WhatsApp business phone number onto the WhatsApp Cloud API: resumable, audited.')
    .version(version)
    .addOption(new Option('--store <url>', 'where migrations are stored: file:<dir> (default file:./state) or postgres://user@host:port/db (env WABA_MIGRATE_STORE)'))
    .addOption(new Option('--state-dir <dir>', 'same as --store file:<dir> (env WABA_MIGRATE_STATE_DIR)'))
    .addOption(new Option('--graph-url <url>', 'Graph API base URL (env WABA_GRAPH_URL; default https://graph.facebook.com)'))
    .addOption(new Option('--api-version <v>', 'Graph API version, v<major>.<minor> (env WABA_API_VERSION; default v23.0)'))
    .addOption(new Option('--token-file <path>', 'file holding the access token (else env WABA_ACCESS_TOKEN)'))
    .addOption(new Option('--pin-file <path>', 'file holding the 6-digit register PIN (else env WABA_REGISTER_PIN, or a prompt)'))
    .addOption(new Option('--timeout <ms>', 'deadline per Graph request (env WABA_GRAPH_TIMEOUT_MS; default 30000)'))
    .addOption(new Option('--max-wait <ms>', 'longest retry wait to sit through before exiting 75; resume continues (env WABA_MAX_WAIT_MS; default 60000)'))
    .addOption(new Option('--config <path>', `config file (default: ${'waba-migrate.config.json'} in the cwd or a parent)`))
    .addOption(new Option('--notify-url <url>', 'send signed progress notifications here (env WABA_NOTIFY_URL; secret from env WABA_NOTIFY_SECRET)'))
    .addOption(new Option('--notify-secret-file <path>', 'file holding the whsec_ signing secret (else env WABA_NOTIFY_SECRET)'))
    .addOption(new Option('--notify-backoff-ms <ms>', 'retry step: the n-th failed delivery waits n × this (default 3000)'))
    .addOption(new Option('--notify-max-backoff-ms <ms>', 'longest wait between deliveries; retries go on at it (default 900000)'))
    .addOption(new Option('--notify-give-up-ms <ms>', 'mark a notification dead once it is this old and still failing (default: never)'))
    .addOption(new Option('--notify-timeout-ms <ms>', 'deadline per delivery attempt (default 10000)'))
    .option('--json', 'one JSON document on stdout (errors too: {"error":{code,message,field,exit}})')
    .option('--local-time', 'show times in the local time zone (TZ) instead of UTC (env WABA_MIGRATE_LOCAL_TIME)')
    .option('-v, --verbose', 'one stderr line per Graph call (method, path, status, code, fbtrace_id, ms) and per transition')
    .option('-q, --quiet', 'no progress, only the result and errors')
    .option('--debug', 'stack traces and internal detail (env WABA_MIGRATE_DEBUG=1)')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride();
  program.addHelpText('after', `\n${ENV_HELP}`);
  for (const register of COMMANDS) register(program);
  for (const c of program.commands) {
    c.exitOverride();
    c.addHelpText('after', commandHelp(c.name()));
  }
  return program;
}

function wantsJson(argv: string[]): boolean {
  return argv.includes('--json');
}

function wantsDebug(argv: string[]): boolean {
  return argv.includes('--debug') || envFlag('WABA_MIGRATE_DEBUG');
}

/** A reader that went away (`status x | head -1`) ends the command quietly with its own exit code. */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
}

export function reportError(err: unknown, argv: string[]): number {
  const code = exitCodeFor(err);
  if (err instanceof CommanderError || (err instanceof Error && err.name === 'SilentExit')) {
    if (err instanceof CommanderError && wantsJson(argv) && code !== EXIT.ok)
      process.stdout.write(`${JSON.stringify({ error: { code: err.code.replace(/^commander\./, ''), message: err.message.replace(/^error: /, ''), field: null, exit: code } })}\n`);
    return code;
  }
  if (err instanceof Error && err.name === 'StoppedError') return code;
  const message = describeError(err);
  if (wantsJson(argv)) process.stdout.write(`${JSON.stringify({ error: { code: errorCodeName(err), message, field: errorField(err), exit: code } })}\n`);
  else process.stderr.write(`waba-migrate: ${message}\n`);
  if (wantsDebug(argv) && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  else if (code === EXIT.internal) process.stderr.write('  (rerun with --debug for the stack trace)\n');
  return code;
}

async function main(): Promise<void> {
  quietOnClosedPipe();
  try {
    // Lets the exit-code test produce row 1 (an unexpected error) through the real entry point.
    if (process.env.WABA_MIGRATE_TEST_INTERNAL_ERROR) throw new TypeError('simulated internal error (WABA_MIGRATE_TEST_INTERNAL_ERROR)');
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err, process.argv);
  }
}

process.on('uncaughtException', (err) => {
  process.exitCode = reportError(err, process.argv);
  process.exit();
});

await main();
