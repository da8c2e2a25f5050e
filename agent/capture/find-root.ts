import { lstat, mkdtemp, readlink, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { ImagepeError, formatBytes, mountsOf, run, type RunOptions } from '../../core/index.js';
import * as partition from '../../partition/index.js';
import type { CaptureSource } from '../plan/index.js';

/** A partition of the reference disk, as sfdisk and blkid describe it. */
export interface SourceCandidate {
  number: number;
  node: string;
  sizeBytes: number;
  /** GPT partition name, when it has one. */
  name?: string;
  /** blkid TYPE and LABEL. */
  fsType?: string;
  label?: string;
  /** btrfs: the subvolume that holds the operating system, when it is not the top level (set by holdsOperatingSystem). */
  subvolume?: string;
  /** An LVM logical volume (VG/LV); then `number` is its key above every partition number (LV_KEY_BASE). */
  lv?: string;
}

/** Filesystems a reference root may be on (and that the capture can read as a Linux tree or an NTFS volume). */
export const CAPTURABLE_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'ntfs']);
// Only these are probed for an operating system: ext2/3 roots are rare and mount as ext4 anyway.
const ROOT_FS = new Set(['ext4', 'xfs', 'btrfs', 'ntfs', 'ext2', 'ext3']);
const LINUX_ROOT_MARKERS = ['etc/os-release', 'usr/lib/os-release', 'sbin/init'];
const WINDOWS_MARKERS = ['/Windows/System32', '/WINDOWS/system32'];

/** A partition (or logical volume) as a candidate: its number, node and size, its GPT name, and blkid's TYPE and LABEL from `fs`. */
export function sourceCandidate(number: number, node: string, sizeBytes: number, name: string | undefined, fs: Record<string, string>): SourceCandidate {
  const c: SourceCandidate = { number, node, sizeBytes };
  if (name) c.name = name;
  if (fs.TYPE) c.fsType = fs.TYPE;
  if (fs.LABEL) c.label = fs.LABEL;
  return c;
}

/** "/dev/loop0p3 (partition 3 "root"): ext4 "rootfs", 512 MiB" */
export function describeCandidate(c: SourceCandidate): string {
  const name = c.name ? ` "${c.name}"` : '';
  const fs = c.fsType ? `${c.fsType}${c.label ? ` "${c.label}"` : ''}` : 'no filesystem';
  return `${c.node} (${c.lv ? `logical volume ${c.lv}` : `partition ${c.number}${name}`}): ${fs}, ${formatBytes(c.sizeBytes)}`;
}

/**
 * Chooses the partition to capture: by filesystem label, by number, or "root", the one partition
 * whose filesystem holds an operating system (`holdsOs` looks). Exactly one must match; the
 * error lists what the disk holds, so the plan can name the right one.
 */
export async function chooseSource(
  candidates: readonly SourceCandidate[],
  selector: CaptureSource['partition'],
  disk: string,
  holdsOs: (c: SourceCandidate) => Promise<boolean>,
): Promise<SourceCandidate> {
  const found = () => (candidates.length ? candidates.map((c) => `\n  - ${describeCandidate(c)}`).join('') : ' no partitions');
  const hint = 'Name the partition in the plan: source.partition: { number: N } or { label: FILESYSTEM_LABEL }.';
  let chosen: SourceCandidate;
  if (selector === 'root') {
    const roots: SourceCandidate[] = [];
    for (const c of candidates) if (c.fsType && ROOT_FS.has(c.fsType) && (await holdsOs(c))) roots.push(c);
    if (roots.length === 0) {
      throw new ImagepeError('NOT_FOUND', `no partition of ${disk} holds an operating system (etc/os-release, usr/lib/os-release or sbin/init on Linux, Windows/System32 on NTFS); it has:${found()}`, { hint });
    }
    if (roots.length > 1) {
      throw new ImagepeError('INVALID_INPUT', `${roots.length} partitions of ${disk} hold an operating system:${roots.map((c) => `\n  - ${describeCandidate(c)}`).join('')}`, { hint });
    }
    chosen = roots[0]!;
  } else if ('label' in selector) {
    const matches = candidates.filter((c) => c.label === selector.label);
    if (matches.length === 0) throw new ImagepeError('NOT_FOUND', `no partition of ${disk} has the filesystem label "${selector.label}"; it has:${found()}`, { hint });
    if (matches.length > 1) throw new ImagepeError('INVALID_INPUT', `${matches.length} partitions of ${disk} have the filesystem label "${selector.label}"`, { hint: 'Name the partition by number instead.' });
    chosen = matches[0]!;
  } else {
    const match = candidates.find((c) => c.number === selector.number && !c.lv);
    if (!match) throw new ImagepeError('NOT_FOUND', `${disk} has no partition ${selector.number}; it has:${found()}`, { hint });
    chosen = match;
  }
  if (!chosen.fsType || !CAPTURABLE_FS.has(chosen.fsType)) {
    throw new ImagepeError('INVALID_INPUT', `${describeCandidate(chosen)} cannot be captured: expected ${[...CAPTURABLE_FS].join(', ')}`, { hint });
  }
  return chosen;
}

