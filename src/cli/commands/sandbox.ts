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
    .action(async (o: { port: string; scenario: string; latency: string; faultRate: string }) => {
      const { InputError } = await import('../../runner/validate.js');
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError('--port', `${o.port} is not a port: use 0-65535`);
      if (!(SCENARIOS as readonly string[]).includes(o.scenario)) throw new InputError('--scenario', `${o.scenario} is not a scenario: use one of ${SCENARIOS.join(', ')}`);
      const latency = Number(o.latency);
      const rate = Number(o.faultRate);
      if (!(latency >= 0)) throw new InputError('--latency', 'must be a number of milliseconds >= 0');
      if (!(rate >= 0 && rate <= 1)) throw new InputError('--fault-rate', 'must be between 0 and 1');
      const sb = new GraphSandbox({
        port,
        scenario: o.scenario as ScenarioName,
        latencyMs: latency,
        faults: { serverError: rate / 3, rateLimit: rate / 3, lostResponse: rate / 3 },
      });
      const url = await sb.start();
      process.stdout.write(
        [
          `Graph API sandbox (${o.scenario}) listening on ${url}`,
          `  token ${FIXTURES.token}  business ${FIXTURES.businessId}  source WABA ${FIXTURES.sourceWabaId}  destination WABA ${FIXTURES.destWabaId}`,
          `  try: WABA_ACCESS_TOKEN=${FIXTURES.token} waba-migrate --graph-url ${url} start --phone ${FIXTURES.phone} --source-waba ${FIXTURES.sourceWabaId} --dest-waba ${FIXTURES.destWabaId} --confirm two_step_disabled`,
          '',
        ].join('\n'),
      );
      sb.events.on('code', (c: { at: string; code: string; method: string; phone: string; phoneNumberId: string }) => {
        process.stdout.write(`${c.at} code ${c.code} sent by ${c.method} to ${c.phone} (phone_number_id ${c.phoneNumberId})\n`);
      });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await sb.stop();
    });
}
