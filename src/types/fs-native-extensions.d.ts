// The subset of fs-native-extensions we use (the package ships no types).
declare module 'fs-native-extensions' {
  /** Takes an exclusive (or `shared`) advisory lock without waiting; false when another holder has it. */
  export function tryLock(fd: number, opts?: { shared?: boolean }): boolean;
  export function unlock(fd: number): void;
  const fsx: { tryLock: typeof tryLock; unlock: typeof unlock };
  export default fsx;
}
