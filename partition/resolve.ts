import { ImagepeError, formatBytes, parseSize, MiB } from '../core/index.js';
import { resolveVolumeGroups } from './lvm-plan.js';
import { GUID_PATTERN, MBR_TYPE_PATTERN, type Format, type Layout, type PartitionSpec, type PartitionTypeName } from './schema.js';
import { LayoutError, type Disk, type ResolvedLayout, type ResolvedPartition } from './types.js';
import { gptName } from './verify.js';

export const GPT_TYPES: Record<PartitionTypeName, string> = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  'bios-boot': '21686148-6449-6E6F-744E-656564454649',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  'linux-swap': '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  'linux-home': '933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
  msr: 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
  'windows-basic': 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  'windows-recovery': 'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
};

/** MBR has no type for a BIOS boot area or the MSR: both exist only because of GPT. */
export const MBR_TYPES: Partial<Record<PartitionTypeName, string>> = {
  esp: 'ef',
  linux: '83',
  'linux-swap': '82',
  'linux-home': '83',
  'windows-basic': '7',
  'windows-recovery': '27',
  lvm: '8e',
};

/** 128 entries of 128 bytes: the GPT partition array every tool writes. */
const GPT_ENTRIES_BYTES = 128 * 128;
/** MBR stores 32-bit sector numbers. */
const MBR_MAX_SECTORS = 2 ** 32;
const MBR_EXTENDED_TYPE = '5';

/** Smallest FAT32 volume: 65525 clusters of one sector, 32 reserved sectors and two FATs. */
export function fat32MinimumBytes(sectorSize: number): number {
  const clusters = 65_525;
  const fatSectors = Math.ceil(((clusters + 2) * 4) / sectorSize);
  return (clusters + 32 + 2 * fatSectors) * sectorSize;
}

/** xfsprogs 5.19 and later refuse filesystems smaller than this. */
export const XFS_MINIMUM_BYTES = 300 * MiB;

/** mkfs.btrfs (btrfs-progs 6.2) refuses a device smaller than this: "minimum size for each btrfs device is 114294784". */
export const BTRFS_MINIMUM_BYTES = 109 * MiB;

const LABEL_LIMITS: Record<string, number> = { vfat: 11, ext4: 16, xfs: 12, btrfs: 255, swap: 16, ntfs: 128 };

const GUID_FORMATS = new Set(['ext4', 'xfs', 'btrfs', 'swap']);

/**
 * Turns a layout into exact sectors for one disk, or explains every reason it cannot.
 * Pure: the disk is described, not opened.
 */
