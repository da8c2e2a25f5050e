import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rmdir } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { MTOOLS_ENV, run } from '../../core/index.js';
import { withAttachedImage } from '../../partition/index.js';
import type { EntrySnapshot } from '../tree.js';

// What a deployed disk holds, read back with tools that did not write it, leaving out only what
// is meant to differ between two deploys of the same plan: random identifiers (disk GUID,
// partition and filesystem UUIDs), times, and the loop device the file happened to get.

/** A path of a deployed tree as two deploys must agree on it: EntrySnapshot's content and owner fields, devices and FIFOs as "other". */
export type TreeEntry = Pick<EntrySnapshot, 'mode' | 'uid' | 'gid' | 'size' | 'sha256' | 'target'> & { type: 'file' | 'dir' | 'symlink' | 'other' };

export interface DiskState {
  /** sfdisk --json without the disk and partition GUIDs and with device names made generic. */
  table: unknown;
  /** blkid per partition: TYPE, LABEL, PARTLABEL. */
  filesystems: Record<string, Record<string, string>>;
  /** The root filesystem, path by path; the deployed marker without its time. */
  root: Record<string, TreeEntry>;
  marker: Record<string, unknown> | undefined;
  /** The ESP's files (mdir) with the sha256 of each (mtype). */
  esp: Record<string, string>;
}

const MARKER = 'var/lib/imagepe/deployed.json';

/** Reads a disk image file deployed with the base layout (ESP p1, bios-boot p2, ext4 root p3). */
export async function readDiskState(disk: string): Promise<DiskState> {
  return withAttachedImage(disk, (loop) => readAttached(disk, loop), { readOnly: true });
}

async function readAttached(disk: string, loop: string): Promise<DiskState> {
  const mnt = await mkdtemp(join(dirname(disk), 'state-'));
  try {
    const name = basename(loop);
    const generic = (text: string) => text.replaceAll(loop, '/dev/DISK').replaceAll(name, 'DISK');
    const sf = JSON.parse((await run('sfdisk', ['--json', loop])).stdout) as { partitiontable: Record<string, unknown> & { partitions?: Record<string, unknown>[] } };
    const { id: _id, device: _device, ...table } = sf.partitiontable;
    table.partitions = (sf.partitiontable.partitions ?? []).map(({ uuid: _uuid, node, ...p }) => ({ ...p, node: generic(String(node)) }));

    const filesystems: DiskState['filesystems'] = {};
    for (const n of [1, 2, 3]) {
      const r = await run('blkid', ['--probe', '--output', 'export', `${loop}p${n}`], { okExitCodes: [0, 2] });
      const kv = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      filesystems[`p${n}`] = Object.fromEntries(Object.entries(kv).filter(([k]) => ['TYPE', 'LABEL', 'PART_ENTRY_NAME', 'PART_ENTRY_TYPE', 'PART_ENTRY_SIZE', 'PART_ENTRY_OFFSET'].includes(k)));
    }

    await run('mount', ['-o', 'ro', `${loop}p3`, mnt]);
    let root: DiskState['root'];
    let marker: DiskState['marker'];
    try {
      root = await treeDigest(mnt);
      const text = await readFile(join(mnt, MARKER), 'utf8').catch(() => undefined);
      if (text !== undefined) {
        const { deployedAt: _t, ...rest } = JSON.parse(text) as Record<string, unknown>;
        marker = rest;
        // Its content carries the time; the rest of it is compared through `marker`.
        delete root[MARKER]!.sha256;
        delete root[MARKER]!.size;
      }
    } finally {
      await run('umount', [mnt]);
    }

    const esp: DiskState['esp'] = {};
    const listing = await run('mdir', ['-/', '-b', '-i', `${loop}p1`, '::/'], { env: MTOOLS_ENV, okExitCodes: [0, 1] });
    for (const line of listing.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
      if (line.endsWith('/')) continue;
      const data = await run('mtype', ['-i', `${loop}p1`, line], { env: MTOOLS_ENV });
      esp[line] = createHash('sha256').update(data.stdout).digest('hex');
    }
    return { table, filesystems, root, marker, esp };
  } finally {
    await rmdir(mnt).catch(() => undefined);
  }
}

/** Every path under root with its type, owner, mode and, for files, size and sha256. */
export async function treeDigest(root: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const s = await lstat(path);
      const e: TreeEntry = { type: s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other', mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
      if (e.type === 'file') {
        e.size = s.size;
        e.sha256 = createHash('sha256').update(await readFile(path)).digest('hex');
      }
      if (e.type === 'symlink') e.target = await readlink(path);
      out[relative(root, path)] = e;
      if (e.type === 'dir') await walk(path);
    }
  };
  await walk(root);
  return out;
}
