import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ImagepeError } from './errors.js';
import { formatBytes } from './units.js';

/**
 * Free bytes for an unprivileged writer on the filesystem that holds `path` (or its nearest
 * existing parent). Node's own statfs, not a native addon: the agent runs bundled in the PE,
 * where there is no node_modules to load an addon from.
 */
export async function freeBytes(path: string): Promise<number> {
  let probe = path;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  const s = await statfs(probe);
  return s.bavail * s.bsize;
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
