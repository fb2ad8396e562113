/** `waba-migrate serve`: the dashboard and read-only JSON API over the state directory. */
import type { Command } from 'commander';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('a live dashboard and read-only JSON API over every migration (token required; loopback by default)')
    .option('--host <host>', 'address to bind (anything but loopback needs WABA_DASHBOARD_TOKEN)', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', '8080')
    .option('--allow-actions', 'allow write actions: retry now, cancel with a reason, submit a code (needs the access token)')
    .option('--allow-pin', 'with --allow-actions: accept the register PIN with a code, from loopback clients only')
    .action(async (o: { host: string; port: string; allowActions?: boolean; allowPin?: boolean }, cmd: Command) => {
      const { globals } = await import('../globals.js');
      const { UsageError } = await import('../errors.js');
      const { InputError } = await import('../../runner/validate.js');
      const { generateToken, isLoopback } = await import('../../server/auth.js');
      const g = globals(cmd);
      const port = Number(o.port);
      if (!/^\d+$/.test(o.port) || port > 65535) throw new InputError('--port', `${o.port} is not a port: use 0-65535`);
      const envToken = (process.env.WABA_DASHBOARD_TOKEN ?? '').trim();
      if (!isLoopback(o.host) && !envToken)
        throw new UsageError(`--host ${o.host} is reachable from other machines: set WABA_DASHBOARD_TOKEN to a long random secret first (a generated token is only allowed on loopback); nothing was started`);
      if (envToken && envToken.length < 16) throw new UsageError('WABA_DASHBOARD_TOKEN: use at least 16 characters (e.g. `openssl rand -base64 24`)');
      if (o.allowPin && !o.allowActions) throw new UsageError('--allow-pin needs --allow-actions (the PIN is only ever sent with a code)');
      const { openStore } = await import('../../store/open.js');
      const store = await openStore(g.store);
      const { createDashboard } = await import('../../server/app.js');
      let actions: import('../../server/actions.js').ActionOptions | undefined;
      if (o.allowActions) {
        const { engineOn, readToken } = await import('../context.js');
        const graphToken = readToken(g); // retry and code call Meta: refuse now, not on the first click
        actions = { engine: (operator) => engineOn(store, g, graphToken, undefined, { operator }), allowPin: o.allowPin === true };
      }
      const token = envToken || generateToken();
      const dashboard = await createDashboard({ store, token, ...(actions ? { actions } : {}), ...(g.notifyUrl ? { notifyUrl: g.notifyUrl } : {}) });
      let url: string;
      try {
        url = await dashboard.listen(o.host, port);
      } catch (e) {
        await dashboard.close();
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new UsageError(`--port ${port}: already in use on ${o.host}; pick another port (or --port 0 for a free one)`);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`--host ${o.host}: not an address of this machine`);
        throw e;
      }
      // Printed once, to stderr, so it does not land in a captured stdout; never in a page.
      process.stderr.write(
        envToken
          ? `waba-migrate dashboard on ${url}/ (token from WABA_DASHBOARD_TOKEN; open ${url}/?token=<it> once in a browser)\n`
          : `waba-migrate dashboard on ${url}/\n  open ${url}/?token=${token}\n  (a token generated for this run; the API takes it as Authorization: Bearer <token>; set WABA_DASHBOARD_TOKEN to choose one)\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await dashboard.close();
    });
}
