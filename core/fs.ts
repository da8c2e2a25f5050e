import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A sibling path to write to before an atomic rename onto `finalPath` (same directory, so same filesystem). */
export function temporarySibling(finalPath: string): string {
  // No leading dot: Samba marks a dot file hidden in its DOS attributes, and that mark would
  // stay on the finished file after the rename, hiding the WIM from Windows users of the share.
  return join(dirname(finalPath), `${basename(finalPath)}.imagepe-${randomBytes(4).toString('hex')}.partial`);
}

export async function isEmptyDirectory(path: string): Promise<boolean> {
  const entries = await readdir(path);
  return entries.filter((e) => e !== 'lost+found').length === 0;
}

export async function pathKind(path: string): Promise<'missing' | 'directory' | 'file' | 'block-device' | 'other'> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) return 'directory';
    if (s.isFile()) return 'file';
    if (s.isBlockDevice()) return 'block-device';
    return 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true, recursive: true }).catch(() => undefined);
}
