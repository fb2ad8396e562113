/** `waba-migrate demo --from onprem` (issue 12): the On-Premises → Cloud API path on both
 *  sandboxes (Graph + On-Premises client), with the real store. */
import type { Command } from 'commander';
import { FIXTURES, GraphSandbox, ONPREM_FIXTURES, OnPremSandbox } from '../../sandbox/index.js';

/** Starts an On-Premises simulator linked to a running Graph sandbox; says how to use both. */
export async function onpremSandbox(graph: GraphSandbox, graphUrl: string, faultRate = 0): Promise<{ sandbox: OnPremSandbox; url: string; banner: string }> {
  // --fault-rate applies to the On-Premises side too.
  const sandbox = new OnPremSandbox({ faults: { serverError: faultRate / 3, reset: faultRate / 3, lostResponse: faultRate / 3 } }).link(graph);
  const url = await sandbox.start();
  const banner = [
    `Graph API sandbox (${graph.options.scenario}) listening on ${graphUrl}`,
    `On-Premises API client sandbox listening on ${url} (admin ${ONPREM_FIXTURES.user} / ${ONPREM_FIXTURES.password}; number ${FIXTURES.onpremPhone}, two-step PIN ${FIXTURES.onpremPin})`,
    `  try: WABA_ACCESS_TOKEN=${FIXTURES.token} WABA_ONPREM_USER=${ONPREM_FIXTURES.user} WABA_ONPREM_PASSWORD=${ONPREM_FIXTURES.password} WABA_BACKUP_PASSWORD=any-password WABA_REGISTER_PIN=${FIXTURES.onpremPin} \\`,
    `       waba-migrate --graph-url ${graphUrl} start --from onprem --onprem-url ${url} --waba ${FIXTURES.sourceWabaId} --phone ${FIXTURES.onpremPhone} --confirm pin_known --carry-webhook`,
    '',
  ].join('\n');
  return { sandbox, url, banner };
}

export async function demoOnPrem(cmd: Command, latencyMs: number): Promise<void> {
  const { globals, makeEngine } = await import('../context.js');
  const { EXIT } = await import('../errors.js');
  const { printJson, printView, Progress } = await import('../output.js');
  const g = globals(cmd);
  const graph = new GraphSandbox({ scenario: 'onprem_happy', latencyMs });
  const graphUrl = await graph.start();
  const onprem = new OnPremSandbox().link(graph);
  const onpremUrl = await onprem.start();
  const progress = new Progress(!g.json);
  await progress.init();
  const say = (s: string) => {
    if (!g.json) process.stderr.write(`${s}\n`);
  };
  try {
    // Demo secrets are the sandboxes' fixtures: in a real run they come from env, files or a prompt.
    const engine = await makeEngine({ ...g, graphUrl }, FIXTURES.token, progress, {
      onprem: { user: ONPREM_FIXTURES.user, password: ONPREM_FIXTURES.password, backupPassword: 'demo-backup-password', webhookVerifyToken: 'demo-verify-token' },
    });
    const id = `demo-onprem-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}`;
    say(`Sandbox Graph API on ${graphUrl}, On-Premises client on ${onpremUrl}; state in ${g.stateDir}; migration ${id}`);
    say(`Operator confirms they know the two-step PIN of ${FIXTURES.onpremPhone} (a wrong one leaves the On-Premises client down).`);
    const view = await engine.start({
      id,
      from: 'onprem',
      phone: FIXTURES.onpremPhone,
      sourceWabaId: '',
      destWabaId: '',
      waba: FIXTURES.sourceWabaId,
      onpremUrl,
      carryWebhook: true,
      carrySettings: true,
      confirm: ['pin_known'],
      pin: FIXTURES.onpremPin,
    });
    progress.stop();
    if (g.json) printJson(view);
    else {
      printView(view);
      process.stdout.write(`\nThe number kept its phone_number_id ${view.phoneNumberId}.\nAudit trail: waba-migrate audit ${id}${g.stateDir !== './state' ? ` --state-dir ${g.stateDir}` : ''}\n`);
    }
    process.exitCode = view.state === 'completed' ? EXIT.ok : EXIT.failed;
  } finally {
    progress.stop();
    await graph.stop();
    await onprem.stop();
  }
}
