/** `waba-migrate demo`: a whole migration against an in-process sandbox, using the real store. */
import type { Command } from 'commander';
import { FIXTURES, GraphSandbox } from '../../sandbox/index.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a full migration against the bundled sandbox (reads the code from its outbox)')
    .option('--latency <ms>', 'added latency per sandbox call', '0')
    .option('--from <source>', 'waba (default) or onprem: rehearse the On-Premises → Cloud API path on both sandboxes')
    .action(async (o: { latency: string; from?: string }, cmd: Command) => {
      if (o.from === 'onprem') return (await import('./demo-onprem.js')).demoOnPrem(cmd, Math.max(0, Number(o.latency) || 0));
      if (o.from !== undefined && o.from !== 'waba') {
        const { UsageError } = await import('../errors.js');
        throw new UsageError(`--from: ${JSON.stringify(o.from)} must be waba or onprem`);
      }
      const { globals, makeEngine } = await import('../context.js');
      const { EXIT } = await import('../errors.js');
      const { printJson, printView, Progress } = await import('../output.js');
      const g = globals(cmd);
      const sb = new GraphSandbox({ latencyMs: Math.max(0, Number(o.latency) || 0) });
      const url = await sb.start();
      const progress = new Progress(!g.json);
      await progress.init();
      const say = (s: string) => {
        if (!g.json) process.stderr.write(`${s}\n`);
      };
      try {
        const engine = await makeEngine({ ...g, graphUrl: url }, FIXTURES.token, progress);
        const id = `demo-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}`;
        say(`Sandbox Graph API on ${url}; state in ${g.stateDir}; migration ${id}`);
        say(`Operator confirms two-step verification is off for ${FIXTURES.phone} (the API cannot see it).`);
        let view = await engine.start({
          id,
          phone: FIXTURES.phone,
          sourceWabaId: FIXTURES.sourceWabaId,
          destWabaId: FIXTURES.destWabaId,
          confirm: ['two_step_disabled'],
        });
        if (view.state !== 'awaiting_code' || !view.phoneNumberId) throw new Error(`demo stopped early in ${view.state}: ${view.nextAction}`);
        const sms = await sb.waitForCode(view.phoneNumberId);
        say(`📱 ${sms.method} to ${sms.phone}: your WhatsApp code is ${sms.code}`);
        say(`Operator enters the code and a register PIN (the PIN is kept in memory only).`);
        view = await engine.submitCode(id, sms.code, '246810');
        progress.stop();
        if (g.json) printJson(view);
        else {
          printView(view);
          process.stdout.write(`\nNew phone_number_id: ${view.phoneNumberId}\nAudit trail: waba-migrate audit ${id}${g.stateDir !== './state' ? ` --store ${g.stateDir.includes('://') ? g.stateDir : `file:${g.stateDir}`}` : ''}\n`);
        }
        process.exitCode = view.state === 'completed' ? EXIT.ok : EXIT.failed;
      } finally {
        progress.stop();
        await sb.stop();
      }
    });
}
