import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Disk } from './events/index.js';

/** What /sys/block/<name> says about one block device. */
export interface SysBlockEntry {
  name: string;
  /** Contents of size: 512-byte sectors, whatever the logical block size. */
  sectors: number;
  removable: boolean;
  readOnly: boolean;
  /** device/model, trimmed; null when the driver has none (virtio). */
  model: string | null;
}

/** Kernel device names that are never deployment targets. */
const NOT_DISKS = /^(loop|ram|zram|fd|nbd|dm-|md)\d*/;

/**
 * The disks the agent may work on, from /sys/block: pseudo devices (loop, ram, zram, fd, nbd,
 * device-mapper), empty drives (size 0) and the boot medium are left out; sorted by name.
 */
export function disksFromSysBlock(entries: readonly SysBlockEntry[], bootMedium: string | null): Disk[] {
  return entries
    .filter((e) => !NOT_DISKS.test(e.name))
    .filter((e) => e.sectors > 0)
    .filter((e) => `/dev/${e.name}` !== bootMedium)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => ({ path: `/dev/${e.name}`, size: e.sectors * 512, model: e.model, removable: e.removable, readOnly: e.readOnly }));
}

/** Parses the raw text of the /sys/block attributes of one device. */
export function parseSysBlockEntry(name: string, attrs: { size?: string; removable?: string; ro?: string; model?: string }): SysBlockEntry {
  const model = attrs.model?.trim();
  return {
    name,
    sectors: Number.parseInt(attrs.size?.trim() ?? '0', 10) || 0,
    removable: attrs.removable?.trim() === '1',
    readOnly: attrs.ro?.trim() === '1',
    model: model ? model : null,
  };
}

/** The ISO 9660 volume id in a primary volume descriptor (sector 16), or undefined. */
export function isoVolumeId(descriptor: Buffer): string | undefined {
  if (descriptor.length < 72 || descriptor[0] !== 1 || descriptor.toString('ascii', 1, 6) !== 'CD001') return undefined;
  return descriptor.toString('ascii', 40, 72).trim();
}

function readAttr(dir: string, name: string): string | undefined {
  try {
    return readFileSync(join(dir, name), 'utf8');
  } catch {
    return undefined;
  }
}

export function readSysBlock(root = '/sys/block'): SysBlockEntry[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names.map((name) => {
    const dir = join(root, name);
    return parseSysBlockEntry(name, {
      size: readAttr(dir, 'size'),
      removable: readAttr(dir, 'removable'),
      ro: readAttr(dir, 'ro'),
      model: readAttr(dir, 'device/model'),
    });
  });
}

/**
 * The device holding the ISO with this volume id: the one whose sector 16 is a primary volume
 * descriptor naming it. The same file booted as CD or written to a USB stick is found either way.
 */
export function findBootMedium(entries: readonly SysBlockEntry[], volumeId: string | null, devDir = '/dev'): string | null {
  if (!volumeId) return null;
  for (const e of entries) {
    if (NOT_DISKS.test(e.name) || e.sectors === 0) continue;
    const path = join(devDir, e.name);
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r');
      const buf = Buffer.alloc(2048);
      readSync(fd, buf, 0, 2048, 16 * 2048);
      if (isoVolumeId(buf) === volumeId) return path;
    } catch {
      // An unreadable device (no medium, I/O error) is simply not the boot medium.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return null;
}
