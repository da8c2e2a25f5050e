import { createHash } from 'node:crypto';
import { ImagepeError } from '../../core/index.js';
import { bmapCandidates, isZero, mappedBytes, parseBmap, parseXzRobot, parseZstdList, piecesOf, RangeChecker, rawFormatOf, spansOf, xzFooterIndexBytes, xzIndexContentSize, zstdFrameContentSize } from './index.js';

// Real `bmaptool create` output (bmap-tools 3.6) for a 16 MiB image with 2 MiB of data at
// 3 MiB and 12 KiB at block 2000; the comment block is abridged.
const BMAP = `<?xml version="1.0" ?>
<!-- This file contains the block map for an image file, which is basically
     a list of useful (mapped) block numbers in the image file. -->

<bmap version="2.0">
    <!-- Image size in bytes: 16.0 MiB -->
    <ImageSize> 16777216 </ImageSize>

    <!-- Size of a block in bytes -->
    <BlockSize> 4096 </BlockSize>

    <!-- Count of blocks in the image file -->
    <BlocksCount> 4096 </BlocksCount>

    <!-- Count of mapped blocks: 2.0 MiB or 12.6%     -->
    <MappedBlocksCount> 515  </MappedBlocksCount>

    <!-- Type of checksum used in this file -->
    <ChecksumType> sha256 </ChecksumType>

    <!-- The checksum of this bmap file. When it is calculated, the value of
         the checksum has be zero (all ASCII "0" symbols).  -->
    <BmapFileChecksum> 1e52437848eb9d2f775f6e3abb2bc95ddbb7c70959da3e37c318dd95dd6f9c53 </BmapFileChecksum>

    <!-- The block map which consists of elements which may either be a
         range of blocks or a single block. The 'chksum' attribute
         (if present) is the checksum of this blocks range. -->
    <BlockMap>
        <Range chksum="b039317fbaa4fdf3cbbda2fd70219163628ceef54e229f998af72c480a41f019"> 768-1279 </Range>
        <Range chksum="5c85f0c3a5b1bc4ed537f004c0aed968cae3eee8df3b5ee9afa68432f98c80bc"> 2000-2002 </Range>
    </BlockMap>
</bmap>
`;

const MiB = 1024 * 1024;

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ImagepeError);
    expect((e as ImagepeError).code).toBe('INVALID_INPUT');
    return (e as Error).message;
  }
  throw new Error('did not throw');
}

describe('rawFormatOf', () => {
  it.each([
    ['disk.img', 'raw'],
    ['/srv/DISK.RAW', 'raw'],
    ['firmware.bin', 'raw'],
    ['disk.img.zst', 'zst'],
    ['disk.zst', 'zst'],
    ['debian.raw.xz', 'xz'],
    ['x.tar.gz', 'gz'],
    ['vm.qcow2', 'qcow2'],
    ['https://host/images/disk.img.zst?token=a.b', 'zst'],
    ['disk.iso', undefined],
    ['disk', undefined],
    ['.img', undefined],
  ])('%s → %s', (name, format) => expect(rawFormatOf(name)).toBe(format));
});

describe('bmapCandidates', () => {
  it('tries IMAGE.bmap, then each extension stripped, as bmaptool does', () => {
    expect(bmapCandidates('/srv/foo.img.zst')).toEqual(['/srv/foo.img.zst.bmap', '/srv/foo.img.bmap', '/srv/foo.bmap']);
    expect(bmapCandidates('/a.b/disk')).toEqual(['/a.b/disk.bmap']);
  });
});

