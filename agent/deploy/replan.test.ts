import { MiB } from '../../core/index.js';
import { parseLayout, resolveLayout, type Disk } from '../../partition/index.js';
import type { RecordedVolume } from '../capture/index.js';
import { bytesNeeded, capacityProblems, MARGIN_BYTES, partitionNeeds, replanLayout } from './replan.js';

const GiB = 1024 * MiB;
const disk = (bytes: number): Disk => ({ path: '/dev/vdb', sizeBytes: bytes, sectorSize: 512 });

// The reference: 4 GiB, ESP 512 MiB, bios-boot, root 2600 MiB, swap after root taking the
// rest, as an older capture recorded it (root fixed, swap "rest"); root holds about 400 MiB.
const OLD_RECORD = parseLayout({
  table: 'gpt',
  partitions: [
    { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    { name: 'root', size: '2600MiB', type: 'linux', format: 'ext4', mount: '/' },
    { name: 'swap', size: 'rest', type: 'linux-swap', format: 'swap', mount: 'swap' },
  ],
});
const OLD_VOLUMES: RecordedVolume[] = [
  { partition: 'ESP', number: 1, sizeBytes: 512 * MiB },
  { partition: 'bios-boot', number: 2, sizeBytes: MiB },
  { partition: 'root', number: 3, sizeBytes: 2600 * MiB, usedBytes: 400 * MiB },
  { partition: 'swap', number: 4, sizeBytes: 981 * MiB },
];
const OLD_MOUNTS = new Map([['ESP', '/boot/efi'], ['root', '/'], ['swap', 'swap']]);

function sizes(layout: ReturnType<typeof parseLayout>, bytes: number): Record<string, number> {
  return Object.fromEntries(resolveLayout(layout, disk(bytes)).partitions.map((p) => [p.name, p.sizeBytes / MiB]));
}

describe('replanLayout', () => {
  it('gives the data partition what a smaller disk leaves, wherever it sits, and keeps the others', () => {
    const r = replanLayout(OLD_RECORD, disk(3 * GiB), { grow: 'root', volumes: OLD_VOLUMES, recordedMounts: OLD_MOUNTS, rebuild: true });
    // 3072 MiB less the first MiB, ESP, bios-boot, the 981 MiB swap and the backup GPT.
    expect(sizes(r.layout, 3 * GiB)).toEqual({ ESP: 512, 'bios-boot': 1, root: 1576, swap: 981 });
    expect(r.notes).toEqual([expect.stringMatching(/^root shrunk from 2\.54 GiB on the reference to 1\.54 GiB, what this 3\.0+ GiB disk leaves it \(its data needs 824 MiB\)$/)]);
  });

  it('grows the data partition on a larger disk', () => {
    const r = replanLayout(OLD_RECORD, disk(16 * GiB), { grow: 'root', volumes: OLD_VOLUMES, recordedMounts: OLD_MOUNTS, rebuild: true });
    expect(sizes(r.layout, 16 * GiB).root).toBe(16 * 1024 - 512 - 1 - 981 - 1 - 1);
    expect(r.notes[0]).toMatch(/^root grown from 2\.54 GiB on the reference to 14\.5 GiB/);
  });

  it('shrinks swap to the floor the plan sets, and only as far as the data needs', () => {
    // Without swap shrinking root would get 1700-514-981-2 = 203 MiB; it needs 824.
    const r = replanLayout(OLD_RECORD, disk(1700 * MiB), { grow: 'root', volumes: OLD_VOLUMES, recordedMounts: OLD_MOUNTS, minSwapBytes: 256 * MiB, rebuild: true });
    const s = sizes(r.layout, 1700 * MiB);
    expect(s.root).toBeGreaterThanOrEqual(824);
    expect(s.swap).toBeLessThan(981);
    expect(s.swap).toBeGreaterThanOrEqual(256);
    expect(r.notes.some((n) => /swap partition swap shrunk from 981 MiB to \d+ MiB \(target.minSwap is 256 MiB\)/.test(n))).toBe(true);
    // Never below the floor, even when the data still does not fit: capacityProblems says so.
    const tight = replanLayout(OLD_RECORD, disk(1100 * MiB), { grow: 'root', volumes: OLD_VOLUMES, recordedMounts: OLD_MOUNTS, minSwapBytes: 256 * MiB, rebuild: true });
    expect(sizes(tight.layout, 1100 * MiB).swap).toBe(256);
    const needs = partitionNeeds(tight.layout, OLD_VOLUMES, OLD_MOUNTS, { rebuild: true });
    expect(capacityProblems(resolveLayout(tight.layout, disk(1100 * MiB)), needs)).toEqual([
      expect.stringMatching(/^partition root \(\/\) needs 824 MiB, has 329 MiB: the reference had 400 MiB in use on \/, which a new filesystem takes with room to spare \(10% and 64\.0 MiB\); the initramfs rebuild needs 320 MiB in \/var\/tmp and \/boot$/),
    ]);
  });

  it('lets the plan name another partition to grow; the image partition then keeps its recorded size', () => {
    const layout = parseLayout({ ...OLD_RECORD, partitions: OLD_RECORD.partitions.map((p) => (p.name === 'root' ? { ...p, size: 'rest' } : p.name === 'swap' ? { ...p, size: '981MiB' } : p)) });
    const r = replanLayout(layout, disk(8 * GiB), { grow: 'swap', volumes: OLD_VOLUMES, recordedMounts: OLD_MOUNTS, rebuild: true });
    expect(sizes(r.layout, 8 * GiB)).toMatchObject({ root: 2600, swap: 8192 - 512 - 1 - 2600 - 2 });
  });
});

describe('partitionNeeds and capacityProblems', () => {
  const volumes: RecordedVolume[] = [
    { partition: 'boot', number: 2, sizeBytes: 256 * MiB, usedBytes: 200 * MiB },
    { partition: 'root', number: 3, sizeBytes: 4 * GiB, usedBytes: 1 * GiB },
    { partition: 'home', number: 4, sizeBytes: 1 * GiB, usedBytes: 300 * MiB },
  ];
  const mounts = new Map([['boot', '/boot'], ['root', '/'], ['home', '/home']]);

  it('needs used bytes plus a tenth and 64 MiB, never more than the partition the files came from', () => {
    expect(bytesNeeded(volumes[1]!)).toBe(Math.ceil(GiB * 1.1) + MARGIN_BYTES);
    // /boot was 78% full: its own size is enough, however full it was.
    expect(bytesNeeded(volumes[0]!)).toBe(256 * MiB);
    expect(bytesNeeded({ partition: 'x', number: 1 })).toBeUndefined();
  });

  it("puts a reference filesystem's needs on the partition that will hold its mount point", () => {
    // No /home in this layout: the reference's /home lands on the new root.
    const layout = parseLayout({
      table: 'gpt',
      partitions: [
        { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
        { name: 'boot', size: '256MiB', type: 'linux', format: 'ext4', mount: '/boot' },
        { name: 'system', size: 'rest', type: 'linux', format: 'xfs', mount: '/' },
      ],
    });
    const needs = partitionNeeds(layout, volumes, mounts, { rebuild: false });
    expect([...needs.values()].map((n) => [n.partition, n.from, n.used / MiB])).toEqual([['boot', ['/boot'], 200], ['system', ['/', '/home'], 1324]]);
    expect(capacityProblems(resolveLayout(layout, disk(5 * GiB)), needs)).toEqual([]);
    const problems = capacityProblems(resolveLayout(layout, disk(1800 * MiB)), needs);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^partition system \(\/\) needs 1\.55 GiB, has 1\.44 GiB: the reference had 1\.29 GiB in use on \/, \/home/);
  });

  it('counts the initramfs rebuild where /var/tmp and /boot will be, and only when the plan rebuilds', () => {
    const layout = parseLayout({
      table: 'gpt',
      partitions: [
        { name: 'boot', size: '256MiB', type: 'linux', format: 'ext4', mount: '/boot' },
        { name: 'sys', size: 'rest', type: 'linux', format: 'btrfs', mount: '/', subvolumes: [{ name: '@', mount: '/' }, { name: '@var', mount: '/var' }] },
      ],
    });
    const rebuilt = partitionNeeds(layout, volumes, mounts, { rebuild: true });
    expect(rebuilt.get('boot')).toMatchObject({ workspace: 64 * MiB, workspaceFor: ['/boot'] });
    // /var/tmp is in the @var subvolume of the same filesystem as /.
    expect(rebuilt.get('sys')).toMatchObject({ workspace: 256 * MiB, workspaceFor: ['/var/tmp'], from: ['/', '/home'] });
    expect(partitionNeeds(layout, volumes, mounts, { rebuild: false }).get('sys')!.workspace).toBe(0);
    // A layout for an image that records nothing is not judged.
    expect(partitionNeeds(layout, [], mounts, { rebuild: true }).size).toBe(0);
  });
});

describe('replanLayout with LVM', () => {
  // The reference: 8 GiB with a separate /boot, root on LVM and swap after the group.
  const RECORD = parseLayout({
    table: 'gpt',
    partitions: [
      { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
      { name: 'bios', size: '1MiB', type: 'bios-boot' },
      { name: 'boot', size: '512MiB', type: 'linux', format: 'ext4', mount: '/boot' },
      { name: 'pv', size: 'rest', type: 'lvm', format: 'lvm' },
      { name: 'swap', size: '1024MiB', type: 'linux-swap', format: 'swap', mount: 'swap' },
    ],
    volumeGroups: [{ name: 'vg0', physicalVolumes: ['pv'], logicalVolumes: [{ name: 'root', size: 'rest', format: 'ext4', mount: '/' }, { name: 'home', size: '1020MiB', format: 'ext4', mount: '/home' }] }],
  });
  const VOLUMES: RecordedVolume[] = [
    { partition: 'ESP', number: 1, sizeBytes: 512 * MiB },
    { partition: 'boot', number: 3, sizeBytes: 512 * MiB, usedBytes: 60 * MiB },
    { partition: 'pv', number: 4, sizeBytes: 6142 * MiB },
    { partition: 'swap', number: 5, sizeBytes: 1024 * MiB },
    { partition: 'vg0/root', number: 0, lv: 'vg0/root', sizeBytes: 5116 * MiB, usedBytes: 700 * MiB },
    { partition: 'vg0/home', number: 0, lv: 'vg0/home', sizeBytes: 1020 * MiB, usedBytes: 5 * MiB },
  ];
  const MOUNTS = new Map([['ESP', '/boot/efi'], ['boot', '/boot'], ['swap', 'swap'], ['vg0/root', '/'], ['vg0/home', '/home']]);

  it('shrinks the root volume inside its group, and its physical volume in the table, on a 4 GiB disk', () => {
    const r = replanLayout(RECORD, disk(4 * GiB), { grow: 'vg0/root', volumes: VOLUMES, recordedMounts: MOUNTS, rebuild: false });
    const resolved = resolveLayout(r.layout, disk(4 * GiB));
    const pv = resolved.partitions.find((p) => p.name === 'pv')!;
    expect(pv.sizeBytes / MiB).toBe(4096 - 1 - 512 - 1 - 512 - 1024 - 1);
    const [root, home] = resolved.volumeGroups[0]!.logicalVolumes;
    expect(home!.sizeBytes).toBe(1020 * MiB);
    expect(root!.sizeBytes).toBe((Math.floor((pv.sizeBytes - MiB) / (4 * MiB)) - 255) * 4 * MiB);
    expect(r.notes).toEqual([expect.stringMatching(/^vg0\/root shrunk from 5\.00 GiB on the reference to 1\.\d+ GiB, what this 4\.00 GiB disk leaves it \(its data needs 834 MiB\)$/)]);
    expect(capacityProblems(resolved, partitionNeeds(r.layout, VOLUMES, MOUNTS, { rebuild: false }))).toEqual([]);
  });

  it('names the logical volume that is too small for its data', () => {
    const r = replanLayout(RECORD, disk(3584 * MiB), { grow: 'vg0/root', volumes: VOLUMES, recordedMounts: MOUNTS, rebuild: false });
    const resolved = resolveLayout(r.layout, disk(3584 * MiB));
    expect(capacityProblems(resolved, partitionNeeds(r.layout, VOLUMES, MOUNTS, { rebuild: false }))).toEqual([
      expect.stringMatching(/^logical volume vg0\/root \(\/\) needs 834 MiB, has 512 MiB: the reference had 700 MiB in use on \//),
    ]);
  });
});
