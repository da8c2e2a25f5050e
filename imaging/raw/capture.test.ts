import { bmapPathFor, captureMethodFor, partcloneUsedBytes, regionsOutsidePartitions, swapHeaderBytes, zstdReadBytes } from './capture.js';
import { bmapCandidates } from './format.js';

describe('capture-raw helpers', () => {
  it('puts the bmap where bmaptool and writeRawImage look for it', () => {
    expect(bmapPathFor('out/debian.img.zst')).toBe('out/debian.img.bmap');
    expect(bmapCandidates('out/debian.img.zst')).toContain(bmapPathFor('out/debian.img.zst'));
    expect(() => bmapPathFor('out/debian.img')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('chooses partclone for the filesystems it knows, the header for swap, zero detection otherwise', () => {
    expect(['ext4', 'ext2', 'xfs', 'btrfs', 'vfat', 'swap', undefined, 'LVM2_member', 'crypto_LUKS'].map(captureMethodFor)).toEqual([
      'partclone.ext4',
      'partclone.ext4',
      'partclone.xfs',
      'partclone.btrfs',
      'partclone.fat',
      'header-only',
      'zero-detect',
      'zero-detect',
      'zero-detect',
    ]);
  });

  it('finds the areas no partition covers: table, gaps, GPT backup, EBRs inside an extended partition', () => {
    const gpt = { label: 'gpt', partitions: [{ node: 'd1', start: 2048, size: 2048, type: 'x' }, { node: 'd2', start: 8192, size: 2048, type: 'x' }] };
    expect(regionsOutsidePartitions(gpt, 16 * 1024 * 1024, 512)).toEqual([
      { offset: 0, length: 1024 * 1024 },
      { offset: 2 * 1024 * 1024, length: 2 * 1024 * 1024 },
      { offset: 5 * 1024 * 1024, length: 11 * 1024 * 1024 },
    ]);
    const mbr = { label: 'dos', partitions: [{ node: 'd1', start: 2048, size: 2048, type: '83' }, { node: 'd2', start: 4096, size: 4096, type: '5' }, { node: 'd5', start: 6144, size: 2048, type: '82' }] };
    expect(regionsOutsidePartitions(mbr, 4 * 1024 * 1024, 512)).toEqual([
      { offset: 0, length: 1024 * 1024 },
      { offset: 2 * 1024 * 1024, length: 1024 * 1024 },
    ]);
    expect(regionsOutsidePartitions(undefined, 1000, 512)).toEqual([{ offset: 0, length: 1000 }]);
  });

  it("finds mkswap's header page by its signature", () => {
    const page = (size: number) => {
      const b = Buffer.alloc(65536);
      b.write('SWAPSPACE2', size - 10, 'latin1');
      return b;
    };
    expect(swapHeaderBytes(page(4096))).toBe(4096);
    expect(swapHeaderBytes(page(65536))).toBe(65536);
    expect(swapHeaderBytes(Buffer.alloc(65536))).toBeUndefined();
  });

  it("reads partclone's used bytes", () => {
    const out = 'File system:  EXTFS\nDevice size:  314.6 MB = 307200 Blocks\nSpace in use:  35.5 MB = 34713 Blocks\nFree Space:   279.0 MB = 272487 Blocks\nBlock size:   1024 Byte\n';
    expect(partcloneUsedBytes(out)).toBe(34713 * 1024);
    expect(partcloneUsedBytes('nothing')).toBeUndefined();
  });

  it("reads zstd's progress", () => {
    expect(zstdReadBytes('Read:  72.0 MiB /   300 MiB ==>  0%')).toBe(72 * 1024 * 1024);
    expect(zstdReadBytes('Read:     0   B /   300 MiB ==>  0%')).toBe(0);
    expect(zstdReadBytes('z.bin : 0.01% (300 MiB => 30 KiB)')).toBeUndefined();
  });
});
