import { parseLayout } from '../../partition/index.js';
import { fstabMounts, keepIdentities, type RecordedImage } from './identities.js';

const RECORDED: RecordedImage = {
  imagePartition: 'root',
  layout: parseLayout({
    table: 'gpt',
    partitions: [
      { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
      { name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/' },
      { name: 'swap', size: '128MiB', type: 'linux-swap', format: 'swap', mount: 'swap' },
    ],
  }),
  volumes: [
    { partition: 'ESP', number: 1, fsType: 'vfat', uuid: 'B31A-9BC9', partuuid: '11111111-2222-4333-8444-555555555501', partlabel: 'ESP' },
    { partition: 'root', number: 2, fsType: 'ext4', uuid: 'cca6e8dc-4c5d-4353-a4c8-5a2464119d4f', label: 'rootfs', partuuid: '11111111-2222-4333-8444-555555555502', partlabel: 'root' },
    { partition: 'swap', number: 3, fsType: 'swap', uuid: '1c292f12-5387-43b4-915f-e4ee318847a4', partuuid: '11111111-2222-4333-8444-555555555503', partlabel: 'swap' },
  ],
};

describe('keeping the reference identities', () => {
  it('gives each partition of a from-image layout the UUID, label and PARTUUID its namesake had', () => {
    const { layout, notes } = keepIdentities(RECORDED.layout, RECORDED, undefined);
    expect(notes).toEqual([]);
    expect(layout.partitions.map((p) => [p.name, p.uuid, p.label, p.partuuid])).toEqual([
      ['ESP', 'B31A-9BC9', undefined, '11111111-2222-4333-8444-555555555501'],
      ['root', 'cca6e8dc-4c5d-4353-a4c8-5a2464119d4f', 'rootfs', '11111111-2222-4333-8444-555555555502'],
      ['swap', '1c292f12-5387-43b4-915f-e4ee318847a4', undefined, '11111111-2222-4333-8444-555555555503'],
    ]);
  });

  it('matches a plan layout by mount point, and without a recorded layout reads the system fstab', () => {
    const plan = parseLayout({
      table: 'gpt',
      partitions: [
        { name: 'efi', size: '100MiB', type: 'esp', format: 'vfat', mount: '/boot/efi' },
        { name: 'system', size: 'rest', type: 'linux', format: 'ext4', label: 'system', mount: '/' },
        { name: 'data', size: '1GiB', type: 'linux', format: 'xfs', mount: '/srv' },
      ],
    });
    const kept = keepIdentities(plan, RECORDED, undefined);
    expect(kept.layout.partitions.map((p) => [p.name, p.uuid, p.label])).toEqual([
      ['efi', 'B31A-9BC9', undefined],
      // The plan's own label wins over the recorded one.
      ['system', 'cca6e8dc-4c5d-4353-a4c8-5a2464119d4f', 'system'],
      ['data', undefined, undefined],
    ]);
    expect(kept.notes).toEqual(['partition data (/srv): the image names no filesystem to take the identity of, so it gets a new one']);

    const fstab = '# comment\nUUID=cca6e8dc-4c5d-4353-a4c8-5a2464119d4f / ext4 errors=remount-ro 0 1\nUUID=B31A-9BC9 /boot/efi vfat umask=0077 0 1\nLABEL=fast /srv xfs defaults 0 2\n';
    const fromFstab = keepIdentities(plan, undefined, fstab);
    expect(fromFstab.layout.partitions.map((p) => [p.name, p.uuid, p.label])).toEqual([
      ['efi', 'B31A-9BC9', undefined],
      ['system', 'cca6e8dc-4c5d-4353-a4c8-5a2464119d4f', 'system'],
      ['data', undefined, 'fast'],
    ]);
    expect(fstabMounts(fstab).map((m) => m.mount)).toEqual(['/', '/boot/efi', '/srv']);
  });

  it('never puts an identity of the wrong form on a filesystem (a FAT volume id on ext4)', () => {
    const plan = parseLayout({ table: 'gpt', partitions: [{ name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/' }] });
    const { layout } = keepIdentities(plan, undefined, 'UUID=B31A-9BC9 / ext4 defaults 0 1\n');
    expect(layout.partitions[0]!.uuid).toBeUndefined();
  });
});
