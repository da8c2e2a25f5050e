import { existsSync } from 'node:fs';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ImagepeError, parseMountInfo, type MountEntry } from '../core/index.js';

/**
 * The whole disks a file is stored on, as /dev nodes: the disk under its filesystem's partition,
 * and below device-mapper (LUKS, LVM) and RAID their member disks, and below a loop device the
 * disks its backing file is on. A filesystem without a device number of its own (btrfs
 * subvolumes, overlayfs, tmpfs) is found through /proc/self/mountinfo: its source device, or an
 * overlay's upper and lower directories. RAM-backed filesystems have no disk: [].
 */
export async function disksHolding(path: string, depth = 0): Promise<string[]> {
  if (depth > 4) return [];
  const st = await stat(path, { bigint: true });
  const { major, minor } = splitDev(st.dev);
  const found = major !== 0 ? await wholeDisks(`${major}:${minor}`, depth) : await disksOfAnonymousMount(await realpath(path), depth);
  return [...new Set(found)];
}

/** The kernel's dev_t split as glibc's major()/minor() do. */
export function splitDev(dev: bigint): { major: number; minor: number } {
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  };
}

async function wholeDisks(majmin: string, depth: number): Promise<string[]> {
  const sys = await realpath(`/sys/dev/block/${majmin}`).catch(() => undefined);
  if (!sys) return [];
  const name = existsSync(join(sys, 'partition')) ? basename(dirname(sys)) : basename(sys);
  const out = [`/dev/${name}`];
  const slaves = await readdir(`/sys/class/block/${name}/slaves`).catch(() => [] as string[]);
  for (const s of slaves) {
    const dev = (await readFile(`/sys/class/block/${s}/dev`, 'utf8').catch(() => '')).trim();
    if (dev) out.push(...(await wholeDisks(dev, depth + 1)));
  }
  const backing = (await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => '')).trim();
  if (backing) out.push(...(await disksHolding(backing, depth + 1).catch(() => [])));
  return out;
}

async function disksOfAnonymousMount(path: string, depth: number): Promise<string[]> {
  const mount = mountOf(await readFile('/proc/self/mountinfo', 'utf8'), path);
  if (!mount) return [];
  if (mount.source.startsWith('/dev/')) {
    const st = await stat(mount.source, { bigint: true }).catch(() => undefined);
    if (!st?.isBlockDevice()) return [];
    const { major, minor } = splitDev(st.rdev);
    return wholeDisks(`${major}:${minor}`, depth + 1);
  }
  if (mount.fsType !== 'overlay') return [];
  const dirs = mount.options
    .split(',')
    .filter((o) => /^(upperdir|lowerdir)=/.test(o))
    .flatMap((o) => o.slice(o.indexOf('=') + 1).split(':'));
  const out: string[] = [];
  for (const d of dirs) out.push(...(await disksHolding(d, depth + 1).catch(() => [])));
  return out;
}

/**
 * The mount that holds `path` (the longest mount point that is a prefix of it; the last one when
 * several are stacked), from mountinfo text; `options` are the filesystem's (an overlay's dirs).
 */
export function mountOf(mountinfo: string, path: string): { at: string; fsType: string; source: string; options: string } | undefined {
  let best: MountEntry | undefined;
  for (const m of parseMountInfo(mountinfo)) {
    const at = m.mountPoint;
    const inside = at === '/' || path === at || path.startsWith(`${at}/`);
    if (inside && (!best || at.length >= best.mountPoint.length)) best = m;
  }
  return best && { at: best.mountPoint, fsType: best.fsType, source: best.source, options: best.superOptions };
}

/** An expected sha256 and where it came from: `--sha256`, or the file it was read from. */
export interface ExpectedSha256 {
  hex: string;
  source: string;
}

const HEX64 = /^[0-9a-f]{64}$/i;

/**
 * The hash an IMAGE.sha256 file holds: its first word (what `sha256sum IMAGE > IMAGE.sha256`
 * writes, or the bare hash), lower case. Throws INVALID_INPUT naming `where` when it is not one.
 */
export function sha256FileHash(text: string, where: string): string {
  const hex = text.trim().split(/\s+/)[0] ?? '';
  if (!HEX64.test(hex)) throw new ImagepeError('INVALID_INPUT', `${where} does not start with a sha256`, { hint: 'Write it with sha256sum IMAGE > IMAGE.sha256, or remove it.' });
  return hex.toLowerCase();
}

/**
 * The sha256 the image must have: `given` (CLI --sha256) when set, else the first hash in
 * `IMAGE.sha256` (what `sha256sum IMAGE > IMAGE.sha256` writes, or the bare hash), else the line
 * for the image's name in a `SHA256SUMS` beside it (sha256sum's format, `*` for binary mode and
 * a leading `./` allowed). Undefined when none applies. Throws INVALID_INPUT for a `given` or an
 * IMAGE.sha256 that is not a sha256.
 */
export async function expectedSha256(image: string, given?: string): Promise<ExpectedSha256 | undefined> {
  if (given !== undefined) {
    if (!HEX64.test(given.trim())) throw new ImagepeError('INVALID_INPUT', `--sha256 "${given}" is not a sha256 (64 hexadecimal digits)`);
    return { hex: given.trim().toLowerCase(), source: '--sha256' };
  }
  const own = `${image}.sha256`;
  const ownText = await readFile(own, 'utf8').catch(() => undefined);
  if (ownText !== undefined) return { hex: sha256FileHash(ownText, own), source: own };
  const sums = join(dirname(image), 'SHA256SUMS');
  const sumsText = await readFile(sums, 'utf8').catch(() => undefined);
  const name = basename(image);
  for (const line of sumsText?.split('\n') ?? []) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(?:\.\/)?(.+)$/.exec(line.trim());
    if (m && m[2] === name) return { hex: m[1]!.toLowerCase(), source: sums };
  }
  return undefined;
}
