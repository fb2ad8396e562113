/** What start and resume share: run the engine with progress, print the result, map the state to an exit code. */
import type { MigrationView } from '../../runner/view.js';
import { exitCodeForState } from '../errors.js';
import { printJson, printView, Progress } from '../output.js';

export async function runWithProgress(json: boolean, body: (p: Progress) => Promise<MigrationView>): Promise<number> {
  const progress = new Progress(!json);
  await progress.init();
  try {
    const view = await body(progress);
    if (json) printJson(view);
    else printView(view);
    return exitCodeForState(view.state);
  } finally {
    progress.stop();
  }
}
