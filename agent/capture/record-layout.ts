import { z } from 'zod';
import { ImagepeError, MiB } from '../../core/index.js';
import type { VolumeIdentity } from '../system/references.js';
import { FORMATS, GPT_TYPES, LayoutSchema, MBR_TYPES, layoutVolumes, partitionNumber, type Format, type Layout, type LayoutInput, type PartitionTypeName, type SfdiskTable } from '../../partition/index.js';

/** The image property the reference disk's layout is kept in, inside the WIM's XML. */
export const LAYOUT_PROPERTY = 'IMAGEPE/LAYOUT';

/**
 * The reference disk's layout as the capture saw it: a partition/ layout a deploy plan can use
 * as is (`layout: from-image`), and which of its partitions the image came from.
 */
export interface RecordedLayout {
  version: 1;
  layout: LayoutInput;
  imagePartition: string;
  /**
   * Every name each partition of the reference answered to (filesystem UUID and label, PARTUUID,
   * GPT name), by the layout's partition name: what the reference system's files may call them.
   * Kept apart from the layout, which never carries UUIDs: a deploy makes its own, and maps these
   * to them (or, asked to keep them, makes the filesystems with them).
   */
  volumes?: RecordedVolume[];
}

/** One partition (or LVM logical volume) of the reference as its system knew it. */
export interface RecordedVolume {
  /** The layout's partition name, or VG/LV for a logical volume. */
  partition: string;
  /** The partition number; 0 for a logical volume. */
  number: number;
  /** A logical volume: VG/LV, which its system may call /dev/VG/LV or /dev/mapper/VG-LV. */
  lv?: string;
  /** The partition's size on the reference disk. */
  sizeBytes?: number;
  /** Bytes the filesystem had in use when it was captured (statfs: blocks less free blocks); the re-planning of a deploy keeps room for them. */
  usedBytes?: number;
  fsType?: string;
  uuid?: string;
  label?: string;
  partuuid?: string;
  partlabel?: string;
}

export interface RecordInput {
  /** `sfdisk --json` of the reference disk. */
  table: SfdiskTable;
  /** `blkid --probe` of each partition, by partition number. */
  filesystems: ReadonlyMap<number, Record<string, string>>;
  /** The number of the partition the image is captured from. */
  imagePartition: number;
  /** Where the reference system mounts its other filesystems (its fstab, matched to this disk), by partition number; captured into the same image. */
  mounts?: ReadonlyMap<number, string>;
  /** Bytes in use on each captured filesystem, by partition number. */
  usedBytes?: ReadonlyMap<number, number>;
  /** btrfs: the subvolumes the system mounts, with where, by partition number (the root's at /). */
  subvolumes?: ReadonlyMap<number, readonly { name: string; mount: string }[]>;
  /** btrfs: each filesystem's default subvolume, by partition number (none: the top level). */
  defaultSubvolumes?: ReadonlyMap<number, string>;
  /**
   * LVM volume groups on partitions of this disk. Their logical volumes are keyed like partitions
   * in the maps above (filesystems, mounts, usedBytes, imagePartition) by a number of their own
   * above any partition number (LV_KEY_BASE and up).
   */
  volumeGroups?: readonly RecordVolumeGroup[];
}

/** Keys of logical volumes in RecordInput's maps start here: no disk has this many partitions. */
export const LV_KEY_BASE = 100_000;

/** A volume group of the reference as LVM reported it. */
export interface RecordVolumeGroup {
  name: string;
  extentBytes: number;
  /** Its physical volumes, by partition number. */
  physicalVolumes: number[];
  logicalVolumes: { key: number; name: string; sizeBytes: number }[];
}

const EXTENDED_TYPES = [0x05, 0x0f, 0x85];
// Filesystems whose files a Linux tree capture keeps; the layout language makes only ext4 and xfs.
const LINUX_TREE_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'f2fs', 'jfs', 'reiserfs']);

