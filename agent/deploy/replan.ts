import { formatBytes, MiB } from '../../core/index.js';
import * as partition from '../../partition/index.js';
import type { RecordedVolume } from '../capture/index.js';

/**
 * Room a filesystem gets beyond the bytes the reference had in use on it: a tenth more, for
 * allocation that differs on a new filesystem (block rounding, directories, inode tables, which
 * statfs does not count as used), plus 64 MiB for its journal (mke2fs gives a 1-64 GiB
 * filesystem up to 64 MiB) and the first boot's logs.
 */
export const MARGIN_FRACTION = 0.1;
export const MARGIN_BYTES = 64 * MiB;

/**
 * What the deploy's initramfs rebuild writes (bootloader.initramfs: rebuild), on the filesystems
 * that hold these directories: Debian's mkinitramfs stages the whole uncompressed initramfs and
 * its archive under /var/tmp (about 160 MiB with MODULES=most), and the new initramfs is written
 * beside the old one in /boot before it replaces it (30-70 MiB). Measured: a root with 128 MiB
 * beyond its data ran out of space in mkinitramfs.
 */
export const REBUILD_WORKSPACE: readonly { path: string; bytes: number }[] = [
  { path: '/var/tmp', bytes: 256 * MiB },
  { path: '/boot', bytes: 64 * MiB },
];

/**
 * Bytes a filesystem needs to take what one reference filesystem held: used bytes plus the
 * margin, but never more than the reference partition itself (a partition as large as the one
 * the files came from always takes them). Undefined when the capture measured nothing.
 */
export function bytesNeeded(v: RecordedVolume): number | undefined {
  if (v.usedBytes === undefined) return undefined;
  const need = Math.ceil(v.usedBytes * (1 + MARGIN_FRACTION)) + MARGIN_BYTES;
  return v.sizeBytes !== undefined ? Math.min(need, v.sizeBytes) : need;
}

/** What one partition of a layout must hold: the reference's filesystems whose files land on it, and the deploy's own work there. */
export interface PartitionNeed {
  partition: string;
  mount: string;
  bytes: number;
  used: number;
  /** The reference's mount points whose files it takes. */
  from: string[];
  /** Bytes of REBUILD_WORKSPACE counted on it, and for which directories. */
  workspace: number;
  workspaceFor: string[];
}

/**
 * Which partition of `layout` takes each measured reference filesystem: the one with the longest
 * mount point (its own, or a btrfs subvolume's) above where the reference mounted it, so a
 * reference's /home lands on the new root when the layout has no /home. `recordedMounts` gives
 * the reference's mount points by recorded partition name. With `rebuild`, the partitions that
 * will hold /var/tmp and /boot also need REBUILD_WORKSPACE.
 */
export function partitionNeeds(layout: partition.Layout, volumes: readonly RecordedVolume[], recordedMounts: ReadonlyMap<string, string>, o: { rebuild: boolean }): Map<string, PartitionNeed> {
  const tree = partition
    .layoutVolumes(layout)
    .filter((p) => p.format !== 'vfat' && p.format !== 'none' && p.format !== 'ntfs' && p.format !== 'swap' && p.format !== 'lvm')
    .flatMap((p) => partition.mountPointsOf(p).filter((m) => m.startsWith('/')).map((m) => ({ p, m })));
  const holder = (path: string) => tree.filter((t) => inside(path, t.m)).sort((a, b) => b.m.length - a.m.length)[0];
  const needs = new Map<string, PartitionNeed>();
  const entry = (t: { p: partition.LayoutVolume; m: string }) => {
    const n = needs.get(t.p.name) ?? { partition: t.p.name, mount: t.p.mount ?? t.m, bytes: 0, used: 0, from: [], workspace: 0, workspaceFor: [] };
    needs.set(t.p.name, n);
    return n;
  };
  for (const v of volumes) {
    const mount = recordedMounts.get(v.partition);
    const bytes = bytesNeeded(v);
    if (!mount?.startsWith('/') || bytes === undefined) continue;
    const to = holder(mount);
    if (!to) continue;
    const n = entry(to);
    n.bytes += bytes;
    n.used += v.usedBytes!;
    n.from.push(mount);
  }
  // Only where the data is known: a layout for an image that records nothing is not judged.
  if (o.rebuild && needs.size > 0) {
    for (const w of REBUILD_WORKSPACE) {
      const to = holder(w.path);
      if (!to) continue;
      const n = entry(to);
      n.bytes += w.bytes;
      n.workspace += w.bytes;
      n.workspaceFor.push(w.path);
    }
  }
  return needs;
}

