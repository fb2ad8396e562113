/**
 * Advisory-lock keys. PostgreSQL advisory locks are named by one signed 64-bit integer; ours is
 * the first 8 bytes of SHA-256 over `kind:id` (stable across processes, hosts and versions,
 * unlike a language hash). Two names that collide only serialise each other (one waits for the
 * other's lock): never two holders of one name.
 *
 * pg_locks shows a bigint advisory key split in two: `classid` = the high 32 bits, `objid` = the
 * low 32 bits (both as unsigned oids), `objsubid` = 1.
 */
import { createHash } from 'node:crypto';

export interface LockKey {
  /** The signed 64-bit key, as a decimal string (pg's bigint parameter). */
  key: string;
  classid: string;
  objid: string;
  name: string;
}

export function lockKey(kind: string, id: string): LockKey {
  const name = `${kind}:${id}`;
  const h = createHash('sha256').update(name).digest();
  const u = h.readBigUInt64BE(0);
  return { key: BigInt.asIntN(64, u).toString(), classid: (u >> 32n).toString(), objid: (u & 0xffffffffn).toString(), name };
}
