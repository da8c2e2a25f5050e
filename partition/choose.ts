import { realpath } from 'node:fs/promises';
import { ImagepeError, formatBytes, pathKind } from '../core/index.js';
import { listDisks, selectDisk, type DiskCandidate } from './disks.js';
import type { DiskTarget } from './schema.js';

export interface ChooseDiskOptions {
  /** What is done to the disk, for messages: "deployed to", "captured from", "partitioned". */
  purpose: string;
  /** A disk the user named (--disk, imagepe.disk=): wins over `target`. */
  path?: string | undefined;
  /** The plan's or layout's disk: a path, or a rule that picks one. */
  target?: DiskTarget | undefined;
  /** With neither: take the only disk that could be meant (a capture's reference), or list them. */
  onlyCandidate?: boolean;
  /** Devices never chosen, not even when named: the boot medium the PE started from. */
  bootMedia?: readonly (string | null | undefined)[];
  /** What to tell a user who named no disk at all. */
  missingHint?: string;
  signal?: AbortSignal | undefined;
}

export interface ChosenDisk {
  /** The disk as named or picked: a block device or a disk image file. */
  path: string;
  kind: 'file' | 'block-device';
}

/**
 * The disk a run works on: the one named, else the one the rule picks (never the boot medium,
 * the running system's disk, a disk with mounted filesystems, a read-only or, unless allowed,
 * a removable one), else with `onlyCandidate` the only disk that is none of those. The boot
 * medium is refused even when named, by any link to it. Nothing is written.
 *
 * Throws INVALID_INPUT (nothing named, or not a disk), NOT_FOUND (missing, or no disk fits),
 * REFUSED (the boot medium).
 */
export async function chooseDisk(options: ChooseDiskOptions): Promise<ChosenDisk> {
  const bootMedia = (options.bootMedia ?? []).filter((d): d is string => !!d);
  const refused = new Set<string>();
  for (const d of bootMedia) refused.add(await realpath(d).catch(() => d));
  let path = options.path;
  if (!path && options.target) {
    if ('path' in options.target) path = options.target.path;
    else path = selectDisk(options.target, await listDisks(options.signal), { bootDisks: [...refused] }).path;
  }
  if (!path && options.onlyCandidate) path = onlyCandidate(await listDisks(options.signal), refused, options.purpose).path;
  if (!path) throw new ImagepeError('INVALID_INPUT', 'no disk was named', { hint: options.missingHint ?? 'Name the disk with --disk.' });

  const kind = await pathKind(path);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `disk ${path} does not exist`, { hint: 'Create an image file with truncate -s SIZE FILE, or name a block device.' });
  if (kind !== 'file' && kind !== 'block-device') throw new ImagepeError('INVALID_INPUT', `${path} is neither a block device nor a disk image file`);
  if (refused.has(await realpath(path))) {
    throw new ImagepeError('REFUSED', `${path} is the boot medium the PE started from; it is never ${options.purpose}`, {
      hint: 'Name another disk; imagepe never touches the medium it booted from.',
    });
  }
  return { path, kind };
}

function onlyCandidate(disks: readonly DiskCandidate[], refused: ReadonlySet<string>, purpose: string): DiskCandidate {
  const fits = disks.filter((d) => d.type === 'disk' && d.sizeBytes > 0 && !/^(zram|ram)\d/.test(d.name) && !refused.has(d.path) && !d.removable && !d.holdsSystem);
  if (fits.length === 1) return fits[0]!;
  const why = (d: DiskCandidate) => (refused.has(d.path) ? ' (the boot medium)' : d.removable ? ' (removable)' : d.holdsSystem ? ' (the running system)' : '');
  const listed = disks
    .filter((d) => d.type === 'disk')
    .map((d) => `\n  - ${d.path} ${formatBytes(d.sizeBytes)}${why(d)}`)
    .join('');
  throw new ImagepeError(fits.length === 0 ? 'NOT_FOUND' : 'INVALID_INPUT', `${fits.length === 0 ? 'no disk' : `${fits.length} disks`} could be the disk to be ${purpose}:${listed || ' no disks found'}`, {
    hint: 'Name the disk: in the plan, or with --disk (imagepe.disk= in the PE).',
  });
}
