import { parseLayout, resolveLayout as planLayout, type SfdiskTable } from '../../partition/index.js';
import { parseRecordedLayout, recordLayout } from './record-layout.js';

// As sfdisk --json and blkid --probe print them for a disk partition/ made: ESP, bios-boot, root.
const GPT: SfdiskTable = {
  label: 'gpt',
  id: '3B0C8E0A-0000-4000-8000-000000000001',
  device: '/dev/loop7',
  sectorsize: 512,
  partitions: [
    { node: '/dev/loop7p1', start: 2048, size: 131072, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: 'A1', name: 'ESP' },
    { node: '/dev/loop7p2', start: 133120, size: 2048, type: '21686148-6449-6E6F-744E-656564454649', uuid: 'A2', name: 'bios-boot' },
    { node: '/dev/loop7p3', start: 135168, size: 1091584, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', uuid: 'A3', name: 'root', attrs: 'LegacyBIOSBootable' },
  ],
};
const GPT_FS = new Map<number, Record<string, string>>([
  [1, { TYPE: 'vfat', LABEL: 'ESP', UUID: '1234-ABCD', PART_ENTRY_NAME: 'ESP' }],
  [2, {}],
  [3, { TYPE: 'ext4', LABEL: 'root', UUID: '0b3c...' }],
]);

describe('recordLayout', () => {
  it('records a GPT disk as a layout: names, types by name, MiB sizes, filesystems, labels, mounts, rest for the image', () => {
    const { recorded, notes } = recordLayout({ table: GPT, filesystems: GPT_FS, imagePartition: 3 });
    expect(notes).toEqual([]);
    expect(recorded).toEqual({
      version: 1,
      imagePartition: 'root',
      layout: {
        table: 'gpt',
        partitions: [
          { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', label: 'ESP', mount: '/boot/efi' },
          { name: 'bios-boot', size: '1MiB', type: 'bios-boot', format: 'none' },
          { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root', mount: '/', flags: ['bootable'] },
        ],
      },
      // Every name the reference's files may use for each partition, apart from the layout.
      volumes: [
        { partition: 'ESP', number: 1, sizeBytes: 64 * 1024 ** 2, fsType: 'vfat', uuid: '1234-ABCD', label: 'ESP', partuuid: 'A1', partlabel: 'ESP' },
        { partition: 'bios-boot', number: 2, sizeBytes: 1024 ** 2, partuuid: 'A2', partlabel: 'bios-boot' },
        { partition: 'root', number: 3, sizeBytes: 1091584 * 512, fsType: 'ext4', uuid: '0b3c...', label: 'root', partuuid: 'A3', partlabel: 'root' },
      ],
    });
    // It is a layout partition/ accepts, and it plans on a disk like the one it came from.
    const layout = parseLayout(recorded.layout);
    const p = planLayout(layout, { path: 'x.img', sizeBytes: 600 * 1024 ** 2, sectorSize: 512 });
    expect(p.partitions.map((x) => [x.name, x.sizeBytes])).toEqual([['ESP', 64 * 1024 ** 2], ['bios-boot', 1024 ** 2], ['root', expect.any(Number)]]);
  });

  it('gives the image partition the rest wherever it sits, keeps other sizes, in disk order, and never puts UUIDs in the layout', () => {
    const table: SfdiskTable = {
      ...GPT,
      partitions: [
        { node: '/dev/sda2', start: 4196352, size: 2097152, type: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', name: 'swap' },
        { node: '/dev/sda1', start: 2048, size: 4194304, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: '' },
      ],
    };
    const fs = new Map<number, Record<string, string>>([[1, { TYPE: 'xfs', UUID: 'u1' }], [2, { TYPE: 'swap', UUID: 'u2', LABEL: 'sw' }]]);
    const { recorded } = recordLayout({ table, filesystems: fs, imagePartition: 1 });
    expect(recorded.imagePartition).toBe('p1');
    expect(recorded.layout.partitions).toEqual([
      { name: 'p1', size: 'rest', type: 'linux', format: 'xfs', mount: '/' },
      { name: 'swap', size: '1024MiB', type: 'linux-swap', format: 'swap', label: 'sw', mount: 'swap' },
    ]);
    // A deploy makes new UUIDs from the layout; the reference's are kept apart, for mapping.
    expect(JSON.stringify(recorded.layout)).not.toMatch(/u1|u2/);
    expect(recorded.volumes?.map((v) => [v.partition, v.uuid])).toEqual([['p1', 'u1'], ['swap', 'u2']]);
  });

  it("records the system's other filesystems with their mount points and every filesystem's bytes in use", () => {
    // Debian's "separate /home" recipe with a separate /boot: ESP, /boot, root, /home, swap after them.
    const table: SfdiskTable = {
      label: 'gpt',
      sectorsize: 512,
      partitions: [
        { node: '/dev/vda1', start: 2048, size: 131072, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', name: 'ESP' },
        { node: '/dev/vda2', start: 133120, size: 524288, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'boot' },
        { node: '/dev/vda3', start: 657408, size: 4194304, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'root' },
        { node: '/dev/vda4', start: 4851712, size: 1048576, type: '933AC7E1-2EB4-4F13-B844-0E14E2AEF915', name: 'home' },
        { node: '/dev/vda5', start: 5900288, size: 262144, type: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', name: 'swap' },
      ],
    };
    const fs = new Map<number, Record<string, string>>([[1, { TYPE: 'vfat' }], [2, { TYPE: 'ext2' }], [3, { TYPE: 'ext4' }], [4, { TYPE: 'xfs' }], [5, { TYPE: 'swap' }]]);
    const { recorded, notes } = recordLayout({ table, filesystems: fs, imagePartition: 3, mounts: new Map([[2, '/boot'], [4, '/home']]), usedBytes: new Map([[2, 60e6], [3, 700e6], [4, 5e6]]) });
    expect(recorded.layout.partitions.map((p) => [p.name, p.size, p.format, p.mount])).toEqual([
      ['ESP', '64MiB', 'vfat', '/boot/efi'],
      ['boot', '256MiB', 'ext4', '/boot'],
      ['root', 'rest', 'ext4', '/'],
      ['home', '512MiB', 'xfs', '/home'],
      ['swap', '128MiB', 'swap', 'swap'],
    ]);
    expect(notes).toEqual(['boot holds ext2, which layouts cannot make; recorded as ext4']);
    expect(recorded.volumes?.map((v) => [v.partition, v.usedBytes])).toEqual([['ESP', undefined], ['boot', 60e6], ['root', 700e6], ['home', 5e6], ['swap', undefined]]);
  });

  it('records an MBR disk with type bytes, the active flag, and without the extended partition', () => {
    const table: SfdiskTable = {
      label: 'dos',
      id: '0x1234abcd',
      sectorsize: 512,
      partitions: [
        { node: '/dev/sdb1', start: 2048, size: 1024000, type: '7', bootable: true },
        { node: '/dev/sdb2', start: 1026048, size: 2000000, type: 'f' },
        { node: '/dev/sdb5', start: 1028096, size: 204800, type: '27' },
        { node: '/dev/sdb6', start: 1234944, size: 409600, type: 'a5' },
      ],
    };
    const fs = new Map<number, Record<string, string>>([[1, { TYPE: 'ntfs', LABEL: 'Windows' }], [5, { TYPE: 'ntfs', LABEL: 'Recovery' }], [6, { TYPE: 'ufs' }]]);
    const { recorded, notes } = recordLayout({ table, filesystems: fs, imagePartition: 1 });
    expect(recorded.layout).toEqual({
      table: 'mbr',
      partitions: [
        { name: 'p1', size: 'rest', type: 'windows-basic', format: 'ntfs', label: 'Windows', flags: ['bootable'] },
        { name: 'p5', size: '100MiB', type: 'windows-recovery', format: 'ntfs', label: 'Recovery' },
        { name: 'p6', size: '200MiB', type: '0xa5', format: 'none' },
      ],
    });
    // NTFS images have no mount point: they are applied to the volume itself.
    expect(recorded.imagePartition).toBe('p1');
    expect(notes).toEqual(['p6 holds ufs, which layouts cannot make; recorded unformatted']);
  });

  it('keeps unknown GPT types as GUIDs, makes duplicate names unique, and says what it rounded or converted', () => {
    const table: SfdiskTable = {
      label: 'gpt',
      sectorsize: 4096,
      partitions: [
        { node: '/dev/nvme0n1p1', start: 256, size: 300, type: 'e3c9e316-0b5c-4db8-817d-f92df00215ae', name: 'data' },
        { node: '/dev/nvme0n1p2', start: 768, size: 1000, type: '6A898CC3-1DD2-11B2-99A6-080020736631', name: 'data' },
        { node: '/dev/nvme0n1p3', start: 2048, size: 100000, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'root' },
      ],
    };
    const fs = new Map<number, Record<string, string>>([[3, { TYPE: 'f2fs', LABEL: 'r' }]]);
    const { recorded, notes } = recordLayout({ table, filesystems: fs, imagePartition: 3 });
    expect(recorded.layout.partitions.map((p) => [p.name, p.type, p.size, p.format])).toEqual([
      ['data', 'msr', '1MiB', 'none'],
      ['p2', '6A898CC3-1DD2-11B2-99A6-080020736631', '4MiB', 'none'],
      ['root', 'linux', 'rest', 'ext4'],
    ]);
    expect(notes).toEqual(['data is 1.17 MiB; recorded as 1 MiB', 'p2 is 3.91 MiB; recorded as 4 MiB', 'root holds f2fs, which layouts cannot make; recorded as ext4']);
  });

  it('refuses a table it cannot record, and a partition that is not in it', () => {
    expect(() => recordLayout({ table: { label: 'sun' }, filesystems: new Map(), imagePartition: 1 })).toThrow(/sun partition table/);
    expect(() => recordLayout({ table: GPT, filesystems: GPT_FS, imagePartition: 9 })).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});

describe('parseRecordedLayout', () => {
  const good = JSON.stringify(recordLayout({ table: GPT, filesystems: GPT_FS, imagePartition: 3 }).recorded);

  it('reads back what was recorded, as a validated layout with defaults', () => {
    const r = parseRecordedLayout(good, 'image 1');
    expect(r.imagePartition).toBe('root');
    expect(r.layout.wipe).toBe(false);
    expect(r.layout.partitions[1]).toMatchObject({ name: 'bios-boot', format: 'none', flags: [] });
  });

  it('explains what is wrong with a record it cannot use', () => {
    expect(() => parseRecordedLayout('{', 'image 2 "x"')).toThrow(/image 2 "x" records a layout that is not JSON/);
    expect(() => parseRecordedLayout(JSON.stringify({ version: 2, layout: {}, imagePartition: 'a' }), 'image 1')).toThrow(/image 1 records a layout imagepe cannot use:\n {2}- version: /);
    const wrongPart = JSON.stringify({ ...JSON.parse(good), imagePartition: 'home' });
    expect(() => parseRecordedLayout(wrongPart, 'image 1')).toThrow(/partition home, which its layout does not have/);
  });
});

describe('recordLayout with LVM', () => {
  // Debian's installer's LVM recipe with a separate /boot, and swap after the group.
  const table: SfdiskTable = {
    label: 'gpt',
    id: '3B0C8E0A-0000-4000-8000-000000000002',
    device: '/dev/vda',
    sectorsize: 512,
    partitions: [
      { node: '/dev/vda1', start: 2048, size: 1048576, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: 'B1', name: 'ESP' },
      { node: '/dev/vda2', start: 1050624, size: 2048, type: '21686148-6449-6E6F-744E-656564454649', uuid: 'B2', name: 'bios' },
      { node: '/dev/vda3', start: 1052672, size: 1048576, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', uuid: 'B3', name: 'boot' },
      { node: '/dev/vda4', start: 2101248, size: 12582912, type: 'E6D6D379-F507-44C2-A23C-238F2A3DF928', uuid: 'B4', name: 'pv' },
      { node: '/dev/vda5', start: 14684160, size: 2097152, type: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', uuid: 'B5', name: 'swap' },
    ],
  };
  const ROOT = 100_000;
  const HOME = 100_001;
  const fs = new Map<number, Record<string, string>>([
    [1, { TYPE: 'vfat', UUID: 'AAAA-BBBB' }],
    [2, {}],
    [3, { TYPE: 'ext4', UUID: 'boot-uuid' }],
    [4, { TYPE: 'LVM2_member', UUID: 'pv-uuid' }],
    [5, { TYPE: 'swap', UUID: 'swap-uuid' }],
    [ROOT, { TYPE: 'ext4', UUID: 'root-uuid', LABEL: 'system' }],
    [HOME, { TYPE: 'ext4', UUID: 'home-uuid' }],
  ]);

  it('records the volume group with its logical volumes: the root takes the rest of it, its physical volume the rest of the disk', () => {
    const { recorded, notes } = recordLayout({
      table,
      filesystems: fs,
      imagePartition: ROOT,
      mounts: new Map([[3, '/boot'], [HOME, '/home']]),
      usedBytes: new Map([[ROOT, 700 * 1024 ** 2], [HOME, 5 * 1024 ** 2], [3, 60 * 1024 ** 2]]),
      volumeGroups: [{ name: 'vg0', extentBytes: 4 * 1024 ** 2, physicalVolumes: [4], logicalVolumes: [{ key: ROOT, name: 'root', sizeBytes: 4 * 1024 ** 3 }, { key: HOME, name: 'home', sizeBytes: 1020 * 1024 ** 2 }] }],
    });
    expect(notes).toEqual([]);
    expect(recorded.imagePartition).toBe('vg0/root');
    expect(recorded.layout.partitions.map((p) => [p.name, p.size, p.type, p.format, p.mount])).toEqual([
      ['ESP', '512MiB', 'esp', 'vfat', '/boot/efi'],
      ['bios', '1MiB', 'bios-boot', 'none', undefined],
      ['boot', '512MiB', 'linux', 'ext4', '/boot'],
      ['pv', 'rest', 'lvm', 'lvm', undefined],
      ['swap', '1024MiB', 'linux-swap', 'swap', 'swap'],
    ]);
    expect(recorded.layout.volumeGroups).toEqual([
      {
        name: 'vg0',
        physicalVolumes: ['pv'],
        logicalVolumes: [
          { name: 'root', size: 'rest', format: 'ext4', label: 'system', mount: '/' },
          { name: 'home', size: '1020MiB', format: 'ext4', mount: '/home' },
        ],
      },
    ]);
    expect(recorded.volumes!.filter((v) => v.lv)).toEqual([
      { partition: 'vg0/root', number: 0, lv: 'vg0/root', sizeBytes: 4 * 1024 ** 3, fsType: 'ext4', uuid: 'root-uuid', label: 'system', usedBytes: 700 * 1024 ** 2 },
      { partition: 'vg0/home', number: 0, lv: 'vg0/home', sizeBytes: 1020 * 1024 ** 2, fsType: 'ext4', uuid: 'home-uuid', usedBytes: 5 * 1024 ** 2 },
    ]);
    // Read back as a deploy does, and planned on the 8 GiB disk it came from.
    const back = parseRecordedLayout(JSON.stringify(recorded), 'the image');
    expect(back.imagePartition).toBe('vg0/root');
    const planned = planLayout(back.layout, { path: 'x', sizeBytes: 8 * 1024 ** 3, sectorSize: 512 });
    expect(planned.volumeGroups[0]!.logicalVolumes.map((lv) => [lv.name, lv.mount])).toEqual([['vg0/root', '/'], ['vg0/home', '/home']]);
  });
});