/**
 * Partitions of a resolved layout too small for the reference's files, one sentence each,
 * naming the partition, what it needs and what it has.
 */
export function capacityProblems(resolved: partition.ResolvedLayout, needs: ReadonlyMap<string, PartitionNeed>): string[] {
  const out: string[] = [];
  for (const p of [...resolved.partitions, ...partition.logicalVolumesOf(resolved)]) {
    const n = needs.get(p.name);
    if (!n || n.bytes <= p.sizeBytes) continue;
    const why = [
      n.from.length ? `the reference had ${formatBytes(n.used)} in use on ${n.from.join(', ')}, which a new filesystem takes with room to spare (${MARGIN_FRACTION * 100}% and ${formatBytes(MARGIN_BYTES)})` : '',
      n.workspace ? `the initramfs rebuild needs ${formatBytes(n.workspace)} in ${n.workspaceFor.join(' and ')}` : '',
    ].filter(Boolean);
    out.push(`${'volumeGroup' in p ? 'logical volume' : 'partition'} ${p.name} (${n.mount}) needs ${formatBytes(n.bytes)}, has ${formatBytes(p.sizeBytes)}: ${why.join('; ')}`);
  }
  return out;
}

export interface ReplanOptions {
  /** The partition that takes what the disk has left: the plan's target.grow, else the one the image came from. */
  grow: string;
  volumes: readonly RecordedVolume[];
  recordedMounts: ReadonlyMap<string, string>;
  /** Swap may shrink down to this many bytes when the data would not fit otherwise (target.minSwap); without it swap keeps its size. */
  minSwapBytes?: number | undefined;
  /** The deploy rebuilds the initramfs (bootloader.initramfs: rebuild), which needs REBUILD_WORKSPACE. */
  rebuild: boolean;
}

/**
 * A recorded layout planned for the disk it is deployed to (Clonezilla's and FOG's most asked-for
 * restore: onto a smaller disk). The `grow` partition takes what is left, wherever it sits in the
 * table; every other partition keeps its recorded size (ESP, bios-boot, /boot), except that swap
 * may shrink to `minSwapBytes` when the grow partition would otherwise be too small for its data.
 * Pure. Returns the layout and, in words, what differs from the reference. Whether the result
 * fits is for resolveLayout and capacityProblems to say.
 */
