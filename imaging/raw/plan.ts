import type { Hash } from 'node:crypto';
import { spansOf, type Bmap } from './bmap.js';

/**
 * One write (and one read-back) of a window: `length` bytes at `offset` of the image and of the
 * device. `mapped` false: a range the bmap leaves out (free blocks of the image's filesystems),
 * neither written nor verified. `buffered`: the image's last partial sector, which O_DIRECT
 * cannot move (burn/device.ts writes it through the page cache).
 */
export interface Piece {
  offset: number;
  length: number;
  mapped: boolean;
  buffered: boolean;
}

/**
 * The pieces of one block of the image (pure): the block cut at the bmap's range boundaries
 * (the whole block when there is none), and the image's partial last sector split off its
 * piece. Pieces are in order and cover the block exactly.
 */
export function piecesOf(offset: number, length: number, bmap: Bmap | undefined, sectorSize: number): Piece[] {
  const out: Piece[] = [];
  for (const s of spansOf(offset, length, bmap)) {
    const end = s.offset + s.length;
    const directEnd = Math.max(s.offset, Math.floor(end / sectorSize) * sectorSize);
    if (directEnd > s.offset) out.push({ offset: s.offset, length: directEnd - s.offset, mapped: s.mapped, buffered: false });
    if (end > directEnd) out.push({ offset: directEnd, length: end - directEnd, mapped: s.mapped, buffered: true });
  }
  return out;
}

/** Bytes per write and read-back: what burn uses, and what USB and SATA controllers like. */
export const RAW_BLOCK_BYTES = 4 * 1024 * 1024;
/** Bytes written before they are synced and read back: 16 blocks. */
export const RAW_WINDOW_BYTES = 64 * 1024 * 1024;

/** Whether `data` is all zeros; `zeros` is a zero buffer at least as long. Buffer.equals is a memcmp. */
export function isZero(data: Uint8Array, zeros: Buffer): boolean {
  return zeros.subarray(0, data.length).equals(data);
}

/**
 * Checks a bmap's per-range sha256 as the image's bytes go by, in order (pure but for the
 * hashing). feed() takes the bytes of mapped spans in image order; a range is checked the
 * moment its last byte is fed. Ranges are clamped to the image's size.
 */
export class RangeChecker {
  private index = 0;
  private hash: Hash | undefined;

  constructor(
    private readonly bmap: Bmap | undefined,
    private readonly createHash: () => Hash,
  ) {}

  /** Feeds `data`, the image's bytes at `offset` (within mapped spans). Returns the first range whose sha256 is wrong, if any. */
  feed(offset: number, data: Uint8Array): { first: number; last: number; expected: string; actual: string } | undefined {
    const b = this.bmap;
    if (!b) return undefined;
    let at = offset;
    let rest = data;
    while (rest.length > 0 && this.index < b.ranges.length) {
      const r = b.ranges[this.index]!;
      const start = r.first * b.blockSize;
      const end = Math.min((r.last + 1) * b.blockSize, b.imageBytes);
      if (at >= end) {
        this.next();
        continue;
      }
      if (at + rest.length <= start) return undefined;
      if (at < start) {
        rest = rest.subarray(start - at);
        at = start;
      }
      const n = Math.min(rest.length, end - at);
      if (r.sha256) (this.hash ??= this.createHash()).update(rest.subarray(0, n));
      at += n;
      rest = rest.subarray(n);
      if (at === end) {
        const actual = this.hash?.digest('hex');
        this.next();
        if (r.sha256 && actual !== r.sha256) return { first: r.first, last: r.last, expected: r.sha256, actual: actual ?? '' };
      }
    }
    return undefined;
  }

  /** Ranges never fed completely (the image ended before them): their first block numbers. */
  unfinished(): number[] {
    return this.bmap ? this.bmap.ranges.slice(this.index).map((r) => r.first) : [];
  }

  private next(): void {
    this.index++;
    this.hash = undefined;
  }
}
