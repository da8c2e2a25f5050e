import { parseDirDetailed, parseDirPlain } from './dir.js';
import { parseWimInfo, selectImage } from './info.js';
import { parseProgressLine } from './progress.js';
import { captureConfig } from './wim.js';

// Output as wimlib-imagex 1.13 prints it.
const INFO = `WIM Information:
----------------
Path:           /srv/images/base.wim
GUID:           0x12b70c2c954d5be4a466dfec0d174a42
Version:        68864
Image Count:    2
Compression:    LZX
Chunk Size:     32768 bytes
Part Number:    1/1
Boot Index:     0
Size:           3000914 bytes
Attributes:     Integrity info, Relative path junction

Available Images:
-----------------
Index:                  1
Name:                   Debian base
Description:            
Directory Count:        2
File Count:             4
Total Bytes:            3000048
Hard Link Bytes:        6
Creation Time:          Wed Nov 25 21:13:37 2026 UTC
Last Modification Time: Wed Nov 25 21:13:37 2026 UTC
WIMBoot compatible:     no

Index:                  2
Name:                   Debian web: nginx
Description:            with nginx
Directory Count:        7
File Count:             12
Total Bytes:            5000000
Hard Link Bytes:        0
Creation Time:          Thu Nov 26 08:00:00 2026 UTC
Last Modification Time: Thu Nov 26 08:01:02 2026 UTC
Flags:                  ServerStandard
WIMBoot compatible:     no

`;

describe('parseWimInfo', () => {
  const info = parseWimInfo(INFO);

  it('reads the header', () => {
    expect(info).toMatchObject({
      path: '/srv/images/base.wim',
      imageCount: 2,
      compression: 'lzx',
      chunkSize: 32768,
      partNumber: 1,
      totalParts: 1,
      sizeBytes: 3000914,
      hasIntegrityTable: true,
    });
  });

  it('reads every image with counts, sizes, names with colons, and ISO times', () => {
    expect(info.images).toHaveLength(2);
    expect(info.images[0]).toMatchObject({ index: 1, name: 'Debian base', description: '', fileCount: 4, directoryCount: 2, totalBytes: 3000048, hardLinkBytes: 6, creationTime: '2026-11-25T21:13:37.000Z' });
    expect(info.images[1]).toMatchObject({ index: 2, name: 'Debian web: nginx', description: 'with nginx', flags: 'ServerStandard', lastModificationTime: '2026-11-26T08:01:02.000Z' });
  });

  it('selects an image by index, by numeric string, and by name', () => {
    expect(selectImage(info, 2).name).toBe('Debian web: nginx');
    expect(selectImage(info, '1').name).toBe('Debian base');
    expect(selectImage(info, 'Debian web: nginx').index).toBe(2);
  });

  it('lists the images that exist when asked for one that does not', () => {
    expect(() => selectImage(info, 3)).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_FOUND', message: expect.stringContaining('1 "Debian base", 2 "Debian web: nginx"') }));
    expect(() => selectImage(info, 'Windows')).toThrow(/no image named "Windows"/);
  });
});

describe('parseProgressLine', () => {
  it.each([
    ['Archiving file data: 2912 KiB of 2929 KiB (99%) done', { phase: 'Archiving file data', unit: 'bytes', done: 2912 * 1024, total: 2929 * 1024 }],
    ['Extracting file data: 12 MiB of 700 MiB (1%) done', { phase: 'Extracting file data', unit: 'bytes', done: 12 * 1024 ** 2, total: 700 * 1024 ** 2 }],
    ['Verifying file data: 2 GiB of 3 GiB (66%) done', { phase: 'Verifying file data', unit: 'bytes', done: 2 * 1024 ** 3, total: 3 * 1024 ** 3 }],
    ['Creating files: 120 of 4000 (3%) done', { phase: 'Creating files', unit: 'files', done: 120, total: 4000 }],
    ['2929 KiB scanned (4 files, 2 directories)    ', { phase: 'Scanning', unit: 'bytes', done: 2929 * 1024 }],
  ])('reads "%s"', (line, expected) => {
    expect(parseProgressLine(line)).toEqual(expected);
  });

  it.each(['Scanning "wt/src"', 'Using XPRESS compression with 2 threads', '[WARNING] Ignoring UNIX metadata', ''])('ignores "%s"', (line) => {
    expect(parseProgressLine(line)).toBeUndefined();
  });
});

const DIR_DETAILED = `----------------------------------------------------------------------------
Full Path           = "/"
Short Name          = ""
Attributes          = 0x00000010
    FILE_ATTRIBUTE_DIRECTORY is set
Last Write Time     = Wed Nov 25 21:13:36 2026 UTC
Link Group ID       = 0x0000000000000000
Link Count          = 1
UNIX Data           = uid:0 gid:0 mode:040755 rdev:0x0
\tUnnamed data stream:
Hash              = 0x0000000000000000000000000000000000000000
Uncompressed size = 0 bytes

----------------------------------------------------------------------------
Full Path           = "/a = b.txt"
Short Name          = ""
Attributes          = 0x00000080
    FILE_ATTRIBUTE_NORMAL is set
Last Write Time     = Wed Nov 25 21:13:36 2026 UTC
Link Group ID       = 0x0000000000000003
Link Count          = 2
UNIX Data           = uid:1000 gid:100 mode:0100644 rdev:0x0
\tUnnamed data stream:
Hash              = 0xf572d396fae9206628714fb2ce00f72e94f2258f
Uncompressed size = 6 bytes
Compressed size   = 6 bytes

----------------------------------------------------------------------------
Full Path           = "/dev/null"
Attributes          = 0x00000080
Link Count          = 1
UNIX Data           = uid:0 gid:0 mode:020666 rdev:0x103
`;

describe('parseDirDetailed', () => {
  it('reads path, type, links, size, hash and UNIX data of each entry', () => {
    const entries = parseDirDetailed(DIR_DETAILED);
    expect(entries.map((e) => e.path)).toEqual(['/', '/a = b.txt', '/dev/null']);
    expect(entries[0]).toMatchObject({ isDirectory: true, size: 0, sha1: undefined, unix: { uid: 0, gid: 0, mode: 0o40755, rdev: 0 } });
    expect(entries[1]).toMatchObject({ isDirectory: false, linkCount: 2, size: 6, sha1: 'f572d396fae9206628714fb2ce00f72e94f2258f', unix: { uid: 1000, gid: 100, mode: 0o100644 }, lastWriteTime: '2026-11-25T21:13:36.000Z' });
    expect(entries[2]!.unix).toEqual({ uid: 0, gid: 0, mode: 0o20666, rdev: 0x103 });
  });

  it('reads the plain listing one path a line', () => {
    expect(parseDirPlain('/\n/a.txt\n/sub\n')).toEqual(['/', '/a.txt', '/sub']);
  });
});

describe('captureConfig', () => {
  it('writes an [ExclusionList] with paths anchored at the capture root', async () => {
    expect(await captureConfig(['tmp', '/var/cache', '*.swp'], undefined)).toBe('[ExclusionList]\n/tmp\n/var/cache\n*.swp\n');
  });

  it('is empty when nothing is excluded', async () => {
    expect(await captureConfig([], undefined)).toBe('');
  });
});
