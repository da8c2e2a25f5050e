/**
 * Declarative disk layouts and the one disk layer: a layout is data (the zod schema), resolved
 * in pure code against one disk (resolveLayout), applied with util-linux and the mkfs tools and
 * read back (apply, or writeTable, formatPartitions and readBack one at a time). Disks are
 * chosen with their refusals (chooseDisk), checked (assertDiskFree), described in words
 * (describeContents), and disk image files attached as loop devices (attachImageFile).
 */
export {
  LayoutSchema,
  PartitionSchema,
  DiskRuleSchema,
  DiskTargetSchema,
  PARTITION_TYPES,
  FORMATS,
  parseLayout,
  parseLayoutText,
  loadLayout,
  layoutJsonSchema,
  type Layout,
  type LayoutInput,
  type PartitionSpec,
  type VolumeGroupSpec,
  type LogicalVolumeSpec,
  type DiskRule,
  type DiskTarget,
  type Format,
  type PartitionTypeName,
} from './schema.js';
export { resolveLayout, renderSfdiskScript, renderLayoutTable, fat32MinimumBytes, mountPointsOf, GPT_TYPES, MBR_TYPES } from './resolve.js';
export { apply, writeTable, wipeSignatures, formatPartitions, makeVolumeGroups, deactivateLayoutGroups, readBack, readTable, waitForPartitions, type ApplyOptions } from './apply.js';
export { resolveVolumeGroups, logicalVolumesOf, layoutVolumes, PV_DATA_OFFSET_BYTES, type LayoutVolume } from './lvm-plan.js';
export { lvm, lvmConfig, logicalVolumeNode, reportGroups, reportLogicalVolumes, activateVolumeGroups, deactivateVolumeGroups, assertLvmReady, type LogicalVolumeReport, type FoundVolumeGroup } from './lvm.js';
export { assertDiskFree, describeContents, partitionNodes, probeFilesystem, type ContentProbe } from './target.js';
export { chooseDisk, type ChooseDiskOptions, type ChosenDisk } from './choose.js';
export { attachImageFile, detachLoop, withAttachedImage, type AttachOptions } from './loop.js';
export { defaultSubvolume, listSubvolumes } from './btrfs.js';
export { compareWithLayout, partitionNumber, type SfdiskJson, type SfdiskTable } from './verify.js';
export { parseLsblk, selectDisk, listDisks, describeDisk, type DiskCandidate, type SelectOptions, type DescribeOptions } from './disks.js';
export { LayoutError, type Disk, type ResolvedLayout, type ResolvedPartition, type ResolvedVolumeGroup, type ResolvedLogicalVolume, type Result, type AppliedPartition } from './types.js';
export { growToDisk, planGrow, currentNodes, filesystemBytes, type GrowOptions, type GrowResult, type GrowPlan, type GrowPlanInput, type MovedSwap } from './grow.js';
