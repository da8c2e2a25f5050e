import { formatBytes, MiB, parseSize } from '../core/index.js';
import { filesystemMinimums, filesystemProblems, normaliseFsUuid } from './resolve.js';
import type { Format, Layout } from './schema.js';
import type { ResolvedLogicalVolume, ResolvedVolumeGroup } from './types.js';

/**
 * Where pvcreate puts the first extent: LVM2's default data alignment of 1 MiB, with the
 * metadata area (one copy, at 4 KiB) before it. apply reads the group's extent count back and
 * refuses when LVM counted otherwise.
 */
export const PV_DATA_OFFSET_BYTES = MiB;

/** A partition as the volume-group planner needs it: its name, format and resolved size (0 when it could not be resolved). */
export interface PlannedPartition {
  name: string;
  format: Format;
  sizeBytes: number;
}

/**
 * The layout's volume groups in whole extents, or problems naming each field: every partition
 * with format lvm belongs to exactly one group; a group's extents are its physical volumes'
 * sizes less PV_DATA_OFFSET_BYTES, in whole extents; each logical volume takes a size in bytes
 * (rounded up to an extent, as lvcreate -L does), a percentage of the group (rounded down, as
 * lvcreate -l N%VG does) or "rest" (what the group has left; one per group). Pure.
 */
