/**
 * Host-local locks that the OS releases when their holder dies.
 *
 * Why an OS lock: every "is the holder still alive?" guess (mtime against a clock, a pid that
 * looks dead, then delete-and-recreate) has a window in which two processes both believe they
 * hold the lock; the previous proper-lockfile version lost exactly that race. An advisory record
 * lock on an open file (Linux: open-file-description locks via `fcntl(F_OFD_SETLK)`, BSD/macOS:
 * `flock`) is taken and dropped by the kernel in one step, and released by the kernel when the
 * holder's file descriptor is closed, which includes SIGKILL, a crash or a reboot. There is
 * nothing to judge stale, so no clock or pid is ever consulted to decide ownership.
 *
 * `fs-native-extensions` (Holepunch; prebuilt binaries, no compiler at install) exposes exactly
 * that call; Node has no built-in for it.
 *
 * Rules that keep the lock unshareable:
 * - The lock file is never deleted. Deleting it would let a newcomer lock a fresh inode while the
 *   old holder still holds the old one: two holders. An idle lock file is a few bytes.
 * - It is opened with O_NOFOLLOW (a symlink planted in the lock directory is refused, never
 *   followed) and created 0600 in a 0700 directory.
 * - After locking, the path must still name the locked inode; `assertHeld()` checks it again
 *   before every request that changes Meta's state, so a holder whose lock file was replaced
 *   (someone deleted the directory) stops instead of acting beside a second holder.
 *
 * The file's content is the holder's pid, host and start time: information for the loser's
 * message and for `status`, never used to decide anything.
 */
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import fsx from 'fs-native-extensions';

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
    what = 'migration',
  ) {
    super(
      owner
        ? `${what} ${id} is in use by process ${owner.pid} on ${owner.host} since ${owner.since}; wait for it to finish (or stop that process) and try again`
        : `${what} ${id} is in use by another process; try again in a few seconds`,
    );
  }
}

/** The lock was taken from under its holder (its file replaced or removed): stop at once. */
export class MigrationLockLostError extends Error {
  override readonly name = 'MigrationLockLostError';
  constructor(
    readonly id: string,
    detail: string,
  ) {
    super(`lost the lock on ${id} (${detail}); stopped before sending anything more. Check that nothing else manages this state directory, then resume`);
  }
}

/**
 * A held lock. `assertHeld` throws MigrationLockLostError if it is no longer ours.
 * `beforeWrite`: the check that precedes a store write of the locked migration. A store whose
 * writes are themselves fenced by the lock (PostgreSQL writes through the session that holds it,
 * so a lost session fails the write) may answer from what it already knows, without a round
 * trip; the check before a request to Meta is always the full one.
 */
export interface Lease {
  readonly owner: LockOwner;
  /**
   * Throws MigrationLockLostError when the lock is no longer this process's. `beforeWrite`: the
   * write that follows goes through a path that fails by itself if the lock is lost (a store may
   * skip its check). `beforeRequest`: a request to Meta follows; a store may count a proof of
   * ownership obtained moments ago (PostgreSQL: a query just answered on the lease's session).
   */
  assertHeld(options?: { beforeWrite?: boolean; beforeRequest?: boolean }): Promise<void>;
  release(): Promise<void>;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as LockOwner;
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.since === 'string' ? o : null;
  } catch {
    return null;
  }
}

const OPEN_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * Takes the lock at `lockPath` without waiting; throws MigrationLockedError when another open
 * file description holds it. `what` names the thing locked in messages ("migration", "number").
 */
