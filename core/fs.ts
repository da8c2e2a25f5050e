import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError } from './errors.js';

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

/** Whether a process with this pid exists (EPERM: it does, and belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `body` holding the lock file `lock` (created exclusively, holding this pid) and removes
 * the file after, so processes that share a cache (jest workers) build a thing once. Waiting
 * callers poll every 2 s; a lock whose process is gone is taken over at once, one older than
 * `staleMs` (default 30 min) too. Throws COMMAND_TIMEOUT naming the lock after `waitMs`
 * (default 60 min), and what `body` throws.
 */
export async function withFileLock<T>(lock: string, body: () => Promise<T>, options: { staleMs?: number; waitMs?: number } = {}): Promise<T> {
  const staleMs = options.staleMs ?? 30 * 60_000;
  const waitMs = options.waitMs ?? 60 * 60_000;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (Date.now() > deadline) throw new ImagepeError('COMMAND_TIMEOUT', `another process held the lock ${lock} for ${Math.round(waitMs / 60_000)} min`, { hint: `If nothing is running that holds it, remove ${lock}.` });
      const age = Date.now() - (await stat(lock).then((s) => s.mtimeMs, () => Date.now()));
      // A lock whose process is gone (a killed jest worker) is stale at once, not after staleMs.
      const owner = Number(await readFile(lock, 'utf8').catch(() => ''));
      if (age > staleMs || (owner > 0 && !processAlive(owner))) await rm(lock, { force: true });
      else await sleep(2_000);
    }
  }
  try {
    return await body();
  } finally {
    await rm(lock, { force: true });
  }
}
