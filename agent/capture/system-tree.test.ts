import type { VolumeIdentity } from '../system/references.js';
import type { SourceCandidate } from './find-root.js';
import { systemMounts } from './system-tree.js';

const MiB = 1024 ** 2;
const candidates: SourceCandidate[] = [
  { number: 1, node: '/dev/vda1', sizeBytes: 64 * MiB, fsType: 'vfat' },
  { number: 2, node: '/dev/vda2', sizeBytes: 256 * MiB, fsType: 'ext4', label: 'boot' },
  { number: 3, node: '/dev/vda3', sizeBytes: 2048 * MiB, fsType: 'ext4' },
  { number: 4, node: '/dev/vda4', sizeBytes: 512 * MiB, fsType: 'xfs' },
  { number: 5, node: '/dev/vda5', sizeBytes: 128 * MiB, fsType: 'swap' },
  { number: 6, node: '/dev/vda6', sizeBytes: 128 * MiB, fsType: 'ext4' },
];
const identities = new Map<number, VolumeIdentity>([
  [1, { partition: 'p1', number: 1, uuid: 'AB12-CD34' }],
  [2, { partition: 'p2', number: 2, uuid: '22222222-2222-4222-8222-222222222222', label: 'boot' }],
  [3, { partition: 'p3', number: 3, uuid: '33333333-3333-4333-8333-333333333333' }],
  [4, { partition: 'p4', number: 4, uuid: '44444444-4444-4444-8444-444444444444', partuuid: 'aaaa0000-0000-4000-8000-000000000004', partlabel: 'home' }],
  [5, { partition: 'p5', number: 5, uuid: '55555555-5555-4555-8555-555555555555' }],
  [6, { partition: 'p6', number: 6, uuid: '66666666-6666-4666-8666-666666666666' }],
]);
const root = candidates[2]!;

describe('systemMounts', () => {
  it("finds the system's other filesystems on this disk by every kind of name its fstab uses, parents first", () => {
    const fstab = [
      '# <file system> <mount point> <type> <options> <dump> <pass>',
      'UUID=33333333-3333-4333-8333-333333333333 / ext4 errors=remount-ro 0 1',
      '/dev/sda6 /home/shared ext4 defaults 0 2',
      'PARTLABEL=home /home xfs defaults 0 2',
      'LABEL=boot /boot/ ext4 defaults 0 2',
      'UUID=AB12-CD34 /boot/efi vfat umask=0077 0 1',
      'UUID=55555555-5555-4555-8555-555555555555 none swap sw 0 0',
      'proc /proc proc defaults 0 0',
      'tmpfs /tmp tmpfs defaults 0 0',
      'server:/export /srv nfs defaults 0 0',
      'UUID=99999999-9999-4999-8999-999999999999 /data ext4 nofail 0 2',
      '/dev/mapper/vg-var /var ext4 defaults 0 2',
    ].join('\n');
    const { mounts, notes } = systemMounts(fstab, candidates, identities, root);
    expect(mounts.map((m) => [m.mount, m.candidate.node])).toEqual([
      ['/home', '/dev/vda4'],
      ['/boot', '/dev/vda2'],
      ['/home/shared', '/dev/vda6'],
    ]);
    // The ESP's files are made anew by the deploy and are not named; storage elsewhere is.
    // A logical volume is not captured yet: the note says so (docs/capture.md).
    expect(notes).toEqual([
      'fstab line 11 mounts UUID=99999999-9999-4999-8999-999999999999 on /data, which is not a partition of this disk: its files are not captured',
      'fstab line 12 mounts /dev/mapper/vg-var on /var, which is not a partition of this disk: its files are not captured (the deployed system will wait for it at boot)',
    ]);
  });

  it('says when a required filesystem is elsewhere, and refuses two filesystems on one mount point', () => {
    const { notes } = systemMounts('UUID=77777777-7777-4777-8777-777777777777 /srv ext4 defaults 0 2\n', candidates, identities, root);
    expect(notes[0]).toMatch(/on \/srv, which is not a partition of this disk: its files are not captured \(the deployed system will wait for it at boot\)$/);
    expect(() => systemMounts('LABEL=boot /boot ext4 defaults 0 2\n/dev/vda6 /boot ext4 defaults 0 2\n', candidates, identities, root)).toThrow(/mounts two filesystems on \/boot \(line 2\)/);
  });

  it("mounts another btrfs subvolume of the root's own filesystem where the system does, and says when the root is the top level", () => {
    const btrfs: SourceCandidate = { number: 7, node: '/dev/vda7', sizeBytes: 4096 * MiB, fsType: 'btrfs', subvolume: '@' };
    const ids = new Map([...identities, [7, { partition: 'p7', number: 7, uuid: '77777777-7777-4777-8777-777777777777' }]]);
    const fstab = ['UUID=77777777-7777-4777-8777-777777777777 / btrfs defaults,subvol=@ 0 0', 'UUID=77777777-7777-4777-8777-777777777777 /home btrfs defaults,subvol=/@home 0 0', ''].join('\n');
    const { mounts, notes } = systemMounts(fstab, [...candidates, btrfs], ids, btrfs);
    expect(mounts).toEqual([{ mount: '/home', candidate: btrfs, subvolume: '@home' }]);
    expect(notes).toEqual([]);
    const top = { ...btrfs, subvolume: undefined };
    const atTop = systemMounts(fstab.replace(',subvol=@ ', ' '), [...candidates, top], ids, top);
    expect(atTop.mounts).toEqual([]);
    expect(atTop.notes[0]).toMatch(/mounts subvolume @home of the root's filesystem on \/home; the root is the filesystem's top level/);
  });

  it('reads no fstab as a system on one filesystem', () => {
    expect(systemMounts(undefined, candidates, identities, root)).toEqual({ mounts: [], notes: [] });
  });
});