export function acquireLock(id: string, lockPath: string, what = 'migration'): Lease {
  let fd: number;
  try {
    fd = openSync(lockPath, OPEN_FLAGS, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP')
      throw new MigrationLockLostError(id, `${lockPath} is a symbolic link; lock files are never followed. Remove the link`);
    throw e;
  }
  let locked = false;
  try {
    locked = fsx.tryLock(fd);
    if (!locked) throw new MigrationLockedError(id, readOwnerFd(fd), what);
    const st = fstatSync(fd);
    const now = lstatSync(lockPath, { throwIfNoEntry: false });
    if (!now || now.ino !== st.ino || now.dev !== st.dev) throw new MigrationLockedError(id, null, what); // replaced between open and lock
    const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    ftruncateSync(fd, 0);
    writeSync(fd, JSON.stringify(owner), 0);
    let released = false;
    return {
      owner,
      assertHeld: async () => {
        if (released) throw new MigrationLockLostError(id, 'it was released');
        const cur = lstatSync(lockPath, { throwIfNoEntry: false });
        if (!cur || cur.ino !== st.ino || cur.dev !== st.dev) throw new MigrationLockLostError(id, `${lockPath} was removed or replaced`);
      },
      release: async () => {
        if (released) return;
        released = true;
        try {
          ftruncateSync(fd, 0);
        } catch {
          // informational content only
        }
        fsx.unlock(fd);
        closeSync(fd);
      },
    };
  } catch (e) {
    if (locked) {
      try {
        fsx.unlock(fd);
      } catch {
        // closing below drops it anyway
      }
    }
    closeSync(fd);
    throw e;
  }
}

function readOwnerFd(fd: number): LockOwner | null {
  try {
    return parseOwner(readFileSync(fd, 'utf8'));
  } catch {
    return null;
  }
}

/** "maj:min:ino" of every lock in the kernel's table (/proc/locks), or null where there is none. */
function kernelLockTable(): Set<string> | null {
  let table: string;
  try {
    table = readFileSync('/proc/locks', 'utf8');
  } catch {
    return null;
  }
  const out = new Set<string>();
  for (const line of table.split('\n')) {
    const m = /\s([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (m) out.add(`${parseInt(m[1]!, 16)}:${parseInt(m[2]!, 16)}:${m[3]}`);
  }
  return out;
}

function devKey(dev: number, ino: number): string {
  return `${(dev >> 8) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}:${ino}`;
}

/**
 * Every held lock among the files of `dir` that `want` accepts, by file name: one read of the
 * kernel's table and one lstat per lock file, instead of one table read per lock (what `list`
 * needs beside thousands of migrations). Elsewhere than Linux: {@link lockHolder} per file.
 */
export function heldLocks(dir: string, want: (name: string) => boolean): Map<string, LockOwner> {
  const out = new Map<string, LockOwner>();
  let names: string[];
  try {
    names = readdirSync(dir).filter(want);
  } catch {
    return out;
  }
  const table = kernelLockTable();
  for (const name of names) {
    const path = join(dir, name);
    if (table === null) {
      const h = lockHolder(path);
      if (h) out.set(name, h);
      continue;
    }
    try {
      const st = lstatSync(path);
      if (!st.isFile() || !table.has(devKey(st.dev, st.ino))) continue;
      out.set(name, parseOwner(readFileSync(path, 'utf8')) ?? { pid: 0, host: hostname(), since: '' });
    } catch {
      // vanished or unreadable: not shown as held
    }
  }
  return out;
}

/**
 * Who holds the lock at `lockPath`, without taking it (taking it, even for an instant, could make
 * a real contender fail). On Linux the kernel's table of held locks (/proc/locks) says whether
 * the file's inode is locked; elsewhere the recorded pid is checked for liveness (display only).
 */
export function lockHolder(lockPath: string): LockOwner | null {
  let text: string;
  let ino: number;
  let dev: number;
  try {
    const st = lstatSync(lockPath);
    if (!st.isFile()) return null;
    ino = st.ino;
    dev = st.dev;
    text = readFileSync(lockPath, 'utf8');
  } catch {
    return null;
  }
  const owner = parseOwner(text);
  const table = kernelLockTable();
  if (table !== null) return table.has(devKey(dev, ino)) ? (owner ?? { pid: 0, host: hostname(), since: '' }) : null;
  if (!owner) return null;
  if (owner.host !== hostname()) return owner;
  try {
    process.kill(owner.pid, 0);
    return owner;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? owner : null;
  }
}
