import { stat } from 'node:fs/promises';
import { ImagepeError, formatBytes, parseSize, run } from '../core/index.js';
import type { DiskRule } from './schema.js';
import type { Disk } from './types.js';

/** A disk as lsblk reports it, with what it holds summed up for the safety checks. */
export interface DiskCandidate extends Disk {
  name: string;
  type: string;
  readOnly: boolean;
  transport?: string;
  /** Every mount point on the disk or its partitions ("[SWAP]" for active swap). */
  mountPoints: string[];
  /** The disk holds the running system's root, /boot or /boot/efi. */
  holdsSystem: boolean;
  partitionCount: number;
}

/** One device of `lsblk --json --bytes --output-all`, the fields imagepe reads (burn/target.ts reads it too). */
export interface LsblkDevice {
  name?: string;
  path?: string;
  type?: string;
  'maj:min'?: string;
  size?: number | string | null;
  rm?: boolean | string | number | null;
  hotplug?: boolean | string | number | null;
  ro?: boolean | string | number | null;
  vendor?: string | null;
  model?: string | null;
  serial?: string | null;
  wwn?: string | null;
  tran?: string | null;
  'log-sec'?: number | string | null;
  mountpoints?: (string | null)[] | null;
  mountpoint?: string | null;
  children?: LsblkDevice[];
}

const SYSTEM_MOUNTS = new Set(['/', '/boot', '/boot/efi', '/usr', '/efi']);

/** Reads `lsblk --json -b -O` output (util-linux 2.33 and later, booleans or "0"/"1"). */
export function parseLsblk(json: string | unknown): DiskCandidate[] {
  const data = (typeof json === 'string' ? JSON.parse(json) : json) as { blockdevices?: LsblkDevice[] };
  const out: DiskCandidate[] = [];
  for (const dev of data.blockdevices ?? []) {
    if (dev.type !== 'disk' && dev.type !== 'loop') continue;
    const mountPoints = collectMounts(dev);
    const candidate: DiskCandidate = {
      name: dev.name ?? '',
      path: dev.path ?? `/dev/${dev.name}`,
      type: dev.type,
      kind: 'block-device',
      sizeBytes: Number(dev.size ?? 0),
      sectorSize: Number(dev['log-sec'] ?? 512),
      removable: flag(dev.rm) || flag(dev.hotplug),
      readOnly: flag(dev.ro),
      mountPoints,
      holdsSystem: mountPoints.some((m) => SYSTEM_MOUNTS.has(m)),
      partitionCount: (dev.children ?? []).filter((c) => c.type === 'part').length,
    };
    if (dev.model?.trim()) candidate.model = dev.model.trim();
    if (dev.serial?.trim()) candidate.serial = dev.serial.trim();
    if (dev.wwn?.trim()) candidate.wwn = dev.wwn.trim();
    if (dev.tran?.trim()) candidate.transport = dev.tran.trim();
    out.push(candidate);
  }
  return out;
}

function collectMounts(dev: LsblkDevice): string[] {
  const own = [...(dev.mountpoints ?? []), dev.mountpoint].filter((m): m is string => typeof m === 'string' && m.length > 0);
  return [...new Set([...own, ...(dev.children ?? []).flatMap(collectMounts)])];
}

/** An lsblk boolean column: JSON booleans in util-linux 2.33 and later, "0"/"1" before. */
export function flag(v: boolean | string | number | null | undefined): boolean {
  return v === true || v === 1 || v === '1' || v === 'true';
}

export interface SelectOptions {
  /** The disks the environment booted from, which lsblk cannot tell (a PE runs from RAM). */
  bootDisks?: readonly string[];
}

/**
 * Picks the disk a rule names, or explains why none fits. Never the disk the system runs from
 * or one with mounted filesystems, never read-only or zero-size devices, never removable media
 * unless the rule allows it. Loop devices are not disks here: a rule is for real hardware.
 */
export function selectDisk(rule: DiskRule, disks: readonly DiskCandidate[], options: SelectOptions = {}): DiskCandidate {
  const min = rule.minSize === undefined ? 0 : parseSize(rule.minSize);
  const max = rule.maxSize === undefined ? Infinity : parseSize(rule.maxSize);
  const rejected: string[] = [];
  const fits = disks.filter((d) => {
    const why = rejection(d, rule, min, max, options);
    if (why) rejected.push(`${d.path}: ${why}`);
    return !why;
  });
  if (fits.length === 0) {
    throw new ImagepeError('NOT_FOUND', `no disk matches the rule ${describeRule(rule)}${rejected.length ? `:\n${rejected.map((r) => `  - ${r}`).join('\n')}` : ' (no disks found)'}`, {
      hint: 'Loosen the rule, or name the disk with --disk.',
    });
  }
  const sorted = [...fits].sort((a, b) => (rule.pick === 'smallest' ? a.sizeBytes - b.sizeBytes : b.sizeBytes - a.sizeBytes) || a.path.localeCompare(b.path));
  return sorted[0]!;
}