/**
 * Mount options that read a filesystem without writing a byte: a journal that needs replaying is
 * left alone (noload, norecovery), so looking at a partition never changes the reference disk.
 */
export function readOnlyProbeOptions(fsType: string): string {
  if (fsType === 'ext4' || fsType === 'ext3') return 'ro,noload';
  if (fsType === 'xfs') return 'ro,norecovery';
  return 'ro';
}

/** Whether a partition holds an operating system: Linux marker files, or Windows/System32 on NTFS. */
export async function holdsOperatingSystem(c: SourceCandidate, runOpts: (what: string) => RunOptions): Promise<boolean> {
  if (c.fsType === 'ntfs') {
    // ntfsls reads the volume with libntfs, read-only; no FUSE needed.
    for (const dir of WINDOWS_MARKERS) {
      const r = await run('ntfsls', ['--force', '--path', dir, c.node], { ...runOpts(`looking for ${dir} on ${c.node}`), okExitCodes: [0, 1, 2, 3] });
      if (r.exitCode === 0) return true;
    }
    return false;
  }
  // Mounted already (a running system, an automounter): look where it is, so the capture can
  // refuse it by name rather than find no operating system at all.
  const mounted = (await mountsOf(c.node))[0];
  if (mounted) return holdsLinuxRoot(mounted.mountPoint);
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-probe-'));
  const btrfs = c.fsType === 'btrfs';
  try {
    try {
      // btrfs: the top level, whatever the default subvolume is, so every subvolume can be looked at.
      await run('mount', ['-t', c.fsType!, '-o', `${readOnlyProbeOptions(c.fsType!)}${btrfs ? ',subvolid=5' : ''}`, c.node, dir], runOpts(`mounting ${c.node} read-only to look for an operating system`));
    } catch {
      // A filesystem this kernel cannot mount is not the root to capture from here.
      return false;
    }
    try {
      if (await holdsLinuxRoot(dir)) return true;
      if (!btrfs) return false;
      const found = await rootSubvolume(dir, c.node, runOpts);
      if (found) c.subvolume = found;
      return found !== undefined;
    } finally {
      await run('umount', [dir], { what: `unmounting ${dir}`, timeoutMs: 60_000 });
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

/**
 * The btrfs subvolume holding the operating system (Ubuntu's and openSUSE's installers put it in
 * @, Debian's in @rootfs, Fedora's in root): the default subvolume when it holds one, else the
 * only subvolume that does. `dir` is the filesystem's top level mounted read-only.
 */
async function rootSubvolume(dir: string, node: string, runOpts: (what: string) => RunOptions): Promise<string | undefined> {
  // A filesystem btrfs cannot read this far holds no root to capture: exit 1 reads as nothing found.
  const tolerant = (what: string): RunOptions => ({ ...runOpts(what), okExitCodes: [0, 1] });
  const paths = await partition.listSubvolumes(dir, node, tolerant);
  const def = await partition.defaultSubvolume(dir, node, tolerant);
  const holding: string[] = [];
  for (const p of paths) if (await holdsLinuxRoot(join(dir, p))) holding.push(p);
  if (def && holding.includes(def)) return def;
  return holding.length === 1 ? holding[0] : undefined;
}

async function holdsLinuxRoot(dir: string): Promise<boolean> {
  for (const marker of LINUX_ROOT_MARKERS) if (await existsInside(dir, marker)) return true;
  return false;
}

/**
 * Whether `path` exists in the tree mounted at `root`, reading links as the reference system
 * would: an absolute link (/sbin -> /usr/sbin) points into the reference, never into this
 * machine. The last component itself may be a link (/sbin/init -> ../lib/systemd/systemd).
 */
export async function existsInside(root: string, path: string): Promise<boolean> {
  const todo = path.split('/').filter(Boolean);
  let at = '/';
  for (let hops = 0; todo.length > 0; ) {
    const part = todo.shift()!;
    const next = posix.join(at, part);
    const s = await lstat(join(root, next)).catch(() => undefined);
    if (!s) return false;
    if (s.isSymbolicLink() && todo.length > 0) {
      if (++hops > 40) return false;
      const target = await readlink(join(root, next));
      todo.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) at = '/';
      continue;
    }
    at = next;
  }
  return true;
}
