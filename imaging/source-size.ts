import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeSize {
  /**
   * Bytes the files' data takes on disk (st_blocks * 512), each hard-linked inode counted once:
   * a sparse file counts its written blocks, not its length, as the holes cost no space.
   */
  bytes: number;
  /** The files' lengths (st_size) summed, hard-linked inodes once: a sparse file counts in full. */
  apparentBytes: number;
  files: number;
  directories: number;
}

// Directories read at once: the walk is bound by syscall latency, not CPU, so overlapping the
// calls is what makes it a small fraction of the capture it precedes.
const PARALLEL_DIRECTORIES = 16;

export interface MeasureOptions {
  /** Directories below the root, as paths inside it ("/mnt/data"), whose contents are not counted (they are left out of the capture). */
  skip?: readonly string[];
}

/**
 * Sums the data a capture will read, for the free-space estimate: allocated and apparent bytes
 * (see TreeSize). Symbolic links are not followed and each hard-linked inode counts once, as
 * wimlib stores it once. Unreadable entries are passed over. Throws nothing of its own.
 */
export async function measureTree(root: string, options: MeasureOptions = {}): Promise<TreeSize> {
  const seen = new Set<string>();
  const skip = new Set((options.skip ?? []).map((p) => join(root, p)));
  const out: TreeSize = { bytes: 0, apparentBytes: 0, files: 0, directories: 1 };
  const pending: string[] = [root];
  const measureDirectory = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    const files: string[] = [];
    for (const e of entries) {
      if (e.isDirectory()) {
        out.directories++;
        const sub = join(dir, e.name);
        if (!skip.has(sub)) pending.push(sub);
      } else {
        out.files++;
        if (e.isFile()) files.push(join(dir, e.name));
      }
    }
    const stats = await Promise.all(files.map((f) => lstat(f).catch(() => undefined)));
    for (const s of stats) {
      if (!s) continue;
      if (s.nlink > 1) {
        const key = `${s.dev}:${s.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      out.bytes += s.blocks * 512;
      out.apparentBytes += s.size;
    }
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      const dir = pending.pop();
      if (dir === undefined) return;
      await measureDirectory(dir);
    }
  };
  // Workers stop when the queue is empty, though a busy one may still add to it: go again until it stays empty.
  while (pending.length > 0) await Promise.all(Array.from({ length: PARALLEL_DIRECTORIES }, worker));
  return out;
}
