import { mkdir, mkdtemp, readFile, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run, unmount } from '../../core/index.js';

/** Written last by verify: a disk with this file went through every step. */
export const DEPLOYED_MARKER = '/var/lib/imagepe/deployed.json';
/**
 * Written at the end of format and replaced by DEPLOYED_MARKER at verify: while it is there, the
 * disk holds a deploy that has not finished (a power cut, a share gone), and a rerun names it.
 */
export const IN_PROGRESS_MARKER = '/var/lib/imagepe/deploying.json';

export async function writeMarker(root: string, marker: string, data: Record<string, unknown>): Promise<void> {
  const path = join(root, marker);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o644 });
}

/**
 * What imagepe left on a Linux filesystem, in words: an unfinished deploy or a finished one;
 * undefined for anything else. The filesystem is mounted read-only without journal replay, so
 * not a byte is written, and after a power cut only what was checkpointed is seen.
 */
export async function recognizeDeploy(node: string, fsType: string): Promise<string | undefined> {
  if (fsType !== 'ext4' && fsType !== 'xfs') return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-probe-'));
  const opts = (what: string) => ({ what, timeoutMs: 60_000 });
  try {
    await run('mount', ['-t', fsType, '-o', fsType === 'ext4' ? 'ro,noload' : 'ro,norecovery', node, dir], opts(`looking into ${node}`));
  } catch {
    await rmdir(dir).catch(() => undefined);
    return undefined;
  }
  try {
    type Marker = { image?: string; startedAt?: string; deployedAt?: string };
    // A marker that exists but does not parse (cut off mid-write) still counts.
    const read = async (marker: string): Promise<Marker | null> => {
      const text = await readFile(join(dir, marker), 'utf8').catch(() => undefined);
      if (text === undefined) return null;
      try {
        return JSON.parse(text) as Marker;
      } catch {
        return {};
      }
    };
    const unfinished = await read(IN_PROGRESS_MARKER);
    if (unfinished) return `an unfinished imagepe deploy of ${unfinished.image ?? 'an image'}${unfinished.startedAt ? ` started ${unfinished.startedAt}` : ''}`;
    const done = await read(DEPLOYED_MARKER);
    if (done) return `a system imagepe deployed from ${done.image ?? 'an image'}${done.deployedAt ? ` at ${done.deployedAt}` : ''}`;
    return undefined;
  } finally {
    // A probe that cannot be unmounted cleanly is detached lazily; it was read-only.
    await unmount(dir, { strict: false, warn: () => undefined, timeoutMs: 60_000 });
    await rmdir(dir).catch(() => undefined);
  }
}
