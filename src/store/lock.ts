/**
 * One process at a time per migration. proper-lockfile does the locking (an atomic mkdir, kept
 * fresh by mtime updates and taken over when stale). Beside the lock we write who holds it (pid,
 * host) so the loser can name the holder, and so a lock left by a killed process on this host is
 * recovered at once instead of after the staleness timeout: that pid-liveness check is the one
 * thing proper-lockfile does not do.
 */
import { hostname } from 'node:os';
import { readFile, rm, writeFile } from 'node:fs/promises';
import lockfile from 'proper-lockfile';

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export class MigrationLockedError extends Error {
  override readonly name = 'MigrationLockedError';
  constructor(
    readonly id: string,
    readonly owner: LockOwner | null,
  ) {
    super(
      owner
        ? `migration ${id} is in use by process ${owner.pid} on ${owner.host} since ${owner.since}; wait for it to finish (or stop that process) and try again`
        : `migration ${id} is in use by another process; try again in a few seconds`,
    );
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const o = JSON.parse(await readFile(path, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? o : null;
  } catch {
    return null;
  }
}

/** Takes the lock for `target` (the document path); returns the release function. */
export async function acquireLock(id: string, target: string, lockPath: string, ownerPath: string): Promise<() => Promise<void>> {
  const attempt = () =>
    lockfile.lock(target, { lockfilePath: lockPath, realpath: false, stale: 15_000, update: 5_000, retries: 0 });
  let release: () => Promise<void>;
  try {
    release = await attempt();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    const owner = await readOwner(ownerPath);
    if (owner && owner.host === hostname() && owner.pid !== process.pid && !pidAlive(owner.pid)) {
      // The holder died without releasing (SIGKILL, crash): its lock is ours to clear.
      await rm(lockPath, { recursive: true, force: true });
      try {
        release = await attempt();
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code === 'ELOCKED') throw new MigrationLockedError(id, await readOwner(ownerPath));
        throw e2;
      }
    } else {
      throw new MigrationLockedError(id, owner);
    }
  }
  const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  await writeFile(ownerPath, JSON.stringify(owner), { mode: 0o600 });
  return async () => {
    await rm(ownerPath, { force: true });
    await release();
  };
}