export function resolveLayout(layout: Layout, disk: Disk): ResolvedLayout {
  const problems: string[] = [];
  const warnings: string[] = [];
  const ss = disk.sectorSize;
  if (ss !== 512 && ss !== 4096) {
    throw new ImagepeError('INVALID_INPUT', `${disk.path} has ${ss}-byte sectors; only 512 and 4096 are supported`);
  }
  if (!Number.isSafeInteger(disk.sizeBytes) || disk.sizeBytes <= 0) {
    throw new ImagepeError('INVALID_INPUT', `${disk.path} has no usable size (${disk.sizeBytes} bytes)`);
  }
  const totalSectors = Math.floor(disk.sizeBytes / ss);
  const align = MiB / ss;
  const gpt = layout.table === 'gpt';
  const entrySectors = GPT_ENTRIES_BYTES / ss;

  let firstUsable: number;
  let lastUsable: number;
  if (gpt) {
    firstUsable = 2 + entrySectors;
    // The backup header sits in the last sector with its partition array just before it.
    lastUsable = totalSectors - 2 - entrySectors;
  } else {
    firstUsable = 1;
    lastUsable = Math.min(totalSectors, MBR_MAX_SECTORS) - 1;
    if (totalSectors > MBR_MAX_SECTORS) {
      problems.push(
        `an MBR partition table addresses only the first ${formatBytes(MBR_MAX_SECTORS * ss)} of this ${formatBytes(disk.sizeBytes)} disk; use table: gpt`,
      );
    }
  }

  // Types, sizes and per-partition rules.
  const resolved = layout.partitions.map((p, i) => resolvePartition(p, i, layout, disk, problems));
  const restIndexes = resolved.flatMap((r, i) => (r.rest ? [i] : []));
  if (restIndexes.length > 1) {
    problems.push(
      `only one partition may have size "rest", but ${restIndexes.map((i) => describe(layout.partitions[i]!, i)).join(' and ')} both do`,
    );
  }
  checkLayoutRules(layout, problems, warnings);
  checkDiskId(layout, problems);

  const limit = lastUsable + 1;
  const sizes = resolved.map((r) => r.sectors ?? 0);
  let placed = place(layout, sizes, align);
  if (placed.end > limit) {
    const over = (placed.end - limit) * ss;
    problems.push(
      `the layout does not fit: it needs ${formatBytes(placed.end * ss)} (through the last partition) but the disk has ${formatBytes(limit * ss)} usable; it is ${formatBytes(over)} (${over} bytes) too large`,
    );
  } else if (restIndexes.length === 1) {
    const restIndex = restIndexes[0]!;
    const rest = Math.floor((limit - placed.end) / align) * align;
    if (rest < align) {
      problems.push(
        `${describe(layout.partitions[restIndex]!, restIndex)} has size "rest" but less than 1 MiB is left for it (${formatBytes((limit - placed.end) * ss)})`,
      );
    } else {
      sizes[restIndex] = rest;
      placed = place(layout, sizes, align);
      checkMinimums(layout.partitions[restIndex]!, restIndex, rest * ss, disk, problems);
    }
  }

  const volumeGroups = resolveVolumeGroups(
    layout,
    layout.partitions.map((p, i) => ({ name: p.name, format: p.format, sizeBytes: sizes[i]! * ss })),
    problems,
  );

  if (problems.length > 0) throw new LayoutError(problems, `the layout on ${disk.path} (${formatBytes(disk.sizeBytes)}, ${ss}-byte sectors)`);

  const partitions: ResolvedPartition[] = layout.partitions.map((p, i) => {
    const r = resolved[i]!;
    const slot = placed.slots[i]!;
    const part: ResolvedPartition = {
      number: slot.number,
      name: p.name,
      kind: slot.kind,
      start: slot.start,
      size: sizes[i]!,
      sizeBytes: sizes[i]! * ss,
      type: p.type,
      typeCode: r.typeCode,
      format: p.format,
      bootable: p.flags.includes('bootable'),
    };
    if (p.label !== undefined) part.label = p.label;
    if (p.uuid !== undefined) part.uuid = normaliseFsUuid(p.uuid, p.format);
    if (p.partuuid !== undefined) part.partuuid = p.partuuid.toUpperCase();
    if (p.mount !== undefined) part.mount = p.mount;
    if (p.subvolumes !== undefined) part.subvolumes = p.subvolumes.map((v) => ({ ...v }));
    if (p.defaultSubvolume !== undefined) part.defaultSubvolume = p.defaultSubvolume;
    return part;
  });

  const result: ResolvedLayout = {
    layout,
    disk,
    table: layout.table,
    sectorSize: ss,
    totalSectors,
    firstUsableSector: firstUsable,
    lastUsableSector: lastUsable,
    alignSectors: align,
    wipe: layout.wipe,
    partitions,
    volumeGroups,
    warnings,
  };
  if (layout.id !== undefined) result.diskId = gpt ? layout.id.toUpperCase() : layout.id.toLowerCase();
  if (placed.extended) result.extended = placed.extended;
  return result;
}

interface Resolved {
  typeCode: string;
  sectors: number | undefined;
  rest: boolean;
}

