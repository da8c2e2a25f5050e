import { realpath } from 'node:fs/promises';
import { ImagepeError, readMounts, type MountEntry } from '../core/index.js';

/**
 * The mount points strictly below `root` (a real, absolute path) among `mounts`, as paths inside
 * the capture ("/mnt/data"), outermost only: what is mounted inside a skipped mount is skipped
 * with it. A mount on `root` itself is the source's own filesystem and is not listed. Sorted. Pure.
 */
export function mountPointsBelow(root: string, mounts: readonly MountEntry[]): string[] {
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  const inside = [...new Set(mounts.map((m) => m.mountPoint).filter((p) => p.startsWith(`${base}/`) && p.length > base.length + 1))]
    .map((p) => p.slice(base.length))
    .sort();
  return inside.filter((p) => !inside.some((outer) => outer !== p && p.startsWith(`${outer}/`)));
}

/** The other filesystems mounted below the directory `source` (after resolving links), from /proc/self/mountinfo; see mountPointsBelow. */
export async function otherFilesystems(source: string): Promise<string[]> {
  return mountPointsBelow(await realpath(source), await readMounts());
}

/**
 * wimlib capture-config lines that leave out what is inside each mount point but keep the
 * directory itself, empty, as the mount point the restored system needs. wimlib reads `*`, `?`
 * and `[` as wildcards and a backslash as a path separator, with no escape: a mount point whose
 * name holds one could not be named exactly, so it throws UNSUPPORTED. Otherwise pure.
 */
export function mountExclusions(mountPoints: readonly string[]): string[] {
  return mountPoints.map((p) => {
    if (/[[\]*?\\]/.test(p)) {
      throw new ImagepeError('UNSUPPORTED', `another filesystem is mounted on ${p} inside the capture source, and wimlib's exclusion patterns cannot name a path holding * ? [ ] or \\`, {
        hint: 'Unmount it before the capture, or include it (--cross-filesystems).',
      });
    }
    return `${p}/*`;
  });
}
