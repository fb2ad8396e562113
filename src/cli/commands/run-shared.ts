/**
 * What start, resume and resend-code share: run the engine with progress and Ctrl-C handling,
 * print the result, map it to an exit code.
 */
import type { MigrationView } from '../../runner/view.js';
import { exitCodeForView, StoppedError } from '../errors.js';
import { printJson, printView, Progress } from '../output.js';

/**
 * SIGINT/SIGTERM abort the run: the engine stops before its next request (the saved state is a
 * resume point, as after a crash). A second signal exits at once.
 */
export function stopOnSignals(onFirst: (sig: 'SIGINT' | 'SIGTERM') => void): { signal: AbortSignal; received: () => 'SIGINT' | 'SIGTERM' | null; dispose: () => void } {
  const ac = new AbortController();
  let got: 'SIGINT' | 'SIGTERM' | null = null;
  const handler = (sig: 'SIGINT' | 'SIGTERM') => {
    if (got) process.exit(sig === 'SIGTERM' ? 143 : 130);
    got = sig;
    onFirst(sig);
    ac.abort(sig);
  };
  const onInt = () => handler('SIGINT');
  const onTerm = () => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: ac.signal,
    received: () => got,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

export async function runWithProgress(json: boolean, body: (p: Progress, signal: AbortSignal) => Promise<MigrationView>, quiet = false): Promise<number> {
  const progress = new Progress(!json && !quiet);
  await progress.init();
  const stop = stopOnSignals(() => {
    progress.stop();
    if (!json) process.stderr.write('\nStopping before the next request (press Ctrl-C again to quit at once)…\n');
  });
  try {
    let view: MigrationView;
    try {
      view = await body(progress, stop.signal);
    } catch (e) {
      const interrupted = (e as { name?: string }).name === 'RunInterruptedError' ? (e as { view: MigrationView }).view : null;
      if (!interrupted && !stop.received()) throw e;
      progress.stop();
      const sig = stop.received() ?? 'SIGINT';
      if (interrupted) {
        if (json) printJson({ ...interrupted, stoppedBy: sig });
        else {
          printView(interrupted);
          process.stderr.write(`Stopped by ${sig} in ${interrupted.state}; the state is saved. Continue with: waba-migrate resume ${interrupted.id}\n`);
        }
      }
      throw new StoppedError(sig);
    }
    if (stop.received()) {
      progress.stop();
      if (json) printJson({ ...view, stoppedBy: stop.received() });
      else {
        printView(view);
        process.stderr.write(`Stopped by ${stop.received()} in ${view.state}; the state is saved. Continue with: waba-migrate resume ${view.id}\n`);
      }
      throw new StoppedError(stop.received()!);
    }
    if (json) printJson(view);
    else printView(view);
    return exitCodeForView(view);
  } finally {
    stop.dispose();
    progress.stop();
  }
}
