import { readFile, realpath } from 'node:fs/promises';
import { run } from './run.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  /** The mount's own options (rw, nosuid, relatime, ...). */
  options: string;
  /** The filesystem's options, after the source (an overlay's lowerdir= and upperdir= are here). */
  superOptions: string;
}

/** The kernel's mount table, with the octal escapes of /proc/self/mountinfo decoded. */
export async function readMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return parseMountInfo(text);
}

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    out.push({
      mountPoint: unescapeMount(l[4] ?? ''),
      options: l[5] ?? '',
      fsType: r[0] ?? '',
      source: unescapeMount(r[1] ?? ''),
      superOptions: r[2] ?? '',
    });
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mount at exactly `dir` (after resolving links), the last one when several are stacked. */
export async function mountAt(dir: string): Promise<MountEntry | undefined> {
  const real = await realpath(dir).catch(() => dir);
  const mounts = await readMounts();
  return mounts.filter((m) => m.mountPoint === real).pop();
}

/** Mounts whose source is `device` (after resolving links). */
export async function mountsOf(device: string): Promise<MountEntry[]> {
  const real = await realpath(device).catch(() => device);
  return (await readMounts()).filter((m) => m.source === real || m.source === device);
}

/**
 * Unmounts `dir`. Strict: waits for the unmount (writeback included) and throws when it fails.
 * Lenient (cleanup after a failure or a cancel, when the run is lost anyway): on failure it
 * detaches the mount lazily and says so through `warn`. Takes no abort signal: cleanup runs
 * after a cancel too.
 */
export async function unmount(dir: string, how: { strict: boolean; warn: (text: string) => void; timeoutMs?: number }): Promise<void> {
  try {
    await run('umount', [dir], { what: `unmounting ${dir}`, timeoutMs: how.timeoutMs ?? 300_000 });
  } catch (e) {
    if (how.strict) throw e;
    await run('umount', ['-l', dir], { what: `unmounting ${dir}`, timeoutMs: 60_000 }).catch(() => undefined);
    how.warn(`could not unmount ${dir} cleanly`);
  }
}