export function resolveVolumeGroups(layout: Layout, partitions: readonly PlannedPartition[], problems: string[]): ResolvedVolumeGroup[] {
  const groups = layout.volumeGroups ?? [];
  const owner = new Map<string, string>();
  const out: ResolvedVolumeGroup[] = [];
  const seenGroups = new Set<string>();
  groups.forEach((g, gi) => {
    const where = `volumeGroups[${gi}] (${g.name})`;
    if (seenGroups.has(g.name)) problems.push(`${where}: two volume groups are named ${g.name}`);
    seenGroups.add(g.name);
    let extentBytes = 0;
    try {
      extentBytes = typeof g.extentSize === 'number' ? g.extentSize : parseSize(g.extentSize);
    } catch (e) {
      problems.push(`${where}.extentSize: ${(e as Error).message}`);
    }
    // vgcreate takes any power of two from 1 KiB; below 1 MiB the extents would break the 1 MiB alignment of what is inside.
    if (extentBytes && (extentBytes < MiB || (extentBytes & (extentBytes - 1)) !== 0)) {
      problems.push(`${where}.extentSize is ${formatBytes(extentBytes)}; expected a power of two of at least 1MiB (4MiB is LVM's default)`);
      extentBytes = 0;
    }
    let extents = 0;
    let sized = extentBytes > 0;
    for (const pvName of g.physicalVolumes) {
      const part = partitions.find((p) => p.name === pvName);
      if (!part) {
        problems.push(`${where}.physicalVolumes names ${pvName}, which is no partition of the layout`);
        sized = false;
        continue;
      }
      if (part.format !== 'lvm') problems.push(`${where} uses partition ${pvName} as a physical volume, but it has format ${part.format}; give it format: lvm (and type: lvm)`);
      const prev = owner.get(pvName);
      if (prev) problems.push(`partition ${pvName} is a physical volume of both ${prev} and ${g.name}`);
      owner.set(pvName, g.name);
      if (part.sizeBytes === 0) sized = false;
      else if (extentBytes) {
        const n = Math.floor((part.sizeBytes - PV_DATA_OFFSET_BYTES) / extentBytes);
        if (n < 1) problems.push(`partition ${pvName} (${formatBytes(part.sizeBytes)}) is too small to hold one ${formatBytes(extentBytes)} extent after LVM's metadata`);
        extents += Math.max(0, n);
      }
    }

    const lvs: ResolvedLogicalVolume[] = [];
    const names = new Set<string>();
    let restIndex: number | undefined;
    let used = 0;
    g.logicalVolumes.forEach((lv, li) => {
      const what = `volumeGroups[${gi}].logicalVolumes[${li}] (${g.name}/${lv.name})`;
      if (names.has(lv.name)) problems.push(`${what}: ${g.name} has two logical volumes named ${lv.name}`);
      names.add(lv.name);
      filesystemProblems(lv, what, problems);
      let n = 0;
      if (lv.size === 'rest') {
        if (restIndex !== undefined) problems.push(`${what} has size "rest", as has ${g.name}/${g.logicalVolumes[restIndex]!.name}; one logical volume per group may take the rest`);
        restIndex = li;
      } else if (typeof lv.size === 'string' && lv.size.endsWith('%')) {
        n = Math.floor((extents * Number(lv.size.slice(0, -1))) / 100);
        if (sized && n < 1) problems.push(`${what} has size ${lv.size}, less than one extent of ${g.name}`);
      } else if (extentBytes) {
        try {
          n = Math.ceil((typeof lv.size === 'number' ? lv.size : parseSize(lv.size)) / extentBytes);
        } catch (e) {
          problems.push(`${what}: ${(e as Error).message}`);
        }
      }
      used += n;
      const r: ResolvedLogicalVolume = { name: `${g.name}/${lv.name}`, volumeGroup: g.name, lvName: lv.name, extents: n, sizeBytes: n * extentBytes, format: lv.format };
      if (lv.label !== undefined) r.label = lv.label;
      if (lv.uuid !== undefined) r.uuid = normaliseFsUuid(lv.uuid, lv.format);
      if (lv.mount !== undefined) r.mount = lv.mount;
      if (lv.subvolumes !== undefined) r.subvolumes = lv.subvolumes.map((v) => ({ ...v }));
      if (lv.defaultSubvolume !== undefined) r.defaultSubvolume = lv.defaultSubvolume;
      lvs.push(r);
    });
    if (sized) {
      if (used > extents) {
        problems.push(`${where} does not fit: its logical volumes need ${formatBytes(used * extentBytes)} (${used} extents) but its physical volumes give ${formatBytes(extents * extentBytes)} (${extents} extents)`);
      } else if (restIndex !== undefined) {
        const left = extents - used;
        if (left < 1) problems.push(`${g.name}/${g.logicalVolumes[restIndex]!.name} has size "rest" but ${g.name} has no extent left for it`);
        lvs[restIndex]!.extents = left;
        lvs[restIndex]!.sizeBytes = left * extentBytes;
      }
      lvs.forEach((lv, li) => filesystemMinimums(lv.format, lv.sizeBytes, `volumeGroups[${gi}].logicalVolumes[${li}] (${lv.name})`, problems));
    }
    out.push({ name: g.name, physicalVolumes: [...g.physicalVolumes], extentBytes, extents, logicalVolumes: lvs });
  });
  partitions.forEach((p) => {
    if (p.format === 'lvm' && !owner.has(p.name)) problems.push(`partition ${p.name} has format lvm but no volume group lists it in physicalVolumes`);
  });
  return out;
}

/** Every logical volume of a resolved layout, groups in order. */
export function logicalVolumesOf(layout: { volumeGroups?: readonly ResolvedVolumeGroup[] | undefined }): ResolvedLogicalVolume[] {
  return (layout.volumeGroups ?? []).flatMap((g) => g.logicalVolumes);
}

/** A filesystem-bearing volume of a layout as written: a partition, or a logical volume named VG/LV. */
export interface LayoutVolume {
  name: string;
  format: Format;
  mount?: string | undefined;
  subvolumes?: readonly { name: string; mount?: string | undefined }[] | undefined;
  /** The partition type; undefined for a logical volume. */
  type?: string | undefined;
}

/** The partitions of a layout, then its logical volumes (VG/LV): everything a plan may apply to or mount. */
export function layoutVolumes(layout: Pick<Layout, 'partitions' | 'volumeGroups'>): LayoutVolume[] {
  return [...layout.partitions, ...(layout.volumeGroups ?? []).flatMap((g) => g.logicalVolumes.map((lv) => ({ ...lv, name: `${g.name}/${lv.name}`, type: undefined })))];
}