describe('parseBmap', () => {
  it("reads bmaptool's output", () => {
    const b = parseBmap(BMAP);
    expect(b).toEqual({
      blockSize: 4096,
      imageBytes: 16 * MiB,
      mappedBlocks: 515,
      ranges: [
        { first: 768, last: 1279, sha256: 'b039317fbaa4fdf3cbbda2fd70219163628ceef54e229f998af72c480a41f019' },
        { first: 2000, last: 2002, sha256: '5c85f0c3a5b1bc4ed537f004c0aed968cae3eee8df3b5ee9afa68432f98c80bc' },
      ],
    });
    expect(mappedBytes(b)).toBe(515 * 4096);
  });

  it('reads format 1.x (sha1 checksums are not kept) and single-block ranges', () => {
    const v1 = `<bmap version="1.4"><ImageSize>8192</ImageSize><BlockSize>4096</BlockSize><BlocksCount>2</BlocksCount><MappedBlocksCount>1</MappedBlocksCount><BlockMap><Range sha1="da39a3ee5e6b4b0d3255bfef95601890afd80709">1</Range></BlockMap></bmap>`;
    expect(parseBmap(v1)).toEqual({ blockSize: 4096, imageBytes: 8192, mappedBlocks: 1, ranges: [{ first: 1, last: 1 }] });
  });

  it('says what is wrong', () => {
    expect(invalid(() => parseBmap('<html></html>'))).toMatch(/no <bmap version/);
    expect(invalid(() => parseBmap(BMAP.replace('version="2.0"', 'version="3.0"')))).toMatch(/3\.0 is not 1\.x or 2\.x/);
    expect(invalid(() => parseBmap(BMAP.replace('<ImageSize> 16777216 </ImageSize>', '')))).toMatch(/no <ImageSize>/);
    expect(invalid(() => parseBmap(BMAP.replace('> 4096 </BlockSize>', '> 4k </BlockSize>')))).toMatch(/<BlockSize> is "4k"/);
    expect(invalid(() => parseBmap(BMAP.replace('> 768-1279 <', '> 1279-768 <')))).toMatch(/ends before it starts/);
    expect(invalid(() => parseBmap(BMAP.replace('> 2000-2002 <', '> 1000-1002 <')))).toMatch(/overlaps or precedes/);
    expect(invalid(() => parseBmap(BMAP.replace('> 2000-2002 <', '> 4094-4096 <')))).toMatch(/past the image's last block/);
    expect(invalid(() => parseBmap(BMAP.replace('> 515  <', '> 516 <')))).toMatch(/MappedBlocksCount> is 516 but the ranges hold 515/);
    expect(invalid(() => parseBmap(BMAP.replace('> 768-1279 <', '> 768-x <')))).toMatch(/is not N or N-M/);
  });
});

describe('spansOf and piecesOf (the window plan)', () => {
  const bmap = parseBmap(BMAP);

  it('a block without a bmap is one mapped piece', () => {
    expect(piecesOf(4 * MiB, 4 * MiB, undefined, 512)).toEqual([{ offset: 4 * MiB, length: 4 * MiB, mapped: true, buffered: false }]);
  });

  it('cuts blocks at range boundaries; pieces cover the block exactly', () => {
    expect(spansOf(0, 4 * MiB, bmap)).toEqual([
      { offset: 0, length: 3 * MiB, mapped: false },
      { offset: 3 * MiB, length: MiB, mapped: true },
    ]);
    expect(spansOf(4 * MiB, 4 * MiB, bmap)).toEqual([
      { offset: 4 * MiB, length: MiB, mapped: true },
      { offset: 5 * MiB, length: 2000 * 4096 - 5 * MiB, mapped: false },
      { offset: 2000 * 4096, length: 3 * 4096, mapped: true },
      { offset: 2003 * 4096, length: 8 * MiB - 2003 * 4096, mapped: false },
    ]);
    expect(spansOf(12 * MiB, 4 * MiB, bmap)).toEqual([{ offset: 12 * MiB, length: 4 * MiB, mapped: false }]);
    for (let at = 0; at < 16 * MiB; at += 4 * MiB) {
      const ps = piecesOf(at, 4 * MiB, bmap, 4096);
      expect(ps.reduce((n, p) => n + p.length, 0)).toBe(4 * MiB);
      ps.forEach((p, i) => i > 0 && expect(p.offset).toBe(ps[i - 1]!.offset + ps[i - 1]!.length));
    }
  });

  it("splits the image's partial last sector off as a buffered piece", () => {
    expect(piecesOf(8 * MiB, MiB + 100, undefined, 512)).toEqual([
      { offset: 8 * MiB, length: MiB, mapped: true, buffered: false },
      { offset: 9 * MiB, length: 100, mapped: true, buffered: true },
    ]);
  });

  it('isZero compares with a zero buffer', () => {
    const zeros = Buffer.alloc(4096);
    expect(isZero(Buffer.alloc(100), zeros)).toBe(true);
    const b = Buffer.alloc(100);
    b[99] = 1;
    expect(isZero(b, zeros)).toBe(false);
  });
});

describe('RangeChecker', () => {
  const data = Buffer.alloc(3 * 4096, 7);
  const sum = createHash('sha256').update(data).digest('hex');
  const bmap = { blockSize: 4096, imageBytes: 16 * 4096, mappedBlocks: 3, ranges: [{ first: 2, last: 4, sha256: sum }] };

  it('checks a range fed in pieces, as the windows pass', () => {
    const c = new RangeChecker(bmap, () => createHash('sha256'));
    expect(c.feed(2 * 4096, data.subarray(0, 5000))).toBeUndefined();
    expect(c.unfinished()).toEqual([2]);
    expect(c.feed(2 * 4096 + 5000, data.subarray(5000))).toBeUndefined();
    expect(c.unfinished()).toEqual([]);
  });

  it('names the range whose bytes are wrong', () => {
    const c = new RangeChecker(bmap, () => createHash('sha256'));
    const bad = Buffer.from(data);
    bad[10] = 0;
    expect(c.feed(0, Buffer.concat([Buffer.alloc(2 * 4096), bad]))).toMatchObject({ first: 2, last: 4, expected: sum });
  });
});

describe('size probes', () => {
  it('reads zstd -lv and xz --robot -l', () => {
    expect(parseZstdList('# Zstandard Frames: 1\nDecompressed Size: 16.0 MiB (16777216 B)\nRatio: 7.95\n')).toBe(16777216);
    expect(parseZstdList('# Zstandard Frames: 1\nDecompressed Size: \n')).toBeUndefined();
    expect(parseXzRobot('name\ta.img.xz\nfile\t1\t1\t2113436\t16777216\t0.126\tCRC64\t0\ntotals\t1\t1\t2113436\t16777216\t0.126\tCRC64\t0\t1\n')).toBe(16777216);
  });

  it("reads a zstd frame header's content size", () => {
    // zstd 1.5.4 on a 16 MiB file: FHD 0x84 (4-byte content size, checksum), window byte 0x58, size.
    const head = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x84, 0x58, 0, 0, 0, 1, 0x54, 0]);
    expect(zstdFrameContentSize(head)).toBe(16777216);
    expect(zstdFrameContentSize(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x50]))).toBeUndefined();
    expect(zstdFrameContentSize(Buffer.from('not zstd!'))).toBeUndefined();
  });

  it("reads an xz footer and index", () => {
    // The last 12 bytes of xz 5.4's output for a 16 MiB file: backward size 3, so a 16-byte index.
    const footer = Buffer.from([0x14, 0x17, 0x3b, 0x30, 3, 0, 0, 0, 0, 4, 0x59, 0x5a]);
    expect(xzFooterIndexBytes(footer)).toBe(16);
    // One record: unpadded size 300 (0xac 0x02), uncompressed 16 MiB (0x80 0x80 0x80 0x08).
    expect(xzIndexContentSize(Buffer.from([0, 1, 0xac, 0x02, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0]))).toBe(16 * MiB);
    expect(xzIndexContentSize(Buffer.from([1]))).toBeUndefined();
  });
});
