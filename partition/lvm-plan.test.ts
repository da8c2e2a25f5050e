import { GiB, MiB } from '../core/index.js';
import { LayoutError, layoutVolumes, parseLayout, renderSfdiskScript, resolveLayout, type Disk, type LayoutInput } from './index.js';

const disk = (sizeBytes: number): Disk => ({ path: '/dev/test', sizeBytes, sectorSize: 512 });

// The shape of Debian's installer's "separate /home, LVM" recipe, with swap after the group.
const lvmLayout = (over: Partial<LayoutInput> = {}): LayoutInput => ({
  table: 'gpt',
  firmware: 'both',
  partitions: [
    { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
    { name: 'bios', size: '1MiB', type: 'bios-boot' },
    { name: 'boot', size: '512MiB', type: 'linux', format: 'ext4', mount: '/boot' },
    { name: 'pv', size: 'rest', type: 'lvm', format: 'lvm' },
    { name: 'swap', size: '1GiB', type: 'linux-swap', format: 'swap', mount: 'swap' },
  ],
  volumeGroups: [
    {
      name: 'vg0',
      physicalVolumes: ['pv'],
      logicalVolumes: [
        { name: 'home', size: '25%', format: 'ext4', mount: '/home' },
        { name: 'root', size: 'rest', format: 'ext4', mount: '/', label: 'system' },
        { name: 'var-log', size: '200MiB', format: 'ext4', mount: '/var/log' },
      ],
    },
  ],
  ...over,
});

function problemsOf(layout: LayoutInput, d = disk(8 * GiB)): string[] {
  try {
    resolveLayout(parseLayout(layout), d);
  } catch (e) {
    expect(e).toBeInstanceOf(LayoutError);
    return (e as LayoutError).problems;
  }
  throw new Error('expected the layout to be refused');
}

describe('plan: LVM volume groups', () => {
  it('counts the group in whole extents after 1 MiB of metadata, and gives the rest to the one volume that asks', () => {
    const r = resolveLayout(parseLayout(lvmLayout()), disk(8 * GiB));
    const pv = r.partitions.find((p) => p.name === 'pv')!;
    // The PV partition gets the GPT LVM type and sits before swap.
    expect(pv.typeCode).toBe('E6D6D379-F507-44C2-A23C-238F2A3DF928');
    expect(renderSfdiskScript(r)).toContain('type=E6D6D379-F507-44C2-A23C-238F2A3DF928');
    const g = r.volumeGroups[0]!;
    const extents = Math.floor((pv.sizeBytes - MiB) / (4 * MiB));
    expect(g).toMatchObject({ name: 'vg0', physicalVolumes: ['pv'], extentBytes: 4 * MiB, extents });
    const [home, root, log] = g.logicalVolumes;
    expect(home).toMatchObject({ name: 'vg0/home', lvName: 'home', extents: Math.floor(extents / 4) });
    // 200 MiB is 50 extents exactly; rest is what the others leave.
    expect(log).toMatchObject({ name: 'vg0/var-log', extents: 50, sizeBytes: 200 * MiB, format: 'ext4' });
    expect(root).toMatchObject({ name: 'vg0/root', extents: extents - home!.extents - 50, label: 'system', mount: '/' });
    expect(root!.sizeBytes).toBe(root!.extents * 4 * MiB);
    expect(g.logicalVolumes.reduce((n, lv) => n + lv.extents, 0)).toBe(extents);
  });

  it('rounds a byte size up to whole extents, as lvcreate -L does', () => {
    const layout = lvmLayout();
    layout.volumeGroups![0]!.logicalVolumes[2]!.size = '201MiB';
    const g = resolveLayout(parseLayout(layout), disk(8 * GiB)).volumeGroups[0]!;
    expect(g.logicalVolumes[2]).toMatchObject({ extents: 51, sizeBytes: 204 * MiB });
  });

  it('lists logical volumes by VG/LV beside the partitions, for apply entries and mounts', () => {
    expect(layoutVolumes(parseLayout(lvmLayout())).map((v) => [v.name, v.mount])).toEqual([
      ['ESP', '/boot/efi'],
      ['bios', undefined],
      ['boot', '/boot'],
      ['pv', undefined],
      ['swap', 'swap'],
      ['vg0/home', '/home'],
      ['vg0/root', '/'],
      ['vg0/var-log', '/var/log'],
    ]);
  });

  it('refuses a group whose volumes do not fit, naming both sizes', () => {
    const layout = lvmLayout();
    layout.volumeGroups![0]!.logicalVolumes[2]!.size = '20GiB';
    expect(problemsOf(layout)).toEqual([expect.stringMatching(/^volumeGroups\[0\] \(vg0\) does not fit: its logical volumes need 2\d\.\d+ GiB \(\d+ extents\) but its physical volumes give \d\.\d+ GiB \(\d+ extents\)$/)]);
  });

  it('refuses what LVM or the filesystems would: a PV without format lvm, an unlisted PV, two rests, a doubled mount, a bad name, xfs below its minimum', () => {
    const layout = lvmLayout({
      partitions: [
        { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
        { name: 'bios', size: '1MiB', type: 'bios-boot' },
        { name: 'pv', size: '4GiB', type: 'lvm', format: 'ext4' },
        { name: 'pv2', size: 'rest', type: 'lvm', format: 'lvm' },
      ],
    });
    layout.volumeGroups![0]!.logicalVolumes = [
      { name: 'root', size: 'rest', format: 'ext4', mount: '/' },
      { name: 'other', size: 'rest', format: 'ext4', mount: '/' },
      { name: 'small', size: '100MiB', format: 'xfs' },
    ];
    expect(problemsOf(layout)).toEqual(
      expect.arrayContaining([
        'volumeGroups[0] (vg0) uses partition pv as a physical volume, but it has format ext4; give it format: lvm (and type: lvm)',
        'partition pv2 has format lvm but no volume group lists it in physicalVolumes',
        'volumeGroups[0].logicalVolumes[1] (vg0/other) has size "rest", as has vg0/root; one logical volume per group may take the rest',
        'volumeGroups[0].logicalVolumes[0] (vg0/root) and volumeGroups[0].logicalVolumes[1] (vg0/other) are both mounted at /',
        'volumeGroups[0].logicalVolumes[2] (vg0/small) is 100 MiB, smaller than the 300 MiB xfs needs',
      ]),
    );
    expect(() => parseLayout({ ...lvmLayout(), volumeGroups: [{ name: '-vg', physicalVolumes: ['pv'], logicalVolumes: [{ name: 'x_tmeta', size: 'rest' }] }] })).toThrow(
      /volumeGroups\[0\]\.name: expected a volume group name of letters[\s\S]*logicalVolumes\[0\]\.name: expected a logical volume name without the words LVM keeps/,
    );
  });

  it('takes the MBR LVM type byte', () => {
    const r = resolveLayout(
      parseLayout({
        table: 'mbr',
        firmware: 'bios',
        partitions: [
          { name: 'boot', size: '512MiB', type: 'linux', format: 'ext4', mount: '/boot', flags: ['bootable'] },
          { name: 'pv', size: 'rest', type: 'lvm', format: 'lvm' },
        ],
        volumeGroups: [{ name: 'vg', physicalVolumes: ['pv'], extentSize: '8MiB', logicalVolumes: [{ name: 'root', size: 'rest', format: 'ext4', mount: '/' }] }],
      }),
      disk(4 * GiB),
    );
    expect(r.partitions[1]!.typeCode).toBe('8e');
    expect(r.volumeGroups[0]!.extents).toBe(Math.floor((r.partitions[1]!.sizeBytes - MiB) / (8 * MiB)));
  });
});
