import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import diskusage from 'diskusage';
import { ImagepeError } from './errors.js';
import { formatBytes } from './units.js';

/** Free bytes for an unprivileged writer on the filesystem that holds `path` (or its nearest existing parent). */
export async function freeBytes(path: string): Promise<number> {
  let probe = path;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  const info = await diskusage.check(probe);
  return info.available;
}

/**
 * Refuses to start a job that cannot finish: a capture or apply that runs out of space halfway
 * wastes the time it ran and leaves a partial result to clean up.
 */
export async function ensureFreeSpace(path: string, neededBytes: number, what: string): Promise<void> {
  const free = await freeBytes(path);
  if (free < neededBytes) {
    throw new ImagepeError(
      'NO_SPACE',
      `not enough free space for ${what}: ${formatBytes(neededBytes)} needed at ${path}, ${formatBytes(free)} free`,
      { hint: 'Free some space, choose another destination, or pass --no-space-check if you know the estimate is too high' },
    );
  }
}
