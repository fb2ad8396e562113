/**
 * Prints docs/readme/cli.md: the prose below and every command's `--help`, taken from the real
 * CLI so the reference cannot drift (test/cli/operator.test.ts compares them).
 * Regenerate: npm run build && node dist/src/cli/reference.js > docs/readme/cli.md
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EXIT_TABLE } from './errors.js';

const main = fileURLToPath(new URL('./main.js', import.meta.url));
const help = (args: string[]) => execFileSync(process.execPath, [main, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } }).trim();

// Command names from the top-level help (importing main.js would run the CLI).
const top = help([]);
const names = top
  .slice(top.indexOf('Commands:'), top.indexOf('\nEnvironment:') > 0 ? top.indexOf('\nEnvironment:') : undefined)
  .split('\n')
  .slice(1)
  .map((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1])
  .filter((n): n is string => Boolean(n) && n !== 'help');
const out: string[] = [];
out.push(`## Command line

### Getting \`waba-migrate\` on your PATH

- From a checkout: \`npm ci && npm run build && npm link\` (then \`waba-migrate --help\` works anywhere).
- Installed globally: \`npm i -g <path-or-tarball>\` (\`npm pack\` makes the tarball).
- Without installing: \`npx waba-migrate …\` inside the project, or \`node dist/src/cli/main.js …\`.

Every hint the tool prints uses \`waba-migrate …\`; substitute \`npx waba-migrate\` if you did not link it.

### Secrets: where to put them

The access token (a system-user token with the **whatsapp_business_management** permission), the register PIN
and the verification code are never accepted where other users could read them:

| secret | preferred | also | never |
|---|---|---|---|
| access token | \`--token-file <path>\` (mode 0600) | \`WABA_ACCESS_TOKEN\` | a flag value, the config file |
| register PIN | masked prompt on a TTY (asked twice and compared) | \`--pin-file\`, \`WABA_REGISTER_PIN\` | a flag value |
| verification code | the prompt on a TTY (shown while typed; \`123-456\` and \`123 456\` accepted), or \`--code -\` (stdin), \`--code-file\`, \`WABA_CODE\` | \`--code <digits>\` | — |

\`--code <digits>\` works but the value is visible to every user of the machine in \`ps\` while the command runs:
prefer stdin (\`echo 123456 | waba-migrate resume <id> --code -\`), a file or the environment. A token with a
line break or control character is refused before anything is sent.

### Ctrl-C

SIGINT (Ctrl-C) or SIGTERM stops a run **before its next request**; the saved state is a resume point
(exactly as after a crash: an outstanding request is reconciled with Meta before anything is re-sent). The tool
prints where it stopped and \`waba-migrate resume <id>\`, and exits 130 (SIGINT) or 143 (SIGTERM). A second
Ctrl-C exits at once.

### Exit codes

| code | meaning |
|---:|---|
${EXIT_TABLE.map(([c, t]) => `| ${c} | ${t} |`).join('\n')}

With \`--json\`, an error is one document on stdout, \`{"error":{"code","message","field","exit"}}\`, with the same
exit code. Stack traces appear only with \`--debug\` or \`WABA_MIGRATE_DEBUG=1\`.

### Config file

\`waba-migrate.config.json\` in the current directory or the nearest parent (or \`--config <path>\`) may hold
\`stateDir\`, \`storeUrl\`, \`graphUrl\`, \`apiVersion\`, \`tokenFile\`, \`pinFile\`, \`notifyUrl\`, \`timeoutMs\`, \`maxWaitMs\`.
Relative paths are relative to the file. Flags win over environment variables, which win over the file. Secrets
never go in it (an unknown key such as \`token\` is refused).

### Output

Times are shown to the second in UTC (\`--local-time\` or \`WABA_MIGRATE_LOCAL_TIME=1\` for the local zone from
\`TZ\`); a time that says "after" is rounded up. Tables fit the terminal width; at 80 columns or less they
become stacked \`key  value\` blocks, and ids are never cut. \`--quiet\` drops progress, \`--verbose\` adds detail,
\`--debug\` adds stack traces. \`status <id>\` and \`list\` name the process of a migration that is running now
("running in pid N on host H since …") instead of calling it interrupted.

### Shell completion

\`\`\`sh
waba-migrate completion bash > ~/.local/share/bash-completion/completions/waba-migrate
waba-migrate completion zsh  > "\${fpath[1]}/_waba-migrate"
waba-migrate completion fish > ~/.config/fish/completions/waba-migrate.fish
\`\`\`

### Command reference

Generated from \`--help\` (\`node dist/src/cli/reference.js > docs/readme/cli.md\`); a test checks it is current.
`);
out.push(`#### waba-migrate\n\n\`\`\`text\n${top}\n\`\`\`\n`);
for (const n of names) out.push(`#### waba-migrate ${n}\n\n\`\`\`text\n${help([n])}\n\`\`\`\n`);
process.stdout.write(out.join('\n'));
