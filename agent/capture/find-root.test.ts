import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test-support/tree.js';
import { chooseSource, describeCandidate, existsInside, readOnlyProbeOptions, type SourceCandidate } from './find-root.js';

const MiB = 1024 ** 2;
const DISK: SourceCandidate[] = [
  { number: 1, node: '/dev/vda1', sizeBytes: 64 * MiB, name: 'ESP', fsType: 'vfat', label: 'ESP' },
  { number: 2, node: '/dev/vda2', sizeBytes: MiB, name: 'bios-boot' },
  { number: 3, node: '/dev/vda3', sizeBytes: 900 * MiB, name: 'root', fsType: 'ext4', label: 'rootfs' },
  { number: 4, node: '/dev/vda4', sizeBytes: 100 * MiB, fsType: 'ext4', label: 'data' },
];
const roots = (...numbers: number[]) => async (c: SourceCandidate) => numbers.includes(c.number);

describe('chooseSource', () => {
  it('finds the one partition holding an operating system', async () => {
    expect((await chooseSource(DISK, 'root', '/dev/vda', roots(3))).number).toBe(3);
  });

  it('only looks at filesystems a root can be on', async () => {
    const looked: number[] = [];
    await chooseSource(DISK, 'root', '/dev/vda', async (c) => (looked.push(c.number), c.number === 3));
    expect(looked).toEqual([3, 4]);
  });

  it('names what the disk holds when no partition or several hold an OS', async () => {
    await expect(chooseSource(DISK, 'root', '/dev/vda', roots())).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('no partition of /dev/vda holds an operating system'),
    });
    await expect(chooseSource(DISK, 'root', '/dev/vda', roots())).rejects.toThrow('/dev/vda3 (partition 3 "root"): ext4 "rootfs", 900 MiB');
    await expect(chooseSource(DISK, 'root', '/dev/vda', roots(3, 4))).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^2 partitions of \/dev\/vda hold an operating system:\n {2}- \/dev\/vda3.*\n {2}- \/dev\/vda4/) });
  });

  it('chooses by filesystem label or by number', async () => {
    expect((await chooseSource(DISK, { label: 'data' }, '/dev/vda', roots())).number).toBe(4);
    expect((await chooseSource(DISK, { number: 3 }, '/dev/vda', roots())).label).toBe('rootfs');
    await expect(chooseSource(DISK, { label: 'home' }, '/dev/vda', roots())).rejects.toThrow(/no partition of \/dev\/vda has the filesystem label "home"; it has:\n {2}- \/dev\/vda1/);
    await expect(chooseSource(DISK, { number: 7 }, '/dev/vda', roots())).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a partition that holds nothing it can capture', async () => {
    await expect(chooseSource(DISK, { number: 2 }, '/dev/vda', roots())).rejects.toThrow(/\/dev\/vda2 \(partition 2 "bios-boot"\): no filesystem, 1\.00 MiB cannot be captured/);
    await expect(chooseSource(DISK, { label: 'ESP' }, '/dev/vda', roots())).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('describes partitions in one line', () => {
    expect(describeCandidate(DISK[3]!)).toBe('/dev/vda4 (partition 4): ext4 "data", 100 MiB');
  });

  it('never lets a probe replay a journal', () => {
    expect(readOnlyProbeOptions('ext4')).toBe('ro,noload');
    expect(readOnlyProbeOptions('xfs')).toBe('ro,norecovery');
    expect(readOnlyProbeOptions('btrfs')).toBe('ro');
  });
});

describe('existsInside', () => {
  it('follows the tree\'s own links, absolute ones into the tree, never into this machine', async () => {
    const root = await tempDir('exists-inside');
    try {
      await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
      await mkdir(join(root, 'usr/sbin'), { recursive: true });
      await mkdir(join(root, 'etc'), { recursive: true });
      await writeFile(join(root, 'usr/lib/os-release'), 'ID=test\n');
      await symlink('../usr/lib/os-release', join(root, 'etc/os-release'));
      await symlink('/usr/sbin', join(root, 'sbin'));
      await symlink('../lib/systemd/systemd', join(root, 'usr/sbin/init'));
      await symlink('/bin', join(root, 'bin'));
      expect(await existsInside(root, 'etc/os-release')).toBe(true);
      expect(await existsInside(root, 'sbin/init')).toBe(true);
      // /bin/sh exists on this machine, not in the tree.
      expect(await existsInside(root, 'bin/sh')).toBe(false);
      expect(await existsInside(root, 'usr/lib/missing')).toBe(false);
    } finally {
      await removeDir(root);
    }
  });
});
