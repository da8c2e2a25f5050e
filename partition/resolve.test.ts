import fc from 'fast-check';
import { GiB, MiB, ImagepeError } from '../core/index.js';
import { LayoutError, fat32MinimumBytes, parseLayout, resolveLayout, renderLayoutTable, renderSfdiskScript, type Disk, type LayoutInput, type ResolvedLayout } from './index.js';

const TiB = 1024 * GiB;
const disk = (sizeBytes: number, sectorSize = 512): Disk => ({ path: '/dev/test', sizeBytes, sectorSize });
const planOf = (layout: LayoutInput, d: Disk = disk(8 * GiB)): ResolvedLayout => resolveLayout(parseLayout(layout), d);

function problemsOf(layout: LayoutInput, d: Disk = disk(8 * GiB)): string[] {
  try {
    planOf(layout, d);
  } catch (e) {
    expect(e).toBeInstanceOf(LayoutError);
    expect((e as LayoutError).code).toBe('LAYOUT_INVALID');
    return (e as LayoutError).problems;
  }
  throw new Error('expected the layout to be refused');
}

const uefiBios: LayoutInput = {
  table: 'gpt',
  firmware: 'both',
  partitions: [
    { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat' },
    { name: 'bios', size: '1MiB', type: 'bios-boot' },
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4' },
  ],
};

describe('plan: sectors', () => {
  it.each<{ what: string; layout: LayoutInput; disk: Disk; expected: { start: number; size: number }[] }>([
    {
      what: 'GPT on 512-byte sectors starts at 1 MiB and leaves room for the backup header',
      layout: uefiBios,
      disk: disk(8 * GiB),
      expected: [
        { start: 2048, size: 1048576 },
        { start: 1050624, size: 2048 },
        // rest: everything to the last usable sector (total - 34), rounded down to whole MiB
        { start: 1052672, size: Math.floor((16777216 - 34 - 1052672 + 1) / 2048) * 2048 },
      ],
    },
    {
      what: 'GPT on 4096-byte sectors counts 256 sectors per MiB',
      layout: { table: 'gpt', partitions: [{ name: 'ESP', size: '260MiB', type: 'esp', format: 'vfat' }, { name: 'root', size: 'rest', type: 'linux' }] },
      disk: disk(4 * GiB, 4096),
      expected: [
        { start: 256, size: 66560 },
        { start: 66816, size: Math.floor((1048576 - 6 - 66816 + 1) / 256) * 256 },
      ],
    },
    {
      what: 'a size that is not whole sectors is rounded up, and the next partition still starts on a MiB',
      layout: { table: 'gpt', partitions: [{ name: 'a', size: 1000, type: 'linux' }, { name: 'b', size: '1MiB', type: 'linux' }] },
      disk: disk(GiB),
      expected: [
        { start: 2048, size: 2 },
        { start: 4096, size: 2048 },
      ],
    },
    {
      what: 'percentages are of the whole disk, in whole MiB',
      layout: { table: 'mbr', firmware: 'bios', partitions: [{ name: 'a', size: '30%', type: 'linux', flags: ['bootable'] }, { name: 'b', size: '50%', type: 'linux' }] },
      disk: disk(10 * GiB),
      expected: [
        { start: 2048, size: 3072 * 2048 },
        { start: 2048 + 3072 * 2048, size: 5120 * 2048 },
      ],
    },
    {
      what: 'rest in the middle takes what the partitions after it leave',
      layout: { table: 'gpt', partitions: [{ name: 'a', size: '1GiB', type: 'linux' }, { name: 'b', size: 'rest', type: 'linux' }, { name: 'c', size: '1GiB', type: 'linux-swap' }] },
      disk: disk(4 * GiB),
      expected: [
        { start: 2048, size: 2097152 },
        // 4 GiB less 2 GiB, the first MiB, and the last MiB that holds the backup GPT
        { start: 2099200, size: 4194304 - 4096 },
        { start: 6289408, size: 2097152 },
      ],
    },
  ])('$what', ({ layout, disk: d, expected }) => {
    const p = planOf(layout, d);
    expect(p.partitions.map(({ start, size }) => ({ start, size }))).toEqual(expected);
  });

  it('puts the fifth and later MBR partitions in an extended partition, each logical 1 MiB after its EBR', () => {
    const p = planOf(
      {
        table: 'mbr',
        partitions: [
          { name: 'esp', size: '100MiB', type: 'esp', format: 'vfat' },
          { name: 'a', size: '1GiB', type: 'linux' },
          { name: 'b', size: '1GiB', type: 'linux' },
          { name: 'c', size: '1GiB', type: 'linux' },
          { name: 'd', size: '1GiB', type: 'linux' },
          { name: 'e', size: 'rest', type: 'linux' },
        ],
      },
      disk(8 * GiB),
    );
    expect(p.partitions.map((x) => [x.number, x.kind])).toEqual([
      [1, 'primary'],
      [2, 'primary'],
      [3, 'primary'],
      [5, 'logical'],
      [6, 'logical'],
      [7, 'logical'],
    ]);
    const ext = p.extended!;
    const logicals = p.partitions.filter((x) => x.kind === 'logical');
    expect(ext.number).toBe(4);
    expect(logicals[0]!.start).toBe(ext.start + 2048);
    expect(logicals[1]!.start).toBe(logicals[0]!.start + logicals[0]!.size + 2048);
    expect(ext.start + ext.size).toBe(logicals[2]!.start + logicals[2]!.size);
    expect(ext.start + ext.size).toBeLessThanOrEqual(p.totalSectors);
  });

  it('keeps four MBR partitions primary, with no extended partition', () => {
    const p = planOf({ table: 'mbr', firmware: 'bios', partitions: ['a', 'b', 'c', 'd'].map((name) => ({ name, size: '1GiB', type: 'linux' })) });
    expect(p.extended).toBeUndefined();
    expect(p.partitions.map((x) => x.number)).toEqual([1, 2, 3, 4]);
  });

  it('maps type names to GUIDs on GPT and type bytes on MBR, and passes raw ones through', () => {
    const gpt = planOf({
      table: 'gpt',
      partitions: [
        { name: 'esp', size: '100MiB', type: 'esp', format: 'vfat' },
        { name: 'msr', size: '16MiB', type: 'msr' },
        { name: 'w', size: '1GiB', type: 'windows-basic' },
        { name: 'r', size: '1GiB', type: 'windows-recovery' },
        { name: 'h', size: '1GiB', type: 'linux-home' },
        { name: 'raw', size: '1GiB', type: '6a898cc3-1dd2-11b2-99a6-080020736631' },
      ],
    });
    expect(gpt.partitions.map((x) => x.typeCode)).toEqual([
      'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
      'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
      'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
      'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
      '933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
      '6A898CC3-1DD2-11B2-99A6-080020736631',
    ]);
    const mbr = planOf({
      table: 'mbr',
      partitions: [
        { name: 'esp', size: '100MiB', type: 'esp', format: 'vfat' },
        { name: 'w', size: '1GiB', type: 'windows-basic' },
        { name: 's', size: '1GiB', type: 'linux-swap' },
        { name: 'raw', size: '1GiB', type: '0x8E' },
      ],
    });
    expect(mbr.partitions.map((x) => x.typeCode)).toEqual(['ef', '7', '82', '8e']);
  });
});

describe('plan: what it refuses, and why', () => {
  it.each<{ what: string; layout: LayoutInput; disk?: Disk; problem: RegExp }>([
    {
      what: 'a layout that does not fit, saying by how much',
      layout: { table: 'gpt', partitions: [{ name: 'a', size: '6GiB', type: 'linux' }, { name: 'b', size: '3GiB', type: 'linux' }] },
      problem: /does not fit.*9\.00 GiB.*too large/,
    },
    {
      what: 'two rest partitions',
      layout: { table: 'gpt', partitions: [{ name: 'a', size: 'rest', type: 'linux' }, { name: 'b', size: 'rest', type: 'linux' }] },
      problem: /only one partition may have size "rest".*\(a\) and partitions\[1\] \(b\)/,
    },
    {
      what: 'an ESP smaller than the FAT32 minimum on 512-byte sectors',
      layout: { table: 'gpt', partitions: [{ name: 'ESP', size: '32MiB', type: 'esp', format: 'vfat' }] },
      problem: /ESP of 32\.0 MiB, smaller than the FAT32 minimum of 32\.\d MiB on 512-byte sectors/,
    },
    {
      what: 'an ESP smaller than the FAT32 minimum on 4Kn disks',
      layout: { table: 'gpt', partitions: [{ name: 'ESP', size: '100MiB', type: 'esp', format: 'vfat' }] },
      disk: disk(8 * GiB, 4096),
      problem: /FAT32 minimum of 257 MiB on 4096-byte sectors/,
    },
    {
      what: 'a GPT disk booted by BIOS without a bios-boot partition',
      layout: { table: 'gpt', firmware: 'bios', partitions: [{ name: 'root', size: 'rest', type: 'linux' }] },
      problem: /boots by BIOS.*no bios-boot partition/,
    },
    {
      what: 'an MBR disk over 2 TiB',
      layout: { table: 'mbr', partitions: [{ name: 'root', size: '1TiB', type: 'linux' }] },
      disk: disk(3 * TiB),
      problem: /MBR partition table addresses only the first 2\.00 TiB of this 3\.00 TiB disk; use table: gpt/,
    },
    {
      what: 'subvolumes on a filesystem that is not btrfs',
      layout: { table: 'gpt', partitions: [{ name: 'r', size: '1GiB', type: 'linux', format: 'ext4', subvolumes: [{ name: '@' }] }] },
      problem: /partitions\[0\] \(r\) has subvolumes but is formatted ext4; subvolumes belong to btrfs/,
    },
    {
      what: 'a default subvolume that is not listed',
      layout: { table: 'gpt', partitions: [{ name: 'r', size: '1GiB', type: 'linux', format: 'btrfs', subvolumes: [{ name: '@', mount: '/' }], defaultSubvolume: '@root' }] },
      problem: /has defaultSubvolume @root, which is not one of its subvolumes \(@\)/,
    },
    {
      what: 'a nested subvolume before its parent',
      layout: { table: 'gpt', partitions: [{ name: 'r', size: '1GiB', type: 'linux', format: 'btrfs', subvolumes: [{ name: '@/srv' }, { name: '@', mount: '/' }] }] },
      problem: /lists subvolume @\/srv before its parent @/,
    },
    {
      what: 'a partition mount that none of its subvolumes has',
      layout: { table: 'gpt', partitions: [{ name: 'r', size: '1GiB', type: 'linux', format: 'btrfs', mount: '/', subvolumes: [{ name: '@home', mount: '/home' }] }] },
      problem: /has mount "\/" and subvolumes; expected mount to be where one of the subvolumes is mounted \(\/home\)/,
    },
    {
      what: 'a subvolume mounted where another partition is',
      layout: { table: 'gpt', partitions: [{ name: 'r', size: '1GiB', type: 'linux', format: 'btrfs', mount: '/', subvolumes: [{ name: '@', mount: '/' }, { name: '@home', mount: '/home' }] }, { name: 'h', size: '1GiB', type: 'linux', format: 'ext4', mount: '/home' }] },
      problem: /partitions\[0\] \(r\) and partitions\[1\] \(h\) are both mounted at \/home/,
    },
    {
      what: 'a btrfs partition smaller than mkfs.btrfs makes',
      layout: { table: 'gpt', partitions: [{ name: 'r', size: '100MiB', type: 'linux', format: 'btrfs' }] },
      problem: /is 100 MiB, smaller than the 109 MiB btrfs needs/,
    },
    {
      what: 'a GPT-only type on MBR',
      layout: { table: 'mbr', partitions: [{ name: 'msr', size: '16MiB', type: 'msr' }] },
      problem: /type msr, which exists only on GPT/,
    },
    {
      what: 'an MBR type byte on GPT',
      layout: { table: 'gpt', partitions: [{ name: 'x', size: '16MiB', type: '83' }] },
      problem: /MBR type byte \(83\) but the table is gpt/,
    },
    {
      what: 'a GPT type GUID on MBR',
      layout: { table: 'mbr', partitions: [{ name: 'x', size: '16MiB', type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' }] },
      problem: /GPT type GUID .* but the table is mbr/,
    },
    {
      what: 'a label longer than the filesystem allows',
      layout: { table: 'gpt', partitions: [{ name: 'ESP', size: '100MiB', type: 'esp', format: 'vfat', label: 'TWELVE_CHARS' }] },
      problem: /longer than the 11 bytes vfat allows/,
    },
    {
      what: 'a filesystem UUID in the wrong form',
      layout: { table: 'gpt', partitions: [{ name: 'w', size: '1GiB', type: 'windows-basic', format: 'ntfs', uuid: '1234-ABCD' }] },
      problem: /ntfs expects a serial number of 16 hex digits/,
    },
    {
      what: 'xfs smaller than it can be made',
      layout: { table: 'gpt', partitions: [{ name: 'x', size: '100MiB', type: 'linux', format: 'xfs' }] },
      problem: /smaller than the 300 MiB xfs needs/,
    },
    {
      what: 'a formatted bios-boot partition',
      layout: { table: 'gpt', partitions: [{ name: 'b', size: '1MiB', type: 'bios-boot', format: 'ext4' }] },
      problem: /holds no filesystem; use format: none/,
    },
    {
      what: 'a partuuid on MBR',
      layout: { table: 'mbr', partitions: [{ name: 'r', size: '1GiB', type: 'linux', partuuid: '6E1B7C1C-6F1E-4E4B-8F3C-0A1B2C3D4E5F' }] },
      problem: /partuuid, which only GPT stores/,
    },
    {
      what: 'two partitions mounted at the same place',
      layout: { table: 'gpt', partitions: [{ name: 'a', size: '1GiB', type: 'linux', format: 'ext4', mount: '/' }, { name: 'b', size: '1GiB', type: 'linux', format: 'ext4', mount: '/' }] },
      problem: /both mounted at \//,
    },
    {
      what: 'a rest partition with nothing left for it',
      layout: { table: 'gpt', partitions: [{ name: 'a', size: '1022MiB', type: 'linux' }, { name: 'b', size: 'rest', type: 'linux' }] },
      disk: disk(GiB),
      problem: /size "rest" but less than 1 MiB is left/,
    },
  ])('refuses $what', ({ layout, disk: d, problem }) => {
    expect(problemsOf(layout, d)).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  it('lists every problem at once, not only the first', () => {
    const problems = problemsOf({
      table: 'gpt',
      firmware: 'bios',
      partitions: [
        { name: 'ESP', size: '8MiB', type: 'esp', format: 'vfat' },
        { name: 'a', size: 'rest', type: 'linux' },
        { name: 'b', size: 'rest', type: 'linux' },
      ],
    });
    expect(problems).toHaveLength(3);
  });

  it('computes the FAT32 minimum from the sector size', () => {
    expect(fat32MinimumBytes(512)).toBe((65525 + 32 + 2 * 512) * 512);
    expect(fat32MinimumBytes(4096)).toBe((65525 + 32 + 2 * 64) * 4096);
  });

  it('accepts an MBR layout on a 2 TiB disk, the largest MBR can address', () => {
    expect(() => planOf({ table: 'mbr', partitions: [{ name: 'r', size: 'rest', type: 'linux' }] }, disk(2 * TiB))).not.toThrow();
  });

  it('rejects sector sizes other than 512 and 4096', () => {
    expect(() => planOf(uefiBios, disk(8 * GiB, 2048))).toThrow(ImagepeError);
  });

  it('warns, without refusing, when a UEFI layout has no ESP', () => {
    expect(planOf({ table: 'gpt', partitions: [{ name: 'r', size: 'rest', type: 'linux' }] }).warnings).toEqual([expect.stringMatching(/no ESP/)]);
  });
});

describe('plan: btrfs subvolumes', () => {
  it('carries the subvolumes and the default into the resolved layout; the partition stands for its root subvolume', () => {
    const p = planOf({ table: 'gpt', partitions: [{ name: 'sys', size: 'rest', type: 'linux', format: 'btrfs', mount: '/', subvolumes: [{ name: '@', mount: '/' }, { name: '@home', mount: '/home' }, { name: '@/var/lib/machines' }], defaultSubvolume: '@' }] });
    expect(p.partitions[0]).toMatchObject({ format: 'btrfs', mount: '/', defaultSubvolume: '@', subvolumes: [{ name: '@', mount: '/' }, { name: '@home', mount: '/home' }, { name: '@/var/lib/machines' }] });
  });

  it('refuses subvolume names that leave the filesystem', () => {
    for (const name of ['/@', '@/../x', '.', '@//home']) {
      expect(() => parseLayout({ table: 'gpt', partitions: [{ name: 'r', size: '1GiB', type: 'linux', format: 'btrfs', subvolumes: [{ name }] }] })).toThrow(/subvolumes\[0\]\.name: expected a relative subvolume path/);
    }
  });
});

describe('rendering', () => {
  it('renders the sfdisk script with exact sectors, names, PARTUUIDs and attributes', () => {
    const p = planOf({
      table: 'gpt',
      firmware: 'both',
      id: '5a0c3b8e-2d6f-4e43-9d1b-7a3c11d0e001',
      partitions: [
        { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat' },
        { name: 'bios', size: '1MiB', type: 'bios-boot' },
        { name: 'root', size: 'rest', type: 'linux', format: 'ext4', partuuid: '6e1b7c1c-6f1e-4e4b-8f3c-0a1b2c3d4e5f', flags: ['bootable'] },
      ],
    });
    expect(renderSfdiskScript(p)).toBe(
      [
        'label: gpt',
        'label-id: 5A0C3B8E-2D6F-4E43-9D1B-7A3C11D0E001',
        'unit: sectors',
        'sector-size: 512',
        'first-lba: 34',
        'last-lba: 16777182',
        '',
        'start=2048, size=1048576, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"',
        'start=1050624, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="bios"',
        `start=1052672, size=${p.partitions[2]!.size}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root", uuid=6E1B7C1C-6F1E-4E4B-8F3C-0A1B2C3D4E5F, attrs="LegacyBIOSBootable"`,
        '',
      ].join('\n'),
    );
  });

  it('renders the MBR script with the extended partition before its logicals', () => {
    const p = planOf({
      table: 'mbr',
      firmware: 'bios',
      partitions: ['a', 'b', 'c', 'd', 'e'].map((name, i) => ({ name, size: '1GiB', type: 'linux', flags: i === 0 ? (['bootable'] as const) : [] })) as LayoutInput['partitions'],
    });
    const lines = renderSfdiskScript(p).trim().split('\n');
    expect(lines[0]).toBe('label: dos');
    expect(lines.slice(-6)).toEqual([
      'start=2048, size=2097152, type=83, bootable',
      'start=2099200, size=2097152, type=83',
      'start=4196352, size=2097152, type=83',
      `start=6293504, size=${2 * 2048 + 2 * 2097152}, type=5`,
      'start=6295552, size=2097152, type=83',
      'start=8394752, size=2097152, type=83',
    ]);
  });

  it('renders a human table with one row per partition', () => {
    const table = renderLayoutTable(planOf(uefiBios));
    expect(table).toMatch(/^\/dev\/test: 8\.00 GiB, 16777216 sectors of 512 bytes, GPT\n/);
    expect(table).toMatch(/\n1 +ESP +2048 +1050623 +1048576 +512 MiB +esp +vfat/);
    expect(table.trim().split('\n')).toHaveLength(5);
  });
});

describe('plan: properties', () => {
  const typeFor = (table: 'gpt' | 'mbr') => (table === 'gpt' ? 'linux' : 'linux');
  const layoutArb = fc
    .record({
      table: fc.constantFrom('gpt' as const, 'mbr' as const),
      sectorSize: fc.constantFrom(512, 4096),
      diskMiB: fc.integer({ min: 64, max: 4 * 1024 * 1024 }),
      extraBytes: fc.integer({ min: 0, max: MiB - 1 }),
      sizes: fc.array(
        fc.oneof(
          fc.integer({ min: 1, max: 2048 }).map((n) => `${n}MiB`),
          fc.integer({ min: 1, max: 10_000_000 }).map((n) => n),
          fc.integer({ min: 1, max: 30 }).map((n) => `${n}%`),
        ),
        { minLength: 1, maxLength: 9 },
      ),
      restAt: fc.option(fc.nat(), { nil: undefined }),
    })
    .map(({ table, sectorSize, diskMiB, extraBytes, sizes, restAt }) => {
      const partitions = sizes.map((size, i) => ({ name: `p${i}`, size: restAt !== undefined && restAt % sizes.length === i ? 'rest' : size, type: typeFor(table) }));
      const sizeBytes = Math.floor((diskMiB * MiB + extraBytes) / sectorSize) * sectorSize;
      return { layout: { table, partitions } as LayoutInput, disk: disk(sizeBytes, sectorSize) };
    });

  it('random valid layouts never overlap, stay aligned and fit the disk; invalid ones are refused with reasons', () => {
    fc.assert(
      fc.property(layoutArb, ({ layout, disk: d }) => {
        let p: ResolvedLayout;
        try {
          p = planOf(layout, d);
        } catch (e) {
          // The only way a layout of plain sizes fails is by not fitting.
          expect(e).toBeInstanceOf(LayoutError);
          expect((e as LayoutError).problems.every((x) => /does not fit|less than 1 MiB|addresses only/.test(x))).toBe(true);
          return;
        }
        const align = MiB / d.sectorSize;
        const sorted = [...p.partitions].sort((a, b) => a.start - b.start);
        expect(sorted.map((x) => x.name)).toEqual(p.partitions.map((x) => x.name));
        for (const [i, x] of sorted.entries()) {
          expect(x.size).toBeGreaterThan(0);
          expect(x.start % align).toBe(0);
          expect(x.start).toBeGreaterThanOrEqual(p.firstUsableSector);
          expect(x.start + x.size - 1).toBeLessThanOrEqual(p.lastUsableSector);
          const next = sorted[i + 1];
          if (next) expect(x.start + x.size).toBeLessThanOrEqual(next.start - (next.kind === 'logical' ? 1 : 0));
        }
        if (p.table === 'gpt') expect(p.lastUsableSector).toBe(p.totalSectors - 1 - 1 - 16384 / d.sectorSize);
        if (p.table === 'mbr') {
          expect(p.partitions.filter((x) => x.kind === 'primary').length + (p.extended ? 1 : 0)).toBeLessThanOrEqual(4);
          expect(p.lastUsableSector).toBeLessThan(2 ** 32);
          if (p.extended) {
            for (const x of p.partitions.filter((y) => y.kind === 'logical')) {
              expect(x.start).toBeGreaterThan(p.extended.start);
              expect(x.start + x.size).toBeLessThanOrEqual(p.extended.start + p.extended.size);
            }
            expect(p.extended.start % align).toBe(0);
          }
        }
        const rest = layout.partitions.findIndex((x) => x.size === 'rest');
        if (rest >= 0) {
          // rest leaves less than 1 MiB of the usable space unused at the end
          const last = sorted[sorted.length - 1]!;
          expect(p.lastUsableSector + 1 - (last.start + last.size)).toBeLessThan(align);
        }
      }),
      { numRuns: 500 },
    );
  });
});
