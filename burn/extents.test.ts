import { MiB } from '../core/index.js';
import { parseSeekOutput, roundExtents } from './extents.js';
import { planBlocks } from './plan.js';

// Captured from xfs_io 6.1 (Debian 12) on ext4, `xfs_io -r -c 'seek -a -r 0' FILE`: a 64 MiB
// file made by truncate, with 3 MiB at 8 MiB, 4 KiB at 20480000 and one byte at the very end.
const WITH_HOLES = 'Whence\tResult\nHOLE\t0\nDATA\t8388608\nHOLE\t11534336\nDATA\t20480000\nHOLE\t20484096\nDATA\t67104768\nHOLE\t67108864\n';
// A 1000-byte file of data: the implicit hole at the end is printed at the file's size.
const DENSE = 'Whence\tResult\nDATA\t0\nHOLE\t1000\n';
// truncate -s 10M: one hole.
const ALL_HOLE = 'Whence\tResult\nHOLE\t0\n';
// An empty file.
const EMPTY = 'Whence\tResult\nDATA\tEOF\n';

describe('parseSeekOutput', () => {
  it('reads the data extents of a file with holes', () => {
    expect(parseSeekOutput(WITH_HOLES, 64 * MiB)).toEqual([
      { offset: 8 * MiB, length: 3 * MiB },
      { offset: 20480000, length: 4096 },
      { offset: 67104768, length: 4096 },
    ]);
  });

  it('reads a dense file, a file that is one hole, and an empty file', () => {
    expect(parseSeekOutput(DENSE, 1000)).toEqual([{ offset: 0, length: 1000 }]);
    expect(parseSeekOutput(ALL_HOLE, 10 * MiB)).toEqual([]);
    expect(parseSeekOutput(EMPTY, 0)).toEqual([]);
  });

  it('ends a last data extent without a hole after it at the file size, and clamps to it', () => {
    expect(parseSeekOutput('Whence\tResult\nHOLE\t0\nDATA\t4096\n', 10000)).toEqual([{ offset: 4096, length: 5904 }]);
    expect(parseSeekOutput(DENSE, 600)).toEqual([{ offset: 0, length: 600 }]);
  });

  it('refuses output it does not know instead of reading it as no data', () => {
    expect(() => parseSeekOutput('seek: command not found\n', 100)).toThrow(/unexpected line/);
  });
});

describe('roundExtents', () => {
  it('widens to whole sectors and merges what then touches', () => {
    expect(
      roundExtents(
        [
          { offset: 1000, length: 10 },
          { offset: 1030, length: 100 },
          { offset: 5000, length: 1 },
        ],
        512,
        1 * MiB,
      ),
    ).toEqual([
      { offset: 512, length: 1024 },
      { offset: 4608, length: 512 },
    ]);
  });

  it('caps the last extent at the image end, which need not be a whole sector', () => {
    expect(roundExtents([{ offset: 9000, length: 1000 }], 4096, 10000)).toEqual([{ offset: 8192, length: 1808 }]);
  });

  it('sorts and merges overlapping extents', () => {
    expect(
      roundExtents(
        [
          { offset: 8192, length: 4096 },
          { offset: 0, length: 10000 },
        ],
        4096,
        1 * MiB,
      ),
    ).toEqual([{ offset: 0, length: 12288 }]);
  });
});

describe('planBlocks', () => {
  const base = { blockSize: 4 * MiB, sectorSize: 512 };

  it('cuts extents and holes at block boundaries, and zeros the end of a larger device', () => {
    const plan = planBlocks({ ...base, imageSize: 16 * MiB, deviceSize: 64 * MiB, extents: [{ offset: 3 * MiB, length: 6 * MiB }] });
    expect(plan.blocks).toEqual([
      { offset: 0, length: 3 * MiB, source: 'hole', buffered: false },
      { offset: 3 * MiB, length: 1 * MiB, source: 'image', buffered: false },
      { offset: 4 * MiB, length: 4 * MiB, source: 'image', buffered: false },
      { offset: 8 * MiB, length: 1 * MiB, source: 'image', buffered: false },
      { offset: 9 * MiB, length: 3 * MiB, source: 'hole', buffered: false },
      { offset: 12 * MiB, length: 4 * MiB, source: 'hole', buffered: false },
      { offset: 63 * MiB, length: 1 * MiB, source: 'zeros', buffered: false },
    ]);
    expect(plan.dataBytes).toBe(6 * MiB);
    expect(plan.skippedBytes).toBe(10 * MiB);
    expect(plan.clear).toEqual({ offset: 63 * MiB, length: MiB });
  });

  it('writes the last partial sector buffered, and clears only from the next whole sector', () => {
    const size = 2 * MiB + 1234;
    const plan = planBlocks({ ...base, imageSize: size, deviceSize: 2 * MiB + 4096, extents: [{ offset: 0, length: size }] });
    expect(plan.blocks).toEqual([
      { offset: 0, length: 2 * MiB + 1024, source: 'image', buffered: false },
      { offset: 2 * MiB + 1024, length: 210, source: 'image', buffered: true },
      { offset: 2 * MiB + 1536, length: 2560, source: 'zeros', buffered: false },
    ]);
  });

  it('clears nothing when the image fills the device, and a tiny image is all tail', () => {
    expect(planBlocks({ ...base, imageSize: 8 * MiB, deviceSize: 8 * MiB, extents: [{ offset: 0, length: 8 * MiB }] }).clear).toBeUndefined();
    const tiny = planBlocks({ ...base, imageSize: 100, deviceSize: 512, extents: [{ offset: 0, length: 100 }] });
    expect(tiny.blocks).toEqual([
      { offset: 0, length: 100, source: 'image', buffered: true },
      // The rest of that sector keeps its bytes: only whole sectors past the image are cleared.
    ]);
  });

  it('plans an image that is all holes as holes to read back and the cleared end', () => {
    const plan = planBlocks({ ...base, imageSize: 32 * MiB, deviceSize: 64 * MiB, extents: [] });
    expect(plan.blocks.filter((b) => b.source !== 'hole').every((b) => b.source === 'zeros' && b.offset >= 63 * MiB)).toBe(true);
    expect(plan.blocks.filter((b) => b.source === 'hole').reduce((n, b) => n + b.length, 0)).toBe(32 * MiB);
    expect(plan.skippedBytes).toBe(32 * MiB);
  });

  it('writes a hole in the last partial sector as the zeros it reads as', () => {
    const size = 4 * MiB + 100;
    const plan = planBlocks({ ...base, imageSize: size, deviceSize: size, extents: [{ offset: 0, length: MiB }] });
    expect(plan.blocks).toEqual([
      { offset: 0, length: MiB, source: 'image', buffered: false },
      { offset: MiB, length: 3 * MiB, source: 'hole', buffered: false },
      { offset: 4 * MiB, length: 100, source: 'image', buffered: true },
    ]);
    expect(plan.dataBytes + plan.skippedBytes).toBe(size);
  });
});
