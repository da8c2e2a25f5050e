import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** The largest regular file under `dir` while it runs, polled; other filesystems mounted below it (the target) are not entered. */
export function watchLargestFile(dir: string, everyMs = 200): { stop(): Promise<{ bytes: number; path: string | null }> } {
  let largest = 0;
  let path: string | null = null;
  let stopped = false;
  const walk = async (d: string, dev: number): Promise<void> => {
    const entries = await readdir(d).catch(() => [] as string[]);
    for (const name of entries) {
      const p = join(d, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st || st.dev !== dev) continue;
      if (st.isDirectory()) await walk(p, dev);
      else if (st.isFile() && st.size > largest) {
        largest = st.size;
        path = p;
      }
    }
  };
  const loop = (async () => {
    const dev = (await stat(dir)).dev;
    while (!stopped) {
      await walk(dir, dev);
      await sleep(everyMs);
    }
    await walk(dir, dev);
  })();
  // A failure (the dir missing) is thrown by stop(), not left unhandled meanwhile.
  loop.catch(() => undefined);
  return {
    async stop() {
      stopped = true;
      await loop;
      return { bytes: largest, path };
    },
  };
}
