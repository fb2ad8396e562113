/** Both sandboxes (Graph + On-Premises, linked) and an engine wired to them. */
import { rm } from 'node:fs/promises';
import { FIXTURES, GraphSandbox, ONPREM_FIXTURES, OnPremSandbox, type ScenarioName, type SandboxOptions } from '../../src/sandbox/index.js';
import { MigrationEngine, type EngineOptions, type StartRequest } from '../../src/runner/engine.js';
import { FileStore } from '../../src/store/store.js';
import { FAST_POLICY, tempDir } from '../helpers/env.js';

export const BACKUP_PASSWORD = 'backup-pass-Zq81';
export const VERIFY_TOKEN = 'verify-token-Kx22';

export interface OnPremWorld {
  graph: GraphSandbox;
  onprem: OnPremSandbox;
  graphUrl: string;
  onpremUrl: string;
  dir: string;
  store: FileStore;
  engine(extra?: Partial<EngineOptions>): MigrationEngine;
  startRequest(extra?: Partial<StartRequest>): StartRequest;
  close(): Promise<void>;
}

export async function onpremWorld(scenario: ScenarioName = 'onprem_happy', opts: SandboxOptions = {}, onpremFaults?: { serverError?: number; reset?: number; lostResponse?: number }): Promise<OnPremWorld> {
  const graph = new GraphSandbox({ ...opts, scenario });
  const onprem = new OnPremSandbox(onpremFaults ? { faults: onpremFaults } : {}).link(graph);
  const graphUrl = await graph.start();
  const onpremUrl = await onprem.start();
  const dir = await tempDir();
  const store = new FileStore(dir);
  return {
    graph,
    onprem,
    graphUrl,
    onpremUrl,
    dir,
    store,
    engine: (extra = {}) =>
      new MigrationEngine({
        store,
        token: FIXTURES.token,
        graphUrl,
        operator: 'tester',
        timeoutMs: 2_000,
        onprem: { user: ONPREM_FIXTURES.user, password: ONPREM_FIXTURES.password, backupPassword: BACKUP_PASSWORD, webhookVerifyToken: VERIFY_TOKEN },
        ...extra,
      }),
    startRequest: (extra = {}) => ({
      id: 'op1',
      from: 'onprem',
      phone: FIXTURES.onpremPhone,
      sourceWabaId: '',
      destWabaId: '',
      waba: FIXTURES.sourceWabaId,
      onpremUrl,
      confirm: ['pin_known'],
      policy: FAST_POLICY,
      ...extra,
    }),
    close: async () => {
      await graph.stop();
      await onprem.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
