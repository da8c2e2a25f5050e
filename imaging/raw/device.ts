import { stat } from 'node:fs/promises';
import { ImagepeError, formatBytes, run } from '../../core/index.js';

export interface TargetGeometry {
  bytes: number;
  /** Logical sector size: the unit of every O_DIRECT transfer (512 for a plain file). */
  sectorSize: number;
  isBlockDevice: boolean;
}

/**
 * The target's size and sector size: `blockdev --getsize64 --getss` for a block device, the
 * size of a regular file (tests). Throws NOT_FOUND when it does not exist, INVALID_INPUT for
 * anything else.
 */
export async function targetGeometry(path: string, signal?: AbortSignal): Promise<TargetGeometry> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new ImagepeError('NOT_FOUND', `the target ${path} does not exist (${e.code ?? e.message})`, { hint: 'Name the disk to write (lsblk lists them).', cause: e });
  });
  if (st.isFile()) return { bytes: st.size, sectorSize: 512, isBlockDevice: false };
  if (!st.isBlockDevice()) throw new ImagepeError('INVALID_INPUT', `the target ${path} is neither a block device nor a regular file`, { hint: 'Name a whole disk such as /dev/sda or /dev/nvme0n1.' });
  const r = await run('blockdev', ['--getsize64', '--getss', path], { what: `reading the size of ${path}`, timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  const [bytes, sector] = r.stdout.trim().split(/\s+/).map(Number);
  if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(sector) || !sector) throw new ImagepeError('INVALID_INPUT', `blockdev gave no size for ${path}: ${r.stdout.trim()}`);
  return { bytes: bytes!, sectorSize: sector, isBlockDevice: true };
}

/**
 * NO_SPACE for an image that does not fit, with what state the disk is in. `writtenUpTo`: found
 * while writing (the size was not known in advance), after that many bytes were written.
 */
export function noSpace(image: string, imageBytes: number, device: string, deviceBytes: number, writtenUpTo?: number): ImagepeError {
  const state = writtenUpTo ? ` The first ${formatBytes(writtenUpTo)} were written: the disk holds a partial image and must not be booted.` : ' Nothing was written.';
  return new ImagepeError('NO_SPACE', `${image} is ${writtenUpTo === undefined ? '' : 'at least '}${imageBytes} bytes (${formatBytes(imageBytes)}), more than the ${deviceBytes} bytes (${formatBytes(deviceBytes)}) of ${device}.${state}`, {
    hint: 'Deploy to a larger disk, or use an image made for this disk size.',
  });
}
