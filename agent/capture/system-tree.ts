import { lstat, readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError } from '../../core/index.js';
import { mountOn, mountScratch, type Resource, type StepIO } from '../steps/index.js';
import { answersTo, isOptional, parseReference, readTable, type VolumeIdentity } from '../system/references.js';
import { describeCandidate, readOnlyProbeOptions, type SourceCandidate } from './find-root.js';

/** Filesystems whose files go into the image; the ESP's files are made anew by the deploy's bootloader step, and swap holds none. */
const TREE_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']);

/** A filesystem (or btrfs subvolume) of the reference disk that the reference system mounts below its root. */
export interface SystemMount {
  /** Where the system mounts it: an absolute path other than /. */
  mount: string;
  candidate: SourceCandidate;
  /** btrfs: the subvolume mounted there (fstab's subvol=). */
  subvolume?: string;
}

/** fstab's subvol= option: the btrfs subvolume an entry mounts (a leading / is the top level's, and dropped). */
export function subvolOption(options: string | undefined): string | undefined {
  const v = (options ?? '').split(',').find((o) => o.startsWith('subvol='))?.slice('subvol='.length).replace(/^\/+/, '');
  return v || undefined;
}

/**
 * The reference system's other filesystems, read from its own fstab: each entry with an absolute
 * mount point below / whose device (by UUID, LABEL, PARTUUID, PARTLABEL or /dev name) is a
 * partition of this disk holding a Linux filesystem. Parents come before what is mounted inside
 * them. `notes` names entries left out: storage that is not on this disk (a network share,
 * another disk), or a filesystem whose files are not captured (the ESP).
 *
 * `identities` gives every name each partition answers to, by partition number.
 */
export function systemMounts(fstab: string | undefined, candidates: readonly SourceCandidate[], identities: ReadonlyMap<number, VolumeIdentity>, root: SourceCandidate): { mounts: SystemMount[]; notes: string[] } {
  const mounts: SystemMount[] = [];
  const notes: string[] = [];
  for (const e of readTable(fstab ?? '')) {
    const [spec, mount, type, options] = e.fields;
    if (!spec || !mount || !mount.startsWith('/') || mount === '/' || type === 'swap') continue;
    const reference = parseReference(spec);
    // proc, tmpfs, server:/export, /dev/mapper/...: nothing of this disk's partitions.
    if (!reference) continue;
    const subvolume = subvolOption(options);
    const rootIdentity = identities.get(root.number);
    if (rootIdentity && answersTo(rootIdentity, reference)) {
      // The root's own filesystem again: another btrfs subvolume of it (@home beside @) is mounted
      // where the system mounts it; with the root at the top level, it is inside the tree already.
      if (root.fsType === 'btrfs' && root.subvolume && subvolume && subvolume !== root.subvolume) mounts.push({ mount: mount.replace(/\/+$/, ''), candidate: root, subvolume });
      else if (root.fsType === 'btrfs' && subvolume && subvolume !== root.subvolume) notes.push(`fstab line ${e.line} mounts subvolume ${subvolume} of the root's filesystem on ${mount}; the root is the filesystem's top level, so it is captured where it lies in it, and the deploy makes no subvolume for it`);
      continue;
    }
    const found = candidates.find((c) => c.number !== root.number && answersTo(identities.get(c.number) ?? { partition: '' }, reference));
    if (!found) {
      notes.push(`fstab line ${e.line} mounts ${spec} on ${mount}, which is not a partition of this disk: its files are not captured${isOptional(options) ? '' : ' (the deployed system will wait for it at boot)'}`);
      continue;
    }
    if (!found.fsType || !TREE_FS.has(found.fsType)) {
      if (found.fsType !== 'vfat') notes.push(`fstab line ${e.line} mounts ${describeCandidate(found)} on ${mount}: ${found.fsType ?? 'no filesystem'} is not captured`);
      continue;
    }
    if (mounts.some((m) => m.mount === mount)) throw new ImagepeError('INVALID_INPUT', `the reference's fstab mounts two filesystems on ${mount} (line ${e.line})`, { hint: 'Fix /etc/fstab on the reference, then capture again.' });
    mounts.push({ mount: mount.replace(/\/+$/, ''), candidate: found, ...(found.fsType === 'btrfs' && subvolume ? { subvolume } : {}) });
  }
  mounts.sort((a, b) => depth(a.mount) - depth(b.mount));
  return { mounts, notes };
}

/**
 * The reference system mounted as one tree at a scratch directory: its root, then each of
 * `mounts` on its mount point inside it. Read-only mounts replay no journal (see
 * readOnlyProbeOptions). A mount point must be a real directory of the tree: a symbolic link
 * would be followed on this machine, not the reference's, so it is refused.
 * Every mount is registered with the run's cleanup; `release` unmounts them, innermost first.
 */
export async function mountSystemTree(io: StepIO, root: SourceCandidate, mounts: readonly SystemMount[], o: { readOnly: boolean; why: string }): Promise<{ dir: string; release: () => Promise<void> }> {
  const opts = (c: SourceCandidate, subvolume: string | undefined) => [o.readOnly ? readOnlyProbeOptions(c.fsType!) : '', subvolume ? `subvol=${subvolume}` : ''].filter(Boolean).join(',') || undefined;
  const top = await mountScratch(io, root.node, { prefix: 'reference', fsType: root.fsType!, options: opts(root, root.subvolume), what: `mounting ${root.node}${root.subvolume ? ` (subvolume ${root.subvolume})` : ''} ${o.readOnly ? 'read-only' : 'read-write'} ${o.why}` });
  const inner: Resource[] = [];
  for (const m of mounts) {
    await assertRealDirectory(top.dir, m.mount, m.candidate);
    inner.push(await mountOn(io, m.candidate.node, join(top.dir, m.mount), { fsType: m.candidate.fsType!, options: opts(m.candidate, m.subvolume), what: `mounting ${m.candidate.node}${m.subvolume ? ` (subvolume ${m.subvolume})` : ''} on ${m.mount} ${o.why}` }));
  }
  return {
    dir: top.dir,
    release: async () => {
      for (const r of inner.reverse()) await r.release();
      await top.resource.release();
    },
  };
}

/** Bytes in use on the filesystem mounted at `dir`: blocks less free blocks, as df counts them (the journal and inode tables are not in it). */
export async function usedBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

/** The reference's /etc/fstab, or undefined when it has none. */
export async function readFstab(rootDir: string): Promise<string | undefined> {
  try {
    const s = await lstat(join(rootDir, 'etc/fstab'));
    if (!s.isFile()) return undefined;
    return await readFile(join(rootDir, 'etc/fstab'), 'utf8');
  } catch {
    return undefined;
  }
}

async function assertRealDirectory(rootDir: string, mount: string, c: SourceCandidate): Promise<void> {
  let at = rootDir;
  for (const part of mount.split('/').filter(Boolean)) {
    at = join(at, part);
    const s = await lstat(at).catch(() => undefined);
    if (!s?.isDirectory()) {
      throw new ImagepeError('INVALID_INPUT', `the reference's fstab mounts ${describeCandidate(c)} on ${mount}, but ${mount} is ${s ? (s.isSymbolicLink() ? 'a symbolic link' : 'not a directory') : 'missing'} in its root filesystem`, {
        hint: `Make ${mount} a directory on the reference (as the system itself needs to mount it), then capture again.`,
      });
    }
  }
}

function depth(mount: string): number {
  return mount.split('/').filter(Boolean).length;
}
