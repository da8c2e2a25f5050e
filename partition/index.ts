/**
 * Declarative disk layouts: a layout is data (the zod schema), planned in pure code against one
 * disk (plan), applied with util-linux and the mkfs tools and read back (apply).
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
  type DiskRule,
  type DiskTarget,
  type Format,
  type PartitionTypeName,
} from './schema.js';
export { plan, renderSfdiskScript, renderPlanTable, fat32MinimumBytes, GPT_TYPES, MBR_TYPES } from './planner.js';
export { apply, probe as probeFilesystem, type ApplyOptions } from './apply.js';
export { compareWithPlan, type SfdiskJson, type SfdiskTable } from './verify.js';
export { parseLsblk, selectDisk, listDisks, describeDisk, resolveTarget, type DiskCandidate, type SelectOptions, type DescribeOptions } from './disks.js';
export { LayoutError, type Disk, type Plan, type PlannedPartition, type Result, type AppliedPartition } from './types.js';
export { attachImageFile, detachLoop, withAttachedImage, type AttachOptions } from './loop.js';
