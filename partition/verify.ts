import type { AppliedPartition, ResolvedLayout } from './types.js';

/** What `sfdisk --json` prints. */
export interface SfdiskJson {
  partitiontable: SfdiskTable;
}

export interface SfdiskTable {
  label: string;
  id?: string;
  device?: string;
  sectorsize?: number;
  partitions?: { node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }[];
}

const FS_TYPES: Record<string, string> = { vfat: 'vfat', ext4: 'ext4', xfs: 'xfs', btrfs: 'btrfs', ntfs: 'ntfs', swap: 'swap', lvm: 'LVM2_member' };
const EXTENDED_TYPES = [0x05, 0x0f, 0x85];

/**
 * Compares a table read back with sfdisk and the filesystems blkid found (by partition number)
 * with the resolved layout, listing every difference in words. Pure, so each rule can be shown to catch
 * what it is meant to.
 */
export function compareWithLayout(
  layout: ResolvedLayout,
  table: SfdiskTable,
  filesystems: Map<number, Record<string, string>>,
  nodes: Map<number, string> = new Map(),
): { differences: string[]; partitions: AppliedPartition[] } {
  const diffs: string[] = [];
  const wantLabel = layout.table === 'gpt' ? 'gpt' : 'dos';
  if (table.label !== wantLabel) diffs.push(`the table is ${table.label}, not ${wantLabel}`);
  if (table.sectorsize !== undefined && table.sectorsize !== layout.sectorSize) diffs.push(`the sector size is ${table.sectorsize}, not ${layout.sectorSize}`);
  if (layout.diskId && (table.id ?? '').toLowerCase() !== layout.diskId.toLowerCase()) diffs.push(`the disk id is ${table.id}, not ${layout.diskId}`);

  const byNumber = new Map((table.partitions ?? []).map((p) => [partitionNumber(p.node), p]));
  const expected = new Set(layout.partitions.map((p) => p.number));
  if (layout.extended) {
    expected.add(layout.extended.number);
    const ext = byNumber.get(layout.extended.number);
    if (!ext) diffs.push('the extended partition is missing');
    else {
      if (ext.start !== layout.extended.start || ext.size !== layout.extended.size) {
        diffs.push(`the extended partition is at ${ext.start}+${ext.size}, not ${layout.extended.start}+${layout.extended.size}`);
      }
      if (!EXTENDED_TYPES.includes(parseInt(ext.type, 16))) diffs.push(`the extended partition has type ${ext.type}`);
    }
  }
  for (const n of byNumber.keys()) if (!expected.has(n)) diffs.push(`partition ${n} is on the disk but not in the plan`);

  const partitions: AppliedPartition[] = [];
  for (const want of layout.partitions) {
    const got = byNumber.get(want.number);
    const what = `partition ${want.number} (${want.name})`;
    if (!got) {
      diffs.push(`${what} is missing`);
      continue;
    }
    if (got.start !== want.start) diffs.push(`${what} starts at sector ${got.start}, not ${want.start}`);
    if (got.size !== want.size) diffs.push(`${what} has ${got.size} sectors, not ${want.size}`);
    const typeOk = layout.table === 'gpt' ? got.type.toUpperCase() === want.typeCode : parseInt(got.type, 16) === parseInt(want.typeCode, 16);
    if (!typeOk) diffs.push(`${what} has type ${got.type}, not ${want.typeCode}`);
    const bootable = layout.table === 'gpt' ? (got.attrs ?? '').includes('LegacyBIOSBootable') : got.bootable === true;
    if (bootable !== want.bootable) diffs.push(`${what} is ${bootable ? '' : 'not '}flagged bootable`);
    if (layout.table === 'gpt') {
      if ((got.name ?? '') !== gptName(want.name)) diffs.push(`${what} is named "${got.name ?? ''}"`);
      if (want.partuuid && (got.uuid ?? '').toUpperCase() !== want.partuuid) diffs.push(`${what} has PARTUUID ${got.uuid}, not ${want.partuuid}`);
    }

    const fs = filesystems.get(want.number) ?? {};
    if (want.format === 'none') {
      if (fs.TYPE) diffs.push(`${what} should be unformatted but holds ${fs.TYPE}`);
    } else {
      // A wrong or missing filesystem explains its label and UUID too; say it once.
      if (fs.TYPE !== FS_TYPES[want.format]) {
        diffs.push(`${what} holds ${fs.TYPE ?? 'no filesystem'}, not ${want.format}`);
      } else {
        if (want.label !== undefined && fs.LABEL !== want.label) diffs.push(`${what} has label ${fs.LABEL ?? '(none)'}, not ${want.label}`);
        if (want.uuid !== undefined && (fs.UUID ?? '').toLowerCase() !== want.uuid.toLowerCase()) diffs.push(`${what} has UUID ${fs.UUID ?? '(none)'}, not ${want.uuid}`);
      }
    }
    const applied: AppliedPartition = {
      number: want.number,
      name: want.name,
      node: nodes.get(want.number) ?? got.node,
      start: got.start,
      size: got.size,
      typeCode: got.type,
      bootable,
    };
    const partuuid = got.uuid ?? fs.PART_ENTRY_UUID;
    if (partuuid) applied.partuuid = partuuid;
    if (fs.TYPE) applied.fsType = fs.TYPE;
    if (fs.LABEL) applied.label = fs.LABEL;
    if (fs.UUID) applied.uuid = fs.UUID;
    if (want.mount) applied.mount = want.mount;
    if (want.subvolumes) applied.subvolumes = want.subvolumes.map((v) => ({ ...v }));
    if (want.defaultSubvolume) applied.defaultSubvolume = want.defaultSubvolume;
    partitions.push(applied);
  }
  return { differences: diffs, partitions };
}

/** sfdisk's script syntax has no escape for quotes, so the resolver writes them as underscores. */
export function gptName(name: string): string {
  return name.replace(/["\\]/g, '_');
}

/** The number of a partition from its node as sfdisk names it: /dev/sda3 → 3, /dev/loop0p12 → 12, disk.img3 → 3. */
export function partitionNumber(node: string): number {
  return Number(/(\d+)$/.exec(node)?.[1] ?? NaN);
}
