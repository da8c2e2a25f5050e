import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeSize {
  /** Bytes of file data, each hard-linked inode counted once. */
  bytes: number;
  files: number;
  directories: number;
}

/**
 * Sums the data a capture will read, for the free-space estimate. Symbolic links are not
 * followed and each hard-linked inode counts once, as wimlib stores it once.
 */
export async function measureTree(root: string): Promise<TreeSize> {
  const seen = new Set<string>();
  const out: TreeSize = { bytes: 0, files: 0, directories: 1 };
  const stack: string[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      let s;
      try {
        s = await lstat(path);
      } catch {
        continue;
      }
      if (s.isDirectory()) {
        out.directories++;
        stack.push(path);
        continue;
      }
      out.files++;
      if (!s.isFile()) continue;
      const key = `${s.dev}:${s.ino}`;
      if (s.nlink > 1) {
        if (seen.has(key)) continue;
        seen.add(key);
      }
      out.bytes += s.size;
    }
  }
  return out;
}