function rejection(d: DiskCandidate, rule: DiskRule, min: number, max: number, options: SelectOptions): string | undefined {
  if (d.type !== 'disk') return `a ${d.type} device, not a disk`;
  if (d.sizeBytes <= 0) return 'has no media';
  if (/^(zram|ram)\d/.test(d.name)) return 'a RAM disk';
  if (options.bootDisks?.some((b) => d.path === b || `/dev/${d.name}` === b)) return 'the environment booted from it';
  if (d.holdsSystem) return 'the running system lives on it';
  if (d.mountPoints.length > 0) return `holds mounted filesystems (${d.mountPoints.join(', ')})`;
  if (d.readOnly) return 'read-only';
  if (d.removable && !rule.allowRemovable) return 'removable media (set allowRemovable: true to allow)';
  if (d.sizeBytes < min) return `${formatBytes(d.sizeBytes)}, smaller than ${formatBytes(min)}`;
  if (d.sizeBytes > max) return `${formatBytes(d.sizeBytes)}, larger than ${formatBytes(max)}`;
  if (rule.model !== undefined && !(d.model ?? '').toLowerCase().includes(rule.model.toLowerCase())) return `model "${d.model ?? ''}" does not contain "${rule.model}"`;
  if (rule.serial !== undefined && d.serial !== rule.serial) return `serial "${d.serial ?? ''}" is not "${rule.serial}"`;
  if (rule.wwn !== undefined && normaliseWwn(d.wwn) !== normaliseWwn(rule.wwn)) return `WWN "${d.wwn ?? ''}" is not "${rule.wwn}"`;
  return undefined;
}

function normaliseWwn(w: string | undefined): string {
  return (w ?? '').toLowerCase().replace(/^0x/, '').replace(/^naa\./, '');
}

export function describeRule(rule: DiskRule): string {
  const parts = [`the ${rule.pick} disk`];
  if (rule.minSize !== undefined) parts.push(`of at least ${rule.minSize}`);
  if (rule.maxSize !== undefined) parts.push(`of at most ${rule.maxSize}`);
  if (rule.model !== undefined) parts.push(`with model "${rule.model}"`);
  if (rule.serial !== undefined) parts.push(`with serial "${rule.serial}"`);
  if (rule.wwn !== undefined) parts.push(`with WWN ${rule.wwn}`);
  return `"${parts.join(' ')}"`;
}

export async function listDisks(signal?: AbortSignal): Promise<DiskCandidate[]> {
  const r = await run('lsblk', ['--json', '--bytes', '--output-all'], { what: 'listing disks', timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  return parseLsblk(r.stdout);
}

export interface DescribeOptions {
  /** The sector size a disk image file is to be used with (block devices report their own). */
  sectorSize?: number;
  signal?: AbortSignal;
}

/** Describes a block device or disk image file for the planner. */
export async function describeDisk(path: string, options: DescribeOptions = {}): Promise<Disk> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ImagepeError('NOT_FOUND', `disk ${path} does not exist`, { hint: 'Create an image file with truncate -s SIZE FILE, or name a block device.' });
    throw e;
  }
  if (s.isFile()) {
    return { path, sizeBytes: s.size, sectorSize: options.sectorSize ?? 512, kind: 'image-file' };
  }
  if (!s.isBlockDevice()) throw new ImagepeError('INVALID_INPUT', `${path} is neither a block device nor a disk image file`);
  const runOpts = { timeoutMs: 30_000, what: `reading the size of ${path}`, ...(options.signal ? { signal: options.signal } : {}) };
  const size = Number((await run('blockdev', ['--getsize64', path], runOpts)).stdout.trim());
  const sectorSize = Number((await run('blockdev', ['--getss', path], runOpts)).stdout.trim());
  if (options.sectorSize !== undefined && options.sectorSize !== sectorSize) {
    throw new ImagepeError('INVALID_INPUT', `${path} has ${sectorSize}-byte sectors, not ${options.sectorSize}`, {
      hint: 'The sector size of a block device is fixed by the hardware; --sector-size is for image files.',
    });
  }
  const disk: Disk = { path, sizeBytes: size, sectorSize, kind: 'block-device' };
  const info = (await listDisks(options.signal).catch(() => [])).find((d) => d.path === path);
  if (info?.model) disk.model = info.model;
  if (info?.serial) disk.serial = info.serial;
  if (info?.wwn) disk.wwn = info.wwn;
  if (info) disk.removable = info.removable ?? false;
  return disk;
}
