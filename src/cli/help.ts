/**
 * The text after each command's options in `--help`: environment, examples, exit codes. A command
 * with no entry here still gets the environment and the exit-code table, so commands added by
 * other layers (batch, work, serve, …) slot in; they may add their entry to EXAMPLES.
 */
import { EXIT_TABLE } from './errors.js';

export const ENV_HELP = `Environment:
  WABA_ACCESS_TOKEN        system-user access token with whatsapp_business_management (or --token-file)
  WABA_REGISTER_PIN        6-digit register PIN (or --pin-file, or a masked prompt on a TTY)
  WABA_CODE                the verification code (or --code-file, --code -, or a prompt on a TTY)
  WABA_MIGRATE_STORE       store URL: file:<dir> or postgres://… (default file:./state)
  WABA_MIGRATE_STATE_DIR   state directory (same as WABA_MIGRATE_STORE=file:<dir>)
  WABA_GRAPH_URL           Graph API base URL (default https://graph.facebook.com)
  WABA_API_VERSION         Graph API version (default v23.0)
  WABA_GRAPH_TIMEOUT_MS    per-request deadline (default 30000)
  WABA_MAX_WAIT_MS         longest retry wait sat through (default 60000)
  WABA_MIGRATE_LOCAL_TIME  1: show local times (TZ) instead of UTC
  WABA_MIGRATE_DEBUG       1: stack traces (same as --debug)
  Config file: waba-migrate.config.json in the cwd or a parent, or --config <path>, with
  stateDir, storeUrl, graphUrl, apiVersion, tokenFile, pinFile, notifyUrl, timeoutMs, maxWaitMs
  (flags win over env, env over the file; secrets never go in it).
`;

const EXAMPLES: Record<string, string[]> = {
  check: ['waba-migrate check --phone +16315551000 --source-waba 100000000000001 --dest-waba 100000000000002'],
  start: [
    'waba-migrate start --phone +16315551000 --source-waba 100000000000001 --dest-waba 100000000000002 --confirm two_step_disabled',
    'waba-migrate start --phone +16315551000 --source-waba 100000000000001 --dest-waba 100000000000002 --id shop-1 --code-method voice',
  ],
  resume: [
    'waba-migrate resume shop-1                      # prompts for the code and PIN on a TTY',
    'WABA_CODE=123456 WABA_REGISTER_PIN=246810 waba-migrate resume shop-1',
    'waba-migrate resume shop-1 --code-file code.txt --pin-file pin.txt',
    'echo 123-456 | waba-migrate resume shop-1 --code - --pin-file pin.txt',
  ],
  'resend-code': ['waba-migrate resend-code shop-1 --code-method voice'],
  status: ['waba-migrate status shop-1', 'waba-migrate status shop-1 --watch', 'waba-migrate status shop-1 --json | jq .nextAction'],
  list: ['waba-migrate list --state awaiting_code', 'waba-migrate list --phone +16315551000 --json'],
  audit: ['waba-migrate audit shop-1', 'waba-migrate audit shop-1 --since 2026-01-01T00:00:00Z --limit 20 --format csv'],
  cancel: ['waba-migrate cancel shop-1 --reason "customer postponed" --yes'],
  prune: ['waba-migrate prune --dry-run', 'waba-migrate prune --yes                     # removes cancelled migrations only'],
  graph: ['waba-migrate graph > machine.mmd', 'waba-migrate graph --json'],
  sandbox: ['waba-migrate sandbox --port 8787 --scenario happy'],
  demo: ['waba-migrate demo --state-dir /tmp/demo-state'],
  doctor: ['waba-migrate doctor', 'waba-migrate --token-file token.txt doctor --json'],
  completion: ['waba-migrate completion bash > /etc/bash_completion.d/waba-migrate', 'waba-migrate completion zsh > "${fpath[1]}/_waba-migrate"', 'waba-migrate completion fish > ~/.config/fish/completions/waba-migrate.fish'],
};

export function addExamples(command: string, lines: string[]): void {
  EXAMPLES[command] = lines;
}

export function commandHelp(command: string): string {
  const ex = EXAMPLES[command];
  const examples = ex ? `\nExamples:\n${ex.map((l) => `  $ ${l}`).join('\n')}\n` : '';
  const exits = `\nExit codes:\n${EXIT_TABLE.map(([c, t]) => `  ${String(c).padStart(3)}  ${t}`).join('\n')}\n`;
  return `${examples}\n${ENV_HELP}${exits}`;
}
