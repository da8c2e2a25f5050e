import { diskUses } from './in-use.js';

const mountinfo = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/root rw',
  '23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw',
  '40 22 8:17 / /srv/my\\040data rw,relatime shared:20 - xfs /dev/sdb1 rw',
  '41 22 8:2 / /boot/efi rw,relatime shared:21 - vfat /dev/sda2 rw',
].join('\n');

const none = new Map<string, string[]>();

describe('diskUses', () => {
  it('names the disk the system runs from by device number, whatever the mount source says', () => {
    const uses = diskUses({ devices: new Map([['254:0', '/dev/vda']]), mountinfo, swaps: [], holders: none });
    expect(uses.system).toBe('/dev/vda is mounted at /');
  });

  it('counts the ESP of the running system as the system too', () => {
    const uses = diskUses({ devices: new Map([['8:0', '/dev/sda'], ['8:1', '/dev/sda1'], ['8:2', '/dev/sda2']]), mountinfo, swaps: [], holders: none });
    expect(uses.system).toBe('/dev/sda2 is mounted at /boot/efi');
  });

  it('lists mounted partitions, active swap and holders of a data disk', () => {
    const uses = diskUses({
      devices: new Map([['8:16', '/dev/sdb'], ['8:17', '/dev/sdb1'], ['8:18', '/dev/sdb2'], ['8:19', '/dev/sdb3']]),
      mountinfo,
      swaps: ['/dev/sdb2', '/dev/zram0'],
      holders: new Map([['/dev/sdb', []], ['/dev/sdb3', ['dm-0']]]),
    });
    expect(uses.system).toBeUndefined();
    expect(uses.uses).toEqual(['/dev/sdb1 on /srv/my data', '/dev/sdb2 as swap', '/dev/sdb3 held by dm-0']);
  });

  it('finds nothing on a disk nobody uses', () => {
    expect(diskUses({ devices: new Map([['7:0', '/dev/loop0']]), mountinfo, swaps: ['/dev/zram0'], holders: new Map([['/dev/loop0', []]]) })).toEqual({ uses: [] });
  });
});
