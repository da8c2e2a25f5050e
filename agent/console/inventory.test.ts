import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeContents, findWimFiles, parseDiskContents } from './inventory.js';

// lsblk as Debian 12's util-linux 2.38 prints it where there is no udev database (the PE):
// the tree and sizes are there, filesystem types and labels are not.
const LSBLK_NO_UDEV = JSON.stringify({
  blockdevices: [
    {
      name: 'vda',
      path: '/dev/vda',
      size: 21474836480,
      type: 'disk',
      pttype: null,
      fstype: null,
      label: null,
      partlabel: null,
      fsused: null,
      children: [
        { name: 'vda1', path: '/dev/vda1', size: 536870912, type: 'part', pttype: null, fstype: null, label: null, partlabel: null, fsused: null },
        { name: 'vda2', path: '/dev/vda2', size: 1048576, type: 'part', pttype: null, fstype: null, label: null, partlabel: null, fsused: null },
        { name: 'vda3', path: '/dev/vda3', size: 20935917568, type: 'part', pttype: null, fstype: null, label: null, partlabel: null, fsused: 125829120 },
      ],
    },
  ],
});

const PROBES = new Map<string, Record<string, string>>([
  ['/dev/vda', { PTTYPE: 'gpt' }],
  ['/dev/vda1', { TYPE: 'vfat', LABEL: 'ESP', PART_ENTRY_NAME: 'ESP', PART_ENTRY_NUMBER: '1' }],
  ['/dev/vda2', { PART_ENTRY_NAME: 'bios-boot', PART_ENTRY_NUMBER: '2' }],
  ['/dev/vda3', { TYPE: 'ext4', LABEL: 'root', PART_ENTRY_NAME: 'root' }],
]);

describe('what a disk holds', () => {
  it('says it in words from lsblk and the blkid probes', () => {
    const contents = parseDiskContents(LSBLK_NO_UDEV, PROBES);
    expect(describeContents(contents)).toEqual(['GPT: 3 partitions', "vda1: vfat 'ESP' 512 MiB", 'vda2: no filesystem (bios-boot) 1.00 MiB', "vda3: ext4 'root' 19.5 GiB (120 MiB used)"]);
    expect(contents.partitions.map((p) => p.number)).toEqual([1, 2, 3]);
  });

  it('takes what lsblk knows when udev told it', () => {
    const withUdev = LSBLK_NO_UDEV.replace('"pttype":null', '"pttype":"dos"');
    expect(describeContents(parseDiskContents(withUdev, PROBES))[0]).toBe('MBR: 3 partitions');
  });

  it('is empty for a blank disk, and names a filesystem on the whole disk', () => {
    const blank = JSON.stringify({ blockdevices: [{ name: 'vdb', path: '/dev/vdb', size: 1 << 30, type: 'disk', pttype: null, fstype: null }] });
    expect(describeContents(parseDiskContents(blank))).toEqual([]);
    expect(describeContents(parseDiskContents(blank, new Map([['/dev/vdb', { TYPE: 'xfs', LABEL: 'data' }]])))).toEqual(["xfs 'data' on the whole disk"]);
  });
});

describe('findWimFiles', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'imagepe-share-'));
    for (const f of ['a.wim', 'images/b.WIM', 'images/x/y/c.wim', 'images/x/y/z/too-deep.wim', 'logs/old.wim', '.hidden.wim', 'images/.partial.wim.tmp', 'notes.txt', 'images/d.swm']) {
      await mkdir(join(root, f, '..'), { recursive: true });
      await writeFile(join(root, f), '');
    }
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('finds WIMs three folders deep, leaving out logs/, hidden files and other files', async () => {
    expect(await findWimFiles(root)).toEqual(['a.wim', 'images/b.WIM', 'images/x/y/c.wim']);
  });
});