function resolvePartition(p: PartitionSpec, i: number, layout: Layout, disk: Disk, problems: string[]): Resolved {
  const what = describe(p, i);
  const ss = disk.sectorSize;
  const gpt = layout.table === 'gpt';

  let typeCode = '';
  const named = Object.hasOwn(GPT_TYPES, p.type) ? (p.type as PartitionTypeName) : undefined;
  if (named) {
    const code = gpt ? GPT_TYPES[named] : MBR_TYPES[named];
    if (code === undefined) problems.push(`${what} has type ${named}, which exists only on GPT disks`);
    else typeCode = code;
  } else if (GUID_PATTERN.test(p.type)) {
    if (gpt) typeCode = p.type.toUpperCase();
    else problems.push(`${what} has a GPT type GUID (${p.type}) but the table is mbr; give an MBR type byte such as 0x83`);
  } else if (MBR_TYPE_PATTERN.test(p.type)) {
    const byte = parseInt(p.type.replace(/^0x/i, ''), 16);
    if (!gpt && byte === 0) problems.push(`${what} has MBR type 0x00, which marks an unused slot`);
    else if (!gpt && [0x05, 0x0f, 0x85].includes(byte)) problems.push(`${what} has an extended-partition type; imagepe adds the extended partition itself`);
    else if (gpt) problems.push(`${what} has an MBR type byte (${p.type}) but the table is gpt; give a type name or a GPT type GUID`);
    else typeCode = byte.toString(16);
  }

  let sectors: number | undefined;
  let rest = false;
  if (p.size === 'rest') {
    rest = true;
  } else if (typeof p.size === 'string' && p.size.endsWith('%')) {
    const percent = Number(p.size.slice(0, -1));
    if (!(percent > 0 && percent <= 100)) {
      problems.push(`${what} has size ${p.size}; a percentage must be above 0% and at most 100%`);
    } else {
      // Whole MiB, so the partitions after it stay aligned.
      const bytes = Math.floor((disk.sizeBytes * percent) / 100 / MiB) * MiB;
      if (bytes === 0) problems.push(`${what} has size ${p.size}, which is less than 1 MiB of this disk`);
      else sectors = bytes / ss;
    }
  } else {
    try {
      const bytes = parseSize(p.size);
      if (bytes === 0) problems.push(`${what} has size 0`);
      else sectors = Math.ceil(bytes / ss);
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  }
  if (sectors !== undefined) checkMinimums(p, i, sectors * ss, disk, problems);

  if (p.type === 'esp' && p.format !== 'vfat' && p.format !== 'none') {
    problems.push(`${what} is an ESP formatted as ${p.format}; firmware reads only FAT, use format: vfat`);
  }
  if ((p.type === 'bios-boot' || p.type === 'msr') && p.format !== 'none') {
    problems.push(`${what} is a ${p.type} partition, which holds no filesystem; use format: none`);
  }
  filesystemProblems(p, what, problems);
  if (p.partuuid !== undefined && !gpt) {
    problems.push(`${what} has a partuuid, which only GPT stores; on MBR the PARTUUID is the disk id and the partition number`);
  }
  return { typeCode, sectors, rest };
}

/** What a filesystem's settings (label, UUID, mount, subvolumes) say wrong for its format: of a partition or a logical volume. */
export function filesystemProblems(p: FilesystemSpec, what: string, problems: string[]): void {
  if (p.format === 'none' || p.format === 'lvm') {
    const none = p.format === 'none' ? 'no format' : 'format lvm (a physical volume holds no filesystem)';
    if (p.label !== undefined) problems.push(`${what} has a label but ${none}; a label belongs to a filesystem`);
    if (p.uuid !== undefined) problems.push(`${what} has a uuid but ${none}; a UUID belongs to a filesystem${p.format === 'none' ? ' (use partuuid for the partition)' : ''}`);
    if (p.format === 'lvm' && p.mount !== undefined) problems.push(`${what} has format lvm and a mount; mount its logical volumes instead`);
  } else {
    const limit = LABEL_LIMITS[p.format]!;
    if (p.label !== undefined && Buffer.byteLength(p.label) > limit) {
      problems.push(`${what} has label "${p.label}", longer than the ${limit} bytes ${p.format} allows`);
    }
    if (p.uuid !== undefined && !fsUuidValid(p.uuid, p.format)) {
      problems.push(`${what} has uuid "${p.uuid}"; ${p.format} expects ${fsUuidForm(p.format)}`);
    }
  }
  if (p.mount !== undefined && p.format !== 'lvm') {
    if (p.format === 'swap' ? p.mount !== 'swap' : !p.mount.startsWith('/')) {
      problems.push(`${what} has mount "${p.mount}"; expected ${p.format === 'swap' ? '"swap"' : 'an absolute path such as /boot/efi'}`);
    }
  }
  subvolumeProblems(p, what, problems);
}

/** The settings of a filesystem, on a partition or a logical volume. */
export interface FilesystemSpec {
  format: Format;
  label?: string | undefined;
  uuid?: string | undefined;
  mount?: string | undefined;
  subvolumes?: readonly { name: string; mount?: string | undefined }[] | undefined;
  defaultSubvolume?: string | undefined;
}

function subvolumeProblems(p: FilesystemSpec, what: string, problems: string[]): void {
  if (p.subvolumes === undefined && p.defaultSubvolume === undefined) return;
  if (p.format !== 'btrfs') {
    problems.push(`${what} has ${p.subvolumes !== undefined ? 'subvolumes' : 'a defaultSubvolume'} but is formatted ${p.format}; subvolumes belong to btrfs`);
    return;
  }
  const subs = p.subvolumes ?? [];
  const names = new Set<string>();
  for (const v of subs) {
    if (names.has(v.name)) problems.push(`${what} lists subvolume ${v.name} twice`);
    names.add(v.name);
    if (v.mount !== undefined && !v.mount.startsWith('/')) problems.push(`${what} mounts subvolume ${v.name} at "${v.mount}"; expected an absolute path such as /home`);
    const parent = v.name.split('/').slice(0, -1).join('/');
    // A nested subvolume is made inside its parent, which must be made first.
    if (parent && subs.findIndex((x) => x.name === parent) > subs.indexOf(v)) problems.push(`${what} lists subvolume ${v.name} before its parent ${parent}`);
  }
  if (p.defaultSubvolume !== undefined && !names.has(p.defaultSubvolume)) problems.push(`${what} has defaultSubvolume ${p.defaultSubvolume}, which is not one of its subvolumes (${[...names].join(', ') || 'none'})`);
  if (p.mount !== undefined && subs.length > 0 && !subs.some((v) => v.mount === p.mount)) {
    problems.push(`${what} has mount "${p.mount}" and subvolumes; expected mount to be where one of the subvolumes is mounted (${subs.flatMap((v) => v.mount ?? []).join(', ') || 'none is'})`);
  }
}

/** Every place the layout mounts a partition's filesystem: its subvolumes' mount points when it has subvolumes, else its own. */
export function mountPointsOf(p: { mount?: string | undefined; subvolumes?: readonly { mount?: string | undefined }[] | undefined }): string[] {
  if (p.subvolumes?.length) return p.subvolumes.flatMap((v) => (v.mount ? [v.mount] : []));
  return p.mount ? [p.mount] : [];
}

function checkMinimums(p: PartitionSpec, i: number, bytes: number, disk: Disk, problems: string[]): void {
  const what = describe(p, i);
  filesystemMinimums(p.format, bytes, what, problems);
  if (p.type === 'esp') {
    const min = fat32MinimumBytes(disk.sectorSize);
    if (bytes < min) {
      problems.push(
        `${what} is an ESP of ${formatBytes(bytes)}, smaller than the FAT32 minimum of ${formatBytes(min)} on ${disk.sectorSize}-byte sectors`,
      );
    }
  }
}

/** The smallest volume mkfs accepts for `format`, as problems naming `what`. */
export function filesystemMinimums(format: Format, bytes: number, what: string, problems: string[]): void {
  if (format === 'xfs' && bytes < XFS_MINIMUM_BYTES) {
    problems.push(`${what} is ${formatBytes(bytes)}, smaller than the ${formatBytes(XFS_MINIMUM_BYTES)} xfs needs`);
  }
  if (format === 'btrfs' && bytes < BTRFS_MINIMUM_BYTES) {
    problems.push(`${what} is ${formatBytes(bytes)}, smaller than the ${formatBytes(BTRFS_MINIMUM_BYTES)} btrfs needs`);
  }
}

function checkLayoutRules(layout: Layout, problems: string[], warnings: string[]): void {
  const gpt = layout.table === 'gpt';
  const has = (type: string) => layout.partitions.some((p) => p.type === type);
  if (gpt && layout.firmware !== 'uefi' && !has('bios-boot')) {
    problems.push(
      `the disk is GPT and boots by BIOS (firmware: ${layout.firmware}) but has no bios-boot partition; add one of 1MiB with type: bios-boot for GRUB`,
    );
  }
  if (layout.firmware !== 'bios' && !has('esp') && !(layout.table === 'mbr' && layout.partitions.some((p) => p.type.replace(/^0x/i, '').toLowerCase() === 'ef'))) {
    warnings.push(`firmware is ${layout.firmware} but the layout has no ESP; UEFI firmware will not boot from this disk`);
  }
  if (!gpt && layout.partitions.filter((p) => p.flags.includes('bootable')).length > 1) {
    problems.push('more than one partition is flagged bootable; MBR marks only one active partition');
  }
  if (!gpt && layout.firmware !== 'uefi' && !layout.partitions.some((p) => p.flags.includes('bootable'))) {
    warnings.push('no partition is flagged bootable; some BIOSes will not boot an MBR disk without an active partition');
  }
  const seen = new Map<string, number>();
  layout.partitions.forEach((p, i) => {
    const prev = seen.get(p.name);
    if (prev !== undefined) problems.push(`partitions[${prev}] and partitions[${i}] are both named "${p.name}"; names must be unique`);
    else seen.set(p.name, i);
  });
  const mounts = new Map<string, string>();
  const volumes = [
    ...layout.partitions.map((p, i) => ({ p, what: `partitions[${i}] (${p.name})` })),
    ...(layout.volumeGroups ?? []).flatMap((g, gi) => g.logicalVolumes.map((p, li) => ({ p, what: `volumeGroups[${gi}].logicalVolumes[${li}] (${g.name}/${p.name})` }))),
  ];
  for (const { p, what } of volumes) {
    for (const m of mountPointsOf(p)) {
      if (m === 'swap') continue;
      const prev = mounts.get(m);
      if (prev === what) problems.push(`${what} mounts two subvolumes at ${m}`);
      else if (prev !== undefined) problems.push(`${prev} and ${what} are both mounted at ${m}`);
      else mounts.set(m, what);
    }
  }
}

function checkDiskId(layout: Layout, problems: string[]): void {
  if (layout.id === undefined) return;
  if (layout.table === 'gpt' ? !GUID_PATTERN.test(layout.id) : !/^0x[0-9a-fA-F]{8}$/.test(layout.id)) {
    problems.push(`id "${layout.id}" is not a disk identifier; ${layout.table === 'gpt' ? 'GPT expects a GUID' : 'MBR expects 0x and 8 hex digits'}`);
  }
}

interface Slot {
  number: number;
  kind: 'primary' | 'logical';
  start: number;
}

/**
 * Lays partitions out in order, each starting on the next 1 MiB boundary. On MBR with more than
 * four partitions the fourth slot becomes an extended partition, and each logical partition
 * starts 1 MiB after its own boundary because the sector before it holds its EBR.
 */
function place(layout: Layout, sizes: number[], align: number): { slots: Slot[]; end: number; extended?: { number: number; start: number; size: number } } {
  const useExtended = layout.table === 'mbr' && sizes.length > 4;
  const slots: Slot[] = [];
  let cursor = align;
  let extendedStart: number | undefined;
  let logical = 5;
  sizes.forEach((size, i) => {
    if (useExtended && i >= 3) {
      cursor = alignUp(cursor, align);
      if (extendedStart === undefined) extendedStart = cursor;
      const start = cursor + align;
      slots.push({ number: logical++, kind: 'logical', start });
      cursor = start + size;
    } else {
      const start = alignUp(cursor, align);
      slots.push({ number: i + 1, kind: 'primary', start });
      cursor = start + size;
    }
  });
  if (extendedStart !== undefined) {
    return { slots, end: cursor, extended: { number: 4, start: extendedStart, size: cursor - extendedStart } };
  }
  return { slots, end: cursor };
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

export function describe(p: { name: string }, i: number): string {
  return `partitions[${i}] (${p.name})`;
}

function fsUuidForm(format: string): string {
  if (format === 'vfat') return 'a volume id written XXXX-XXXX (8 hex digits)';
  if (format === 'ntfs') return 'a serial number of 16 hex digits';
  return 'a GUID such as 0fc63daf-8483-4772-8e79-3d69d8477de4';
}

function fsUuidValid(uuid: string, format: string): boolean {
  if (format === 'vfat') return /^[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}$/.test(uuid);
  if (format === 'ntfs') return /^[0-9a-fA-F]{16}$/.test(uuid);
  return GUID_FORMATS.has(format) && GUID_PATTERN.test(uuid);
}

/** The UUID as blkid prints it, so a resolved layout compares equal to what is read back. */
export function normaliseFsUuid(uuid: string, format: string): string {
  if (format === 'vfat') {
    const hex = uuid.replace('-', '').toUpperCase();
    return `${hex.slice(0, 4)}-${hex.slice(4)}`;
  }
  if (format === 'ntfs') return uuid.toUpperCase();
  return uuid.toLowerCase();
}

/** The script sfdisk reads from stdin to write exactly this table. */
export function renderSfdiskScript(p: ResolvedLayout): string {
  const lines = [`label: ${p.table === 'gpt' ? 'gpt' : 'dos'}`];
  if (p.diskId) lines.push(`label-id: ${p.diskId}`);
  lines.push('unit: sectors', `sector-size: ${p.sectorSize}`);
  if (p.table === 'gpt') lines.push(`first-lba: ${p.firstUsableSector}`, `last-lba: ${p.lastUsableSector}`);
  lines.push('');
  const entries: string[] = [];
  for (const part of p.partitions) {
    if (p.extended && part.kind === 'logical' && part.number === 5) {
      entries.push(`start=${p.extended.start}, size=${p.extended.size}, type=${MBR_EXTENDED_TYPE}`);
    }
    const fields = [`start=${part.start}`, `size=${part.size}`, `type=${part.typeCode}`];
    if (p.table === 'gpt') {
      fields.push(`name="${gptName(part.name)}"`);
      if (part.partuuid) fields.push(`uuid=${part.partuuid}`);
      if (part.bootable) fields.push('attrs="LegacyBIOSBootable"');
    } else if (part.bootable) {
      fields.push('bootable');
    }
    entries.push(fields.join(', '));
  }
  return `${lines.join('\n')}\n${entries.join('\n')}\n`;
}

/** The resolved layout as a table, for --dry-run and the confirmation prompt. */
export function renderLayoutTable(p: ResolvedLayout): string {
  const head = `${p.disk.path}: ${formatBytes(p.disk.sizeBytes)}, ${p.totalSectors} sectors of ${p.sectorSize} bytes, ${p.table === 'gpt' ? 'GPT' : 'MBR'}${p.wipe ? ', wipe first' : ''}`;
  const rows: string[][] = [['#', 'Name', 'Start', 'End', 'Sectors', 'Size', 'Type', 'Format', 'Label', 'Mount']];
  const all = [...p.partitions.map((part) => ({ part, ext: undefined as ResolvedLayout["extended"] }))];
  if (p.extended) {
    const at = all.findIndex((r) => r.part.kind === 'logical');
    all.splice(at, 0, { part: undefined as unknown as ResolvedPartition, ext: p.extended });
  }
  for (const { part, ext } of all) {
    if (ext) {
      rows.push([String(ext.number), '(extended)', String(ext.start), String(ext.start + ext.size - 1), String(ext.size), formatBytes(ext.size * p.sectorSize), 'extended', '', '', '']);
      continue;
    }
    rows.push([
      String(part.number),
      part.name,
      String(part.start),
      String(part.start + part.size - 1),
      String(part.size),
      formatBytes(part.sizeBytes),
      `${part.type}${part.bootable ? ' *' : ''}`,
      part.format,
      part.label ?? '',
      part.mount ?? '',
    ]);
  }
  for (const g of p.volumeGroups ?? []) {
    rows.push([`vg`, g.name, '', '', '', formatBytes(g.extents * g.extentBytes), `on ${g.physicalVolumes.join(', ')}`, `${g.extents} × ${formatBytes(g.extentBytes)}`, '', '']);
    for (const lv of g.logicalVolumes) rows.push(['lv', lv.name, '', '', '', formatBytes(lv.sizeBytes), `${lv.extents} extents`, lv.format, lv.label ?? '', lv.mount ?? '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  const notes = p.warnings.map((w) => `warning: ${w}`);
  return [head, ...table, ...notes].join('\n') + '\n';
}