/**
 * Turns what sfdisk and blkid read from the reference disk into a layout. Partitions keep their
 * order on the disk, names (GPT) or p<N>, types (by name when partition/ has one), sizes in MiB,
 * filesystems and labels; never UUIDs, which every deployed machine must make its own. The
 * captured partition gets mount "/" (Linux) and size "rest" wherever it sits (Debian's installer
 * puts swap after it), so a deploy re-plans it for the disk it meets: larger or, when the data
 * fits, smaller. The other filesystems the system mounts get their mount points (`mounts`).
 * `notes` says what could not be kept exactly.
 */
export function recordLayout(input: RecordInput): { recorded: RecordedLayout; notes: string[] } {
  const { table } = input;
  const notes: string[] = [];
  if (table.label !== 'gpt' && table.label !== 'dos') {
    throw new ImagepeError('INVALID_INPUT', `the reference disk has a ${table.label} partition table; only GPT and MBR layouts can be recorded`);
  }
  const gpt = table.label === 'gpt';
  const sectorSize = table.sectorsize ?? 512;
  const parts = (table.partitions ?? [])
    .map((p) => ({ ...p, number: partitionNumber(p.node) }))
    // The planner makes the extended partition itself from the logical ones.
    .filter((p) => gpt || !EXTENDED_TYPES.includes(parseInt(p.type, 16)))
    .sort((a, b) => a.start - b.start);
  const groups = input.volumeGroups ?? [];
  const imageLv = groups.flatMap((g) => g.logicalVolumes.map((lv) => ({ g, lv }))).find((x) => x.lv.key === input.imagePartition);
  const image = parts.find((p) => p.number === input.imagePartition);
  if (!image && !imageLv) throw new ImagepeError('NOT_FOUND', `partition ${input.imagePartition} is not in the reference disk's partition table`);
  const imageFs = input.filesystems.get(input.imagePartition)?.TYPE ?? '';
  const linuxImage = imageFs !== 'ntfs';
  // With the root on a logical volume, the physical volume that holds its group takes the rest of the disk.
  const restPv = imageLv ? imageLv.g.physicalVolumes[imageLv.g.physicalVolumes.length - 1] : undefined;

  const names = new Set<string>();
  const partitions: LayoutInput['partitions'] = [];
  const volumes: RecordedVolume[] = [];
  let imageName = '';
  for (const p of parts) {
    const fs = input.filesystems.get(p.number) ?? {};
    const isImage = p.number === image?.number;
    let name = gpt && p.name?.trim() ? p.name.trim() : `p${p.number}`;
    if (names.has(name)) name = `p${p.number}`;
    names.add(name);
    if (isImage) imageName = name;

    const type = typeName(p.type, gpt);
    const treeMount = linuxImage && !isImage ? input.mounts?.get(p.number) : undefined;
    const format = formatOf(fs.TYPE, isImage || treeMount !== undefined, name, notes);
    const mib = (p.size * sectorSize) / MiB;
    const sizeMiB = Math.max(1, Math.round(mib));
    if (Math.abs(mib - sizeMiB) > 1e-9 && !isImage && p.number !== restPv) notes.push(`${name} is ${mib.toFixed(2)} MiB; recorded as ${sizeMiB} MiB`);

    const entry: LayoutInput['partitions'][number] = { name, size: isImage || p.number === restPv ? 'rest' : `${sizeMiB}MiB`, type, format };
    if (fs.LABEL && format !== 'none') entry.label = fs.LABEL;
    if (isImage && linuxImage) entry.mount = '/';
    else if (treeMount !== undefined && format !== 'none') entry.mount = treeMount;
    else if (linuxImage && type === 'esp' && format === 'vfat') entry.mount = '/boot/efi';
    else if (linuxImage && format === 'swap') entry.mount = 'swap';
    const subvolumes = format === 'btrfs' ? input.subvolumes?.get(p.number) : undefined;
    if (subvolumes?.length) {
      // Parents before what is nested in them, as the layout makes them.
      entry.subvolumes = [...subvolumes].sort((a, b) => a.name.split('/').length - b.name.split('/').length).map((v) => ({ name: v.name, mount: v.mount }));
      if (!entry.mount || !subvolumes.some((v) => v.mount === entry.mount)) entry.mount = entry.subvolumes[0]!.mount!;
      const def = input.defaultSubvolumes?.get(p.number);
      if (def && subvolumes.some((v) => v.name === def)) entry.defaultSubvolume = def;
      else if (def) notes.push(`${name}'s default subvolume ${def} is not one the system mounts; the deployed filesystem keeps the top level as its default`);
    }
    const volume: RecordedVolume = { partition: name, number: p.number, sizeBytes: p.size * sectorSize, ...namesOf(p, fs, table) };
    const used = input.usedBytes?.get(p.number);
    if (used !== undefined) volume.usedBytes = used;
    volumes.push(volume);
    const bootable = gpt ? (p.attrs ?? '').includes('LegacyBIOSBootable') : p.bootable === true;
    if (bootable) entry.flags = ['bootable'];
    partitions.push(entry);
  }
  const partitionName = new Map(parts.map((p, i) => [p.number, partitions[i]!.name]));
  const volumeGroups: NonNullable<LayoutInput['volumeGroups']> = [];
  for (const g of groups) {
    const logicalVolumes: NonNullable<LayoutInput['volumeGroups']>[number]['logicalVolumes'] = [];
    for (const lv of g.logicalVolumes) {
      const fs = input.filesystems.get(lv.key) ?? {};
      const isImage = lv.key === imageLv?.lv.key;
      const qualified = `${g.name}/${lv.name}`;
      if (isImage) imageName = qualified;
      const treeMount = linuxImage && !isImage ? input.mounts?.get(lv.key) : undefined;
      let format = formatOf(fs.TYPE, isImage || treeMount !== undefined, qualified, notes);
      if (format === 'lvm' || format === 'ntfs') {
        notes.push(`${qualified} holds ${format === 'lvm' ? 'an LVM physical volume' : 'ntfs'}, which a logical volume of a layout cannot be made with; recorded unformatted`);
        format = 'none';
      }
      const entry: NonNullable<LayoutInput['volumeGroups']>[number]['logicalVolumes'][number] = { name: lv.name, size: isImage ? 'rest' : `${Math.max(1, Math.round(lv.sizeBytes / MiB))}MiB`, format: format as Exclude<Format, 'lvm' | 'ntfs'> };
      if (fs.LABEL && format !== 'none') entry.label = fs.LABEL;
      if (isImage && linuxImage) entry.mount = '/';
      else if (treeMount !== undefined && format !== 'none') entry.mount = treeMount;
      else if (linuxImage && format === 'swap') entry.mount = 'swap';
      logicalVolumes.push(entry);
      const volume: RecordedVolume = { partition: qualified, number: 0, lv: qualified, sizeBytes: lv.sizeBytes };
      if (fs.TYPE) volume.fsType = fs.TYPE;
      if (fs.UUID) volume.uuid = fs.UUID;
      if (fs.LABEL) volume.label = fs.LABEL;
      const used = input.usedBytes?.get(lv.key);
      if (used !== undefined) volume.usedBytes = used;
      volumes.push(volume);
    }
    const group: NonNullable<LayoutInput['volumeGroups']>[number] = { name: g.name, physicalVolumes: g.physicalVolumes.map((n) => partitionName.get(n)!).filter(Boolean), logicalVolumes };
    if (g.extentBytes !== 4 * MiB) group.extentSize = g.extentBytes >= MiB ? `${g.extentBytes / MiB}MiB` : `${g.extentBytes}`;
    volumeGroups.push(group);
  }
  const layout: LayoutInput = { table: gpt ? 'gpt' : 'mbr', partitions, ...(volumeGroups.length ? { volumeGroups } : {}) };
  return { recorded: { version: 1, layout, imagePartition: imageName, volumes }, notes };
}

