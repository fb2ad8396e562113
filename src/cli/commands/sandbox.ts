/** `waba-migrate sandbox`: run the bundled Graph API simulator on 127.0.0.1 until interrupted. */
import type { Command } from 'commander';
import { FIXTURES, GraphSandbox, SCENARIOS, type ScenarioName } from '../../sandbox/index.js';

export function registerSandbox(program: Command): void {
  program
    .command('sandbox')
    .description('run the bundled Graph API simulator on 127.0.0.1 and print each code it "sends"')
    .option('--port <n>', 'port (0 picks a free one)', '0')
    .option('--scenario <name>', `one of ${SCENARIOS.join(', ')}`, 'happy')
    .option('--latency <ms>', 'added latency per call', '0')
    .option('--fault-rate <r>', 'share of calls answered with a transient fault (0..1)', '0')
    .option('--rate-limit <calls/ms>', "Meta's per-WABA rate limit, e.g. 200/3600000 (scenario rate_limited: 25/1000)")
    .option('--codes-out <file>', 'also append each sent code to this CSV (phone,code): ready for `batch codes`')
    .action(async (o: { port: string; scenario: string; latency: string; faultRate: string; rateLimit?: string; codesOut?: string }) => {
      const { InputError } = await import('../../runner/validate.js');
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError('--port', `${o.port} is not a port: use 0-65535`);
      if (!(SCENARIOS as readonly string[]).includes(o.scenario)) throw new InputError('--scenario', `${o.scenario} is not a scenario: use one of ${SCENARIOS.join(', ')}`);
      const latency = Number(o.latency);
      const rate = Number(o.faultRate);
      if (!(latency >= 0)) throw new InputError('--latency', 'must be a number of milliseconds >= 0');
      if (!(rate >= 0 && rate <= 1)) throw new InputError('--fault-rate', 'must be between 0 and 1');
      let rateLimit: { calls: number; windowMs: number } | undefined;
      if (o.rateLimit !== undefined) {
        const m = /^(\d+)\/(\d+)$/.exec(o.rateLimit);
        if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InputError('--rate-limit', `${o.rateLimit} is not <calls>/<window ms>: use e.g. 200/3600000`);
        rateLimit = { calls: Number(m[1]), windowMs: Number(m[2]) };
      }
      const { writeFileSync } = await import('node:fs');
      // The latest code per number (a resend replaces the old one), rewritten after each send.
      const latest = new Map<string, string>();
      const sb = new GraphSandbox({
        port,
        ...(rateLimit ? { rateLimit } : {}),
        scenario: o.scenario as ScenarioName,
        latencyMs: latency,
        faults: { serverError: rate / 3, rateLimit: rate / 3, lostResponse: rate / 3 },
      });
      const url = await sb.start();
      // The onprem_* scenarios also run an On-Premises client simulator beside it (issue 12).
      const { onpremSandbox } = await import('./demo-onprem.js');
      const op = o.scenario.startsWith('onprem_') ? await onpremSandbox(sb, url, rate) : null;
      if (op) process.stdout.write(op.banner);
      else process.stdout.write(
        [
          `Graph API sandbox (${o.scenario}) listening on ${url}`,
          `  token ${FIXTURES.token}  business ${FIXTURES.businessId}  source WABA ${FIXTURES.sourceWabaId}  destination WABA ${FIXTURES.destWabaId}`,
          `  try: WABA_ACCESS_TOKEN=${FIXTURES.token} waba-migrate --graph-url ${url} start --phone ${FIXTURES.phone} --source-waba ${FIXTURES.sourceWabaId} --dest-waba ${FIXTURES.destWabaId} --confirm two_step_disabled`,
          '',
        ].join('\n'),
      );
      sb.events.on('code', (c: { at: string; code: string; method: string; phone: string; phoneNumberId: string }) => {
        process.stdout.write(`${c.at} code ${c.code} sent by ${c.method} to ${c.phone} (phone_number_id ${c.phoneNumberId})\n`);
        if (o.codesOut) {
          latest.set(c.phone, c.code);
          writeFileSync(o.codesOut, `phone,code\n${[...latest].map(([p, code]) => `${p},${code}`).join('\n')}\n`, { mode: 0o600 });
        }
      });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await sb.stop();
      await op?.sandbox.stop();
    });
}
