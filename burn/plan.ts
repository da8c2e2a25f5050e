import { MiB } from '../core/index.js';
import type { Extent } from './extents.js';

/**
 * One write (and later one read-back) of the burn: `length` bytes at device offset `offset`,
 * taken from the image at the same offset (`source: 'image'`), zeros (`'zeros'`, the stale end
 * of the device being cleared), or a hole of the image (`'hole'`): not written, read back, and
 * zeroed only when the device holds something else there. `buffered` marks the image's last
 * partial sector, written without O_DIRECT because O_DIRECT moves whole sectors only.
 */
export interface Block {
  offset: number;
  length: number;
  source: 'image' | 'zeros' | 'hole';
  buffered: boolean;
}

export interface BlockPlan {
  /** In device order: the image's data, then the cleared end of the device. */
  blocks: Block[];
  /** Image bytes the blocks carry (the data extents, widened to whole sectors). */
  dataBytes: number;
  /** Image bytes in holes: read back instead of written, zeroed only where the device is not already zero. */
  skippedBytes: number;
  /** The device's end zeroed (stale partition-table signatures), when the image does not reach it. */
  clear?: Extent;
}

export interface PlanInput {
  imageSize: number;
  /** Data extents already widened to whole sectors (roundExtents). */
  extents: readonly Extent[];
  /** Bytes per write: a multiple of sectorSize. */
  blockSize: number;
  /** The device's logical sector size: the unit of every O_DIRECT write. */
  sectorSize: number;
  deviceSize: number;
  /** How much of the device's end to zero when the image does not cover it (default 1 MiB). */
  clearEndBytes?: number;
}

/** The device's last MiB is zeroed: a GPT keeps its backup header in the last sector and its backup entries in the 16 KiB before it, and 1 MiB covers every alignment tools use. */
export const CLEAR_END_BYTES = MiB;

/**
 * The writes of a burn, in pure arithmetic. Each extent, and each hole between them, is cut at
 * multiples of `blockSize` (so writes never straddle a block boundary, whatever the extents);
 * the image's last partial sector becomes a buffered image block of its own (a hole there is
 * written as the zeros it reads as); and when the image ends before the device's last
 * `clearEndBytes` those bytes (from the first whole sector past the image) become zero blocks.
 */
export function planBlocks(input: PlanInput): BlockPlan {
  const { imageSize, blockSize, sectorSize, deviceSize } = input;
  const blocks: Block[] = [];
  const directEnd = Math.floor(imageSize / sectorSize) * sectorSize;
  let dataBytes = 0;
  const cut = (start: number, end: number, source: Block['source']) => {
    for (let at = start; at < end; ) {
      const next = Math.min(end, (Math.floor(at / blockSize) + 1) * blockSize);
      blocks.push({ offset: at, length: next - at, source, buffered: false });
      at = next;
    }
  };
  let at = 0;
  for (const e of input.extents) {
    const end = Math.min(e.offset + e.length, imageSize);
    cut(at, Math.min(e.offset, directEnd), 'hole');
    dataBytes += Math.min(end, directEnd) - e.offset;
    cut(e.offset, Math.min(end, directEnd), 'image');
    at = Math.max(at, end);
  }
  cut(at, directEnd, 'hole');
  if (imageSize > directEnd) {
    dataBytes += imageSize - directEnd;
    blocks.push({ offset: directEnd, length: imageSize - directEnd, source: 'image', buffered: true });
  }
  const plan: BlockPlan = { blocks, dataBytes, skippedBytes: imageSize - dataBytes };
  const clearFrom = Math.max(deviceSize - (input.clearEndBytes ?? CLEAR_END_BYTES), Math.ceil(imageSize / sectorSize) * sectorSize);
  if (clearFrom < deviceSize) {
    plan.clear = { offset: clearFrom, length: deviceSize - clearFrom };
    cut(clearFrom, deviceSize, 'zeros');
  }
  return plan;
}
