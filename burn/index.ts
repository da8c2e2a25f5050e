/**
 * Writing an ISO or a raw disk image to a USB stick, safely and verified: the target described
 * and every refusal decided before a byte is written (planBurn, describeTarget, burnRefusals),
 * then O_DIRECT writes that skip the image's holes while hashing, and a read-back of every block
 * from the device (burn). docs/burn.md says why each rule is there.
 */
export { planBurn, burn, DEFAULT_BLOCK_SIZE, DEFAULT_REWRITE_ATTEMPTS, type PlanBurnOptions, type BurnPlan, type BurnImage, type BurnOptions, type BurnResult } from './burn.js';
export { describeTarget, burnRefusals, refusalError, targetFromLsblk, type TargetDescription, type TargetPartition, type TargetProbes, type DescribeTargetOptions, type Refusal, type RefusalContext } from './target.js';
export { parseSeekOutput, roundExtents, findDataExtents, type Extent, type DataExtents } from './extents.js';
export { planBlocks, CLEAR_END_BYTES, type Block, type BlockPlan, type PlanInput } from './plan.js';
export { expectedSha256, sha256FileHash, disksHolding, mountOf, splitDev, type ExpectedSha256 } from './image.js';
export { alignedBuffers } from './aligned.js';
