import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ImagepeError, parseSize } from '../core/index.js';

/** The partition types people name; anything else is written as a raw GPT GUID or MBR type byte. */
export const PARTITION_TYPES = [
  'esp',
  'bios-boot',
  'linux',
  'linux-swap',
  'linux-home',
  'msr',
  'windows-basic',
  'windows-recovery',
  'lvm',
] as const;
export type PartitionTypeName = (typeof PARTITION_TYPES)[number];

/** `lvm` makes the partition an LVM physical volume (pvcreate) for the volume group that lists it. */
export const FORMATS = ['vfat', 'ext4', 'xfs', 'btrfs', 'ntfs', 'swap', 'lvm', 'none'] as const;
export type Format = (typeof FORMATS)[number];

export const GUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const MBR_TYPE_PATTERN = /^(0x)?[0-9a-fA-F]{1,2}$/;
/** "512MiB", "2GiB", "4096", "30%", "rest": what parseSize accepts, a percentage, or the remainder. */
export const SIZE_PATTERN = /^(\s*\d+(\.\d+)?\s*([kmgtpKMGTP]i?[bB]?|[bB])?\s*|\d+(\.\d+)?%|rest)$/;

// The patterns let through a few texts parseSize refuses ("5Mi", "0.5B", more bytes than 2^53)
// and percentages the planner refuses; checking with the same rules here lets validation refuse
// what the planner would, naming the field.
const SIZE_MESSAGE = 'expected a size such as "512MiB" or "2GiB", a percentage such as "30%", or "rest"';
const BYTE_SIZE_MESSAGE = 'expected a byte size such as 100GiB or a number of bytes';
const BYTE_SIZE_PATTERN = /^\s*\d+(\.\d+)?\s*([kmgtpKMGTP]i?[bB]?|[bB])?\s*$/;
function isByteSize(text: string): boolean {
  try {
    parseSize(text);
    return true;
  } catch {
    return false;
  }
}

const sizeText = z
  .string()
  .regex(SIZE_PATTERN, { message: SIZE_MESSAGE })
  // Passes what the pattern refused, which it has reported already (zod runs both checks).
  .refine((s) => !SIZE_PATTERN.test(s) || s === 'rest' || (s.endsWith('%') ? Number(s.slice(0, -1)) > 0 && Number(s.slice(0, -1)) <= 100 : isByteSize(s)), { message: SIZE_MESSAGE })
  .describe('Bytes with a unit (512MiB, 2GiB), a percentage of the disk (30%), or "rest" for what is left');

const byteSize = z
  .union([z.number().int().nonnegative(), z.string().regex(BYTE_SIZE_PATTERN, { message: BYTE_SIZE_MESSAGE }).refine((s) => !BYTE_SIZE_PATTERN.test(s) || isByteSize(s), { message: BYTE_SIZE_MESSAGE })], {
    message: BYTE_SIZE_MESSAGE,
  })
  .describe('A byte size: a number of bytes or a size with a unit (100GiB)');

/** A btrfs subvolume path: relative, without empty, "." or ".." components. */
function subvolumePathValid(name: string): boolean {
  return !name.startsWith('/') && name.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

export const SubvolumeSchema = z
  .object({
    name: z.string().min(1).refine(subvolumePathValid, { message: 'expected a relative subvolume path such as @ or @home, without "." or ".."' }).describe('The subvolume path from the top of the filesystem: @, @home, @/var/lib/machines'),
    mount: z.string().optional().describe('Where the deploy agent mounts it (subvol=NAME): an absolute path'),
  })
  .strict();

export const PartitionSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(36, { message: 'expected at most 36 characters (the GPT name field)' })
      .describe('The GPT partition name; for MBR only used in messages'),
    size: z.union([sizeText, z.number().int().positive()], {
      message: 'expected a size such as "512MiB" or "2GiB", a percentage such as "30%", or "rest"',
    }),
    type: z
      .string()
      .refine((t) => (PARTITION_TYPES as readonly string[]).includes(t) || GUID_PATTERN.test(t) || MBR_TYPE_PATTERN.test(t), {
        message: `expected one of ${PARTITION_TYPES.join(', ')}, a GPT type GUID, or an MBR type byte such as 0x83`,
      })
      .describe(`One of ${PARTITION_TYPES.join(', ')}, a raw GPT type GUID, or a raw MBR type byte (0x83)`),
    format: z.enum(FORMATS).default('none').describe('The filesystem to create; none leaves the partition unformatted'),
    label: z.string().min(1).optional().describe('The filesystem label'),
    uuid: z
      .string()
      .optional()
      .describe('A fixed filesystem UUID: a GUID for ext4/xfs/btrfs/swap, XXXX-XXXX for vfat, 16 hex digits for ntfs'),
    partuuid: z.string().regex(GUID_PATTERN, { message: 'expected a GUID' }).optional().describe('A fixed GPT partition GUID'),
    mount: z.string().optional().describe('Where the deploy agent mounts it: an absolute path, or "swap"; with subvolumes, the mount of the subvolume that stands for the filesystem (usually /)'),
    subvolumes: z.array(SubvolumeSchema).optional().describe('btrfs only: subvolumes made after mkfs, parents first, each mounted at its own mount point'),
    defaultSubvolume: z.string().optional().describe('btrfs only: the subvolume mounted when none is named (btrfs subvolume set-default); one of subvolumes'),
    flags: z
      .array(z.enum(['bootable']))
      .default([])
      .describe('bootable: the MBR active flag, or the GPT LegacyBIOSBootable attribute'),
  })
  .strict();

