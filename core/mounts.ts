import { readFile, realpath } from 'node:fs/promises';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
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
