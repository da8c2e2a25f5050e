import { ImagepeError } from '../core/index.js';
import type { Format, Layout, PartitionTypeName } from './schema.js';

/** What resolving a layout needs to know about a disk; everything else about it is for choosing one. */
export interface Disk {
  /** The block device, or a disk image file that apply attaches through a loop device. */
  path: string;
  sizeBytes: number;
  /** Logical sector size: 512, or 4096 on 4Kn disks. */
  sectorSize: number;
  kind?: 'block-device' | 'image-file';
  model?: string;
  serial?: string;
  wwn?: string;
  removable?: boolean;
}

export interface ResolvedPartition {
  /** The partition number the kernel gives it: 1-4 primary, 4 is the extended one on MBR with logicals, 5+ logical. */
  number: number;
  name: string;
  kind: 'primary' | 'logical';
  /** First sector. */
  start: number;
  /** Length in sectors. */
  size: number;
  sizeBytes: number;
  /** The layout's type, as written there. */
  type: PartitionTypeName | string;
  /** What sfdisk writes and reads back: an upper-case GUID on GPT, a lower-case hex byte without 0x on MBR. */
  typeCode: string;
  format: Format;
  label?: string;
  uuid?: string;
  partuuid?: string;
  mount?: string;
  /** btrfs: the subvolumes made after mkfs, each with where it is mounted. */
  subvolumes?: { name: string; mount?: string | undefined }[];
  defaultSubvolume?: string;
  bootable: boolean;
}

/** A logical volume of a resolved layout, in whole extents of its group. */
export interface ResolvedLogicalVolume {
  /** VG/LV: how the rest of a plan names it (apply entries, target.grow). */
  name: string;
  volumeGroup: string;
  lvName: string;
  extents: number;
  sizeBytes: number;
  format: Exclude<Format, 'lvm' | 'ntfs'>;
  label?: string;
  uuid?: string;
  mount?: string;
  subvolumes?: { name: string; mount?: string | undefined }[];
  defaultSubvolume?: string;
}

/** An LVM volume group of a resolved layout: its physical volumes (partitions, by name) and logical volumes. */
export interface ResolvedVolumeGroup {
  name: string;
  physicalVolumes: string[];
  extentBytes: number;
  /** Extents the group has: each physical volume's size less LVM's 1 MiB of metadata at its start, in whole extents. */
  extents: number;
  logicalVolumes: ResolvedLogicalVolume[];
}

/** A layout resolved against one disk: every partition in exact sectors. */
export interface ResolvedLayout {
  layout: Layout;
  disk: Disk;
  table: 'gpt' | 'mbr';
  sectorSize: number;
  totalSectors: number;
  /** The range partitions may use, inclusive. */
  firstUsableSector: number;
  lastUsableSector: number;
  /** Sectors per alignment step (1 MiB). */
  alignSectors: number;
  diskId?: string;
  wipe: boolean;
  partitions: ResolvedPartition[];
  /** LVM volume groups on partitions of the layout; empty without LVM. */
  volumeGroups: ResolvedVolumeGroup[];
  /** MBR only, when more than four partitions are asked: the container of the logical ones. */
  extended?: { number: number; start: number; size: number };
  /** Things that work but are probably not what was meant. */
  warnings: string[];
}

/** A layout that cannot be resolved against the disk; `problems` lists every reason, one sentence each. */
export class LayoutError extends ImagepeError {
  constructor(
    readonly problems: string[],
    source = 'the layout',
  ) {
    super('LAYOUT_INVALID', `${source} cannot be applied:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: 'Change the layout (see docs/partition.md) or choose another disk.',
    });
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems };
  }
}

export interface AppliedPartition {
  number: number;
  name: string;
  /** The partition's device node; for a disk image file it belonged to a loop device that is released again. */
  node: string;
  start: number;
  size: number;
  typeCode: string;
  partuuid?: string;
  bootable: boolean;
  /** What blkid reads back. */
  fsType?: string;
  label?: string;
  uuid?: string;
  mount?: string;
  subvolumes?: { name: string; mount?: string | undefined }[];
  defaultSubvolume?: string;
  /** An LVM logical volume (then `name` is VG/LV, `number` 0, `start` 0 and `node` /dev/mapper/VG-LV): its volume group. */
  volumeGroup?: string;
}

export interface Result {
  disk: string;
  /** The block device written: the disk itself, or the loop device the image file was attached to. */
  device: string;
  table: 'gpt' | 'mbr';
  diskId: string;
  sectorSize: number;
  /** The table's partitions, then the logical volumes of the layout's volume groups. */
  partitions: AppliedPartition[];
  warnings: string[];
}
