import { mkdtemp, readdir, realpath, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, unmount } from '../../core/index.js';
import { attachImageFile, deactivateVolumeGroups, describeDisk, detachLoop, type ChosenDisk, type Disk } from '../../partition/index.js';
import type { MappedShare } from '../share/index.js';
import type { Resource } from './cleanup.js';
import type { StepIO } from './step.js';

// What a run makes and must let go of, each registered on the run's cleanup stack as it is made.

/** A loop device for a disk image file; detached when the run ends (DISK_IN_USE when the file is attached already). */
export async function attachDisk(io: StepIO, path: string, options: { sectorSize?: number | undefined; readOnly?: boolean }): Promise<{ device: string; resource: Resource }> {
  const device = await attachImageFile(path, { ...(options.sectorSize ? { sectorSize: options.sectorSize } : {}), ...(options.readOnly ? { readOnly: true } : {}), ...(io.signal ? { signal: io.signal } : {}) });
  const resource = io.cleanup.add(`detach ${device}`, async ({ strict, warn }) => {
    try {
      await detachLoop(device);
    } catch (e) {
      if (strict) throw e;
      warn(`could not detach ${device}; detach it with losetup -d ${device}`);
    }
  });
  return { device, resource };
}

/**
 * The device of a chosen disk, read: a block device as it is (links resolved), an image file
 * attached as a loop device for the run. `disk` describes what was opened, for resolving layouts.
 */
export async function openDisk(io: StepIO, chosen: ChosenDisk, options: { sectorSize?: number | undefined; readOnly?: boolean }): Promise<{ device: string; disk: Disk }> {
  const device = chosen.kind === 'file' ? (await attachDisk(io, chosen.path, options)).device : await realpath(chosen.path);
  return { device, disk: await describeDisk(device, io.signal ? { signal: io.signal } : {}) };
}

/** A mapped share, released after the run's log is written to it; a failed release is a warning. */
export function holdShare(io: StepIO, share: MappedShare, shown: string): void {
  io.cleanup.add('release the share', ({ warn }) => share.release().catch(() => warn(`could not release the share ${shown}`)), { holdsLog: true });
}

/**
 * LVM volume groups active on the run's disk (LVM seeing only `devices`), deactivated when the run
 * ends. Register them before anything is mounted on their volumes: the stack unwinds those first.
 */
export function holdVolumeGroups(io: StepIO, names: readonly string[], devices: readonly string[]): void {
  if (names.length === 0) return;
  io.cleanup.add(`deactivate volume groups ${names.join(', ')}`, async ({ strict, warn }) => {
    try {
      await deactivateVolumeGroups(names, devices, io.runOpts);
    } catch (e) {
      if (strict) throw e;
      warn(`could not deactivate ${names.join(', ')}: ${(e as Error).message}`);
    }
  });
}

/**
 * An empty directory under the system's temp dir, removed when the run ends. Only ever rmdir,
 * never rm -r: if an unmount failed, a recursive removal would delete the disk's files
 * through the mount. Directories made inside it (mount points) are removed when empty.
 */
export async function scratchDir(io: StepIO, prefix: string): Promise<{ dir: string; resource: Resource }> {
  const dir = await mkdtemp(join(tmpdir(), `imagepe-${prefix}-`));
  const resource = io.cleanup.add(`remove ${dir}`, async ({ strict, warn }) => {
    if (await removeEmptyDirs(dir)) return;
    if (strict) throw new Error(`${dir} is not empty`);
    warn(`${dir} is not empty and was left in place`);
  });
  return { dir, resource };
}

/**
 * Mounts `node` on `dir` and registers the unmount. Lenient release (after a failure) falls back
 * to a lazy unmount and says so; strict release waits for the unmount (writeback included).
 */
export async function mountOn(io: StepIO, node: string, dir: string, o: { fsType: string; options?: string | undefined; what: string }): Promise<Resource> {
  await run('mount', ['-t', o.fsType, ...(o.options ? ['-o', o.options] : []), node, dir], io.runOpts(o.what));
  return io.cleanup.add(`unmount ${dir}`, (how) => unmount(dir, how));
}

/** A scratch mount point with `node` mounted on it: both released when the run ends, or together through the handle. */
export async function mountScratch(io: StepIO, node: string, o: { prefix: string; fsType: string; options?: string | undefined; what: string }): Promise<{ dir: string; resource: Resource }> {
  const { dir, resource: dirResource } = await scratchDir(io, o.prefix);
  const mount = await mountOn(io, node, dir, o);
  return {
    dir,
    resource: {
      label: mount.label,
      release: async () => {
        await mount.release();
        await dirResource.release();
      },
      forget: () => {
        mount.forget();
        dirResource.forget();
      },
    },
  };
}

/** Removes a tree of empty directories (mount points), bottom up; anything with a file in it stays. */
export async function removeEmptyDirs(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return true;
  let empty = true;
  for (const e of entries) {
    if (e.isDirectory() && !e.isSymbolicLink()) empty = (await removeEmptyDirs(join(dir, e.name))) && empty;
    else empty = false;
  }
  if (!empty) return false;
  return rmdir(dir).then(
    () => true,
    () => false,
  );
}