/** Every name each partition of the reference answers to, by partition number: what its fstab may call it. */
export function partitionIdentities(table: SfdiskTable, filesystems: ReadonlyMap<number, Record<string, string>>): Map<number, VolumeIdentity> {
  const out = new Map<number, VolumeIdentity>();
  for (const p of table.partitions ?? []) {
    const number = partitionNumber(p.node);
    out.set(number, { partition: `p${number}`, number, ...namesOf({ ...p, number }, filesystems.get(number) ?? {}, table) });
  }
  return out;
}

function namesOf(p: { number: number; uuid?: string | undefined; name?: string | undefined }, fs: Record<string, string>, table: SfdiskTable): Omit<RecordedVolume, 'partition' | 'number'> {
  const gpt = table.label === 'gpt';
  const out: Omit<RecordedVolume, 'partition' | 'number'> = {};
  if (fs.TYPE) out.fsType = fs.TYPE;
  if (fs.UUID) out.uuid = fs.UUID;
  if (fs.LABEL) out.label = fs.LABEL;
  if (gpt && p.uuid) out.partuuid = p.uuid;
  if (gpt && p.name?.trim()) out.partlabel = p.name;
  // An MBR partition's PARTUUID is the disk id and the number: 0x1234abcd-02.
  if (!gpt && table.id) out.partuuid = `${table.id.replace(/^0x/i, '').toLowerCase()}-${String(p.number).padStart(2, '0')}`;
  return out;
}

