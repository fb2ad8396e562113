/** `waba-migrate doctor`: is this machine ready? Token and permissions, store, clock, Node. Read-only. */
import type { Command } from 'commander';

type Row = { check: string; status: 'pass' | 'fail' | 'warn'; detail: string };

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the token and its permissions, the state directory, the clock and Node (changes nothing)')
    .action(async (_o: unknown, cmd: Command) => {
      const { mkdir, rm, writeFile } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const { request } = await import('undici');
      const { globals, readToken } = await import('../context.js');
      const { GraphClient } = await import('../../graph/client.js');
      const { openStore } = await import('../../store/open.js');
      const { EXIT, SilentExit, describeError } = await import('../errors.js');
      const { printJson } = await import('../output.js');
      const { renderTable } = await import('../format.js');
      const g = globals(cmd);
      const rows: Row[] = [];

      const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
      rows.push({ check: 'node', status: major > 20 || (major === 20 && minor >= 19) ? 'pass' : 'fail', detail: `Node ${process.versions.node} (needs >= 20.19)` });

      // The store: writable (a probe file in a scratch dir, removed) and every document readable.
      try {
        if (g.store.startsWith('file:')) {
          await mkdir(g.stateDir, { recursive: true });
          const probe = join(g.stateDir, `.doctor-${process.pid}`);
          await writeFile(probe, 'ok');
          await rm(probe);
        }
        let ok = 0;
        const damaged: string[] = [];
        const store = await openStore(g.store);
        await store
          .scan((m) => {
            if (m.error) damaged.push(m.error.message);
            else ok++;
            return null;
          })
          .finally(() => store.close());
        rows.push({ check: 'store', status: damaged.length ? 'fail' : 'pass', detail: `${g.stateDir}: writable, ${ok} migration(s) readable${damaged.length ? `, ${damaged.length} damaged: ${damaged.join('; ')}` : ''}` });
      } catch (e) {
        rows.push({ check: 'store', status: 'fail', detail: `${g.stateDir}: ${describeError(e)}` });
      }

      let token: string | null = null;
      try {
        token = readToken(g);
      } catch (e) {
        rows.push({ check: 'token', status: 'fail', detail: describeError(e) });
      }
      if (token) {
        try {
          const client = new GraphClient({ token, baseUrl: g.graphUrl, apiVersion: g.apiVersion, ...(g.timeoutMs !== undefined ? { timeoutMs: g.timeoutMs } : {}) });
          const perms = await client.getPermissions();
          const granted = new Set(perms.filter((p) => p.status === 'granted').map((p) => p.permission));
          rows.push({ check: 'token', status: 'pass', detail: `accepted by ${g.graphUrl}` });
          const need = 'whatsapp_business_management';
          rows.push({
            check: 'permissions',
            status: granted.has(need) ? 'pass' : 'fail',
            detail: granted.has(need) ? `${need} granted${granted.has('business_management') ? ', business_management granted' : ' (business_management missing: same_business may stay unknown)'}` : `${need} is not granted: give the system user this permission and generate a new token`,
          });
        } catch (e) {
          rows.push({ check: 'token', status: 'fail', detail: describeError(e).split('\n')[0]! });
        }
      }

      // The clock: deadlines and the 72 h register window are absolute times. Compare with the
      // Graph host's Date header (any answer carries one).
      try {
        const res = await request(new URL('/', g.graphUrl), { method: 'GET', signal: AbortSignal.timeout(g.timeoutMs ?? 10_000) });
        await res.body.dump();
        const date = res.headers.date;
        const skew = typeof date === 'string' ? Math.round((Date.now() - Date.parse(date)) / 1000) : null;
        if (skew === null || !Number.isFinite(skew)) rows.push({ check: 'clock', status: 'warn', detail: 'the Graph host sent no Date header to compare with' });
        else rows.push({ check: 'clock', status: Math.abs(skew) <= 30 ? 'pass' : 'warn', detail: `${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} the Graph host${Math.abs(skew) > 30 ? ': fix NTP; waits and the 72 h register window use this clock' : ''}` });
      } catch (e) {
        rows.push({ check: 'clock', status: 'warn', detail: `could not compare with the Graph host: ${(e as Error).message}` });
      }

      const failed = rows.some((r) => r.status === 'fail');
      if (g.json) printJson({ ok: !failed, checks: rows });
      else process.stdout.write(`${await renderTable(['check', 'result', 'detail'], rows.map((r) => [r.check, r.status, r.detail]), { fixed: [true, true, false], weights: [0, 0, 1] })}\n`);
      if (failed) throw new SilentExit(EXIT.blocked);
    });
}