// lvm(8), VALID NAMES: letters, digits and + _ . -, not starting with - and not . or ..; LVM
// keeps names with these words for its own hidden volumes.
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;
const LVM_RESERVED = /_cdata|_cmeta|_corig|_mlog|_mimage|_pmspare|_rimage|_rmeta|_tdata|_tmeta|_vorigin|_vdata|^snapshot|^pvmove/;
const lvmName = (what: string) =>
  z
    .string()
    .min(1)
    .max(126)
    .refine((n) => LVM_NAME.test(n) && n !== '.' && n !== '..', { message: `expected a ${what} name of letters, digits and + _ . - (not starting with -)` })
    .refine((n) => !LVM_RESERVED.test(n), { message: `expected a ${what} name without the words LVM keeps for itself (_rimage, _tmeta, snapshot…)` });

export const LogicalVolumeSchema = z
  .object({
    name: lvmName('logical volume').describe('The LV name: the volume is /dev/VG/NAME and /dev/mapper/VG-NAME; elsewhere in the plan it is called VG/NAME'),
    size: z.union([sizeText, z.number().int().positive()], { message: SIZE_MESSAGE }).describe('Bytes with a unit, a percentage of the volume group, or "rest" for what the group has left (one per group)'),
    format: z.enum(FORMATS).exclude(['lvm', 'ntfs']).default('none').describe('The filesystem to create on the volume'),
    label: z.string().min(1).optional(),
    uuid: z.string().optional().describe('A fixed filesystem UUID'),
    mount: z.string().optional().describe('Where the deploy agent mounts it: an absolute path, or "swap"'),
    subvolumes: z.array(SubvolumeSchema).optional().describe('btrfs only, as for a partition'),
    defaultSubvolume: z.string().optional(),
  })
  .strict();

export const VolumeGroupSchema = z
  .object({
    name: lvmName('volume group').describe('The VG name'),
    physicalVolumes: z.array(z.string().min(1)).min(1, { message: 'expected at least one partition' }).describe('The partitions (format: lvm) the group is made of, by name'),
    extentSize: byteSize.default('4MiB').describe("The physical extent size, LVM's unit of allocation (vgcreate -s; default 4MiB): a power of two of at least 1MiB here"),
    logicalVolumes: z.array(LogicalVolumeSchema).min(1, { message: 'expected at least one logical volume' }),
  })
  .strict()
  .describe('An LVM volume group on partitions of this disk, and its logical volumes (as curtin describes them)');

export const DiskRuleSchema = z
  .object({
    pick: z.enum(['smallest', 'largest']).describe('Which of the disks that match to take'),
    minSize: byteSize.optional(),
    maxSize: byteSize.optional(),
    model: z.string().optional().describe('Matches disks whose model contains this text (case-insensitive)'),
    serial: z.string().optional().describe('Matches the disk with exactly this serial number'),
    wwn: z.string().optional().describe('Matches the disk with this World Wide Name (with or without 0x)'),
    allowRemovable: z.boolean().default(false).describe('Also consider removable media and USB disks'),
  })
  .strict();

export const DiskTargetSchema = z
  .union([z.object({ path: z.string().min(1).describe('The disk or disk image file') }).strict(), DiskRuleSchema], {
    message: 'expected { path: /dev/... } or a rule such as { pick: smallest, minSize: 100GiB }',
  })
  .describe('The disk to partition: an explicit path or a rule that picks one');

export const LayoutSchema = z
  .object({
    table: z.enum(['gpt', 'mbr']).describe('The partition table to write'),
    wipe: z.boolean().default(false).describe('Erase whatever the disk holds; without it only a blank disk is partitioned'),
    firmware: z
      .enum(['uefi', 'bios', 'both'])
      .default('uefi')
      .describe('How the machine boots this disk; bios on GPT needs a bios-boot partition'),
    id: z.string().optional().describe('A fixed disk identifier: a GUID for GPT, 0xXXXXXXXX for MBR'),
    disk: DiskTargetSchema.optional(),
    partitions: z.array(PartitionSchema).min(1, { message: 'expected at least one partition' }),
    volumeGroups: z.array(VolumeGroupSchema).optional().describe('LVM volume groups made on partitions of the layout (format: lvm), with their logical volumes'),
  })
  .strict()
  .describe('A declarative disk layout: partition table, partitions and their filesystems');

export type Layout = z.output<typeof LayoutSchema>;
export type LayoutInput = z.input<typeof LayoutSchema>;
export type PartitionSpec = z.output<typeof PartitionSchema>;
export type Subvolume = z.output<typeof SubvolumeSchema>;
export type VolumeGroupSpec = z.output<typeof VolumeGroupSchema>;
export type LogicalVolumeSpec = z.output<typeof LogicalVolumeSchema>;
export type DiskRule = z.output<typeof DiskRuleSchema>;
export type DiskTarget = z.output<typeof DiskTargetSchema>;

/** Validates a parsed layout, naming each bad field by its path and the form it expects. */
export function parseLayout(value: unknown, source = 'layout'): Layout {
  const result = LayoutSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  throw new ImagepeError('LAYOUT_INVALID', `${source} is not a valid layout:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
    hint: 'See docs/partition.md for the layout format.',
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** Reads a layout from a YAML or JSON file (JSON is YAML too, but its errors read better from JSON.parse). */
export async function loadLayout(file: string): Promise<Layout> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ImagepeError('NOT_FOUND', `layout file ${file} does not exist`);
    }
    throw e;
  }
  return parseLayoutText(text, file);
}

export function parseLayoutText(text: string, source = 'layout'): Layout {
  let value: unknown;
  try {
    value = extname(source).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ImagepeError('LAYOUT_INVALID', `${source} is not valid ${extname(source).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return parseLayout(value, source);
}

/** The JSON Schema of a layout file, for editors and for the deploy plan schema. */
export function layoutJsonSchema(): unknown {
  return z.toJSONSchema(LayoutSchema, { io: 'input' });
}