function typeName(code: string, gpt: boolean): string {
  if (gpt) {
    const upper = code.toUpperCase();
    return (Object.keys(GPT_TYPES) as PartitionTypeName[]).find((k) => GPT_TYPES[k] === upper) ?? upper;
  }
  const byte = parseInt(code, 16);
  return (Object.keys(MBR_TYPES) as PartitionTypeName[]).find((k) => parseInt(MBR_TYPES[k]!, 16) === byte) ?? `0x${byte.toString(16)}`;
}

function formatOf(fsType: string | undefined, captured: boolean, name: string, notes: string[]): Format {
  if (!fsType) return 'none';
  if (fsType === 'LVM2_member') return 'lvm';
  if ((FORMATS as readonly string[]).includes(fsType)) return fsType as Format;
  // The image is a file tree: any Linux filesystem can take it, and ext4 is the one every kernel reads.
  if (captured && LINUX_TREE_FS.has(fsType)) {
    notes.push(`${name} holds ${fsType}, which layouts cannot make; recorded as ext4`);
    return 'ext4';
  }
  notes.push(`${name} holds ${fsType}, which layouts cannot make; recorded unformatted`);
  return 'none';
}

const RecordedVolumeSchema = z
  .object({
    partition: z.string().min(1),
    number: z.number().int().nonnegative(),
    lv: z.string().optional(),
    sizeBytes: z.number().int().nonnegative().optional(),
    usedBytes: z.number().int().nonnegative().optional(),
    fsType: z.string().optional(),
    uuid: z.string().optional(),
    label: z.string().optional(),
    partuuid: z.string().optional(),
    partlabel: z.string().optional(),
  })
  .strict();

export const RecordedLayoutSchema = z
  .object({
    version: z.literal(1),
    layout: LayoutSchema,
    imagePartition: z.string().min(1),
    volumes: z.array(RecordedVolumeSchema).optional(),
  })
  .strict();

/** Reads a recorded layout back (from the image property); `where` names the image for messages. */
export function parseRecordedLayout(text: string, where: string): { layout: Layout; imagePartition: string; volumes: RecordedVolume[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ImagepeError('INVALID_INPUT', `${where} records a layout that is not JSON: ${(e as Error).message}`, { hint: 'Give target.layout in the plan instead of from-image.' });
  }
  const result = RecordedLayoutSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
    throw new ImagepeError('INVALID_INPUT', `${where} records a layout imagepe cannot use:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      hint: 'It may come from a newer imagepe; give target.layout in the plan instead of from-image.',
    });
  }
  const { layout, imagePartition, volumes = [] } = result.data;
  if (!layoutVolumes(layout).some((p) => p.name === imagePartition)) {
    throw new ImagepeError('INVALID_INPUT', `${where} records the image as coming from partition ${imagePartition}, which its layout does not have`, { hint: 'Give target.layout in the plan instead of from-image.' });
  }
  return { layout, imagePartition, volumes: volumes.map((v) => Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)) as unknown as RecordedVolume) };
}