export function replanLayout(layout: partition.Layout, disk: partition.Disk, o: ReplanOptions): { layout: partition.Layout; notes: string[] } {
  const notes: string[] = [];
  const bySize = (name: string) => o.volumes.find((v) => v.partition === name)?.sizeBytes;
  // A recorded layout has one "rest" in the table and one in each volume group (the image's
  // volume, or the physical volume holding it); what no longer grows gets back its size on the reference.
  const sizeOnReference = <T extends { size: string | number }>(v: T, name: string): T => {
    const was = bySize(name);
    return v.size === 'rest' && was !== undefined ? { ...v, size: `${Math.max(1, Math.round(was / MiB))}MiB` } : v;
  };
  // A logical volume grows inside its group, and the group's (last) physical volume grows in the table.
  const growGroup = layout.volumeGroups?.find((g) => g.logicalVolumes.some((lv) => `${g.name}/${lv.name}` === o.grow));
  const growPartition = growGroup ? growGroup.physicalVolumes[growGroup.physicalVolumes.length - 1]! : o.grow;
  let partitions = layout.partitions.map((p) => (p.name === growPartition ? { ...p, size: 'rest' } : sizeOnReference(p, p.name)));
  const volumeGroups = layout.volumeGroups?.map((g) => ({
    ...g,
    logicalVolumes: g.logicalVolumes.map((lv) => {
      const name = `${g.name}/${lv.name}`;
      if (name === o.grow) return { ...lv, size: 'rest' };
      return g === growGroup ? sizeOnReference(lv, name) : lv;
    }),
  }));
  const withGroups = volumeGroups ? { volumeGroups } : {};
  const resolve = (parts: typeof partitions) => {
    try {
      return partition.resolveLayout({ ...layout, partitions: parts, ...withGroups }, disk);
    } catch {
      return undefined;
    }
  };
  const need = partitionNeeds({ ...layout, partitions, ...withGroups }, o.volumes, o.recordedMounts, { rebuild: o.rebuild }).get(o.grow)?.bytes;
  let resolved = resolve(partitions);
  const growSize = (r: partition.ResolvedLayout | undefined) => (r ? [...r.partitions, ...partition.logicalVolumesOf(r)].find((p) => p.name === o.grow)?.sizeBytes : undefined);
  if (o.minSwapBytes !== undefined && need !== undefined && (growSize(resolved) ?? 0) < need) {
    // Take what is missing from swap, never below the floor; whole MiB so what follows stays aligned.
    let missing = need - (growSize(resolved) ?? 0);
    if (!resolved) missing += fixedOverrun(layout, partitions, disk);
    partitions = partitions.map((p) => {
      if (p.format !== 'swap' || missing <= 0 || typeof p.size !== 'string' || !/MiB$/.test(p.size)) return p;
      const size = Number(p.size.slice(0, -3)) * MiB;
      const floor = Math.ceil(o.minSwapBytes! / MiB) * MiB;
      const cut = Math.min(Math.ceil(missing / MiB) * MiB, Math.max(0, size - floor));
      if (cut <= 0) return p;
      missing -= cut;
      notes.push(`swap partition ${p.name} shrunk from ${formatBytes(size)} to ${formatBytes(size - cut)} (target.minSwap is ${formatBytes(floor)}) to make room for the data`);
      return { ...p, size: `${(size - cut) / MiB}MiB` };
    });
    resolved = resolve(partitions);
  }
  const was = bySize(o.grow);
  const now = growSize(resolved);
  if (now !== undefined && was !== undefined && Math.abs(now - was) >= MiB) {
    notes.unshift(`${o.grow} ${now > was ? 'grown' : 'shrunk'} from ${formatBytes(was)} on the reference to ${formatBytes(now)}, what this ${formatBytes(disk.sizeBytes)} disk leaves it${need !== undefined ? ` (its data needs ${formatBytes(need)})` : ''}`);
  }
  return { layout: partition.parseLayout({ ...layout, partitions, ...withGroups }, 'the re-planned layout'), notes };
}

/** How far the fixed partitions alone run past the end of the disk (0 when they fit), so swap can give that back too. */
function fixedOverrun(layout: partition.Layout, partitions: partition.Layout['partitions'], disk: partition.Disk): number {
  const fixed = partitions.reduce((sum, p) => sum + (p.size === 'rest' ? MiB : typeof p.size === 'string' && /MiB$/.test(p.size) ? Number(p.size.slice(0, -3)) * MiB : 0), 0);
  // The table's own sectors and the 1 MiB alignment before the first partition.
  const overhead = (layout.table === 'gpt' ? 2 : 1) * MiB;
  return Math.max(0, fixed + overhead - disk.sizeBytes);
}

function inside(path: string, mount: string): boolean {
  return mount === '/' || path === mount || path.startsWith(`${mount}/`);
}
