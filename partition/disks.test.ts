import { GiB } from '../core/index.js';
import { DiskRuleSchema, parseLsblk, selectDisk } from './index.js';

// Trimmed `lsblk --json -b -O` output of a machine with a system disk, two data disks,
// a USB stick, a DVD drive, a zram device and a loop device.
const lsblk = JSON.stringify({
  blockdevices: [
    {
      name: 'nvme0n1', path: '/dev/nvme0n1', type: 'disk', size: 512 * GiB, rm: false, hotplug: false, ro: false, model: 'Samsung SSD 980', serial: 'S1', wwn: 'eui.0025', tran: 'nvme', 'log-sec': 512, mountpoints: [null],
      children: [
        { name: 'nvme0n1p1', path: '/dev/nvme0n1p1', type: 'part', size: GiB, mountpoints: ['/boot/efi'] },
        { name: 'nvme0n1p2', path: '/dev/nvme0n1p2', type: 'part', size: 511 * GiB, mountpoints: ['/'] },
      ],
    },
    { name: 'sda', path: '/dev/sda', type: 'disk', size: 2000 * GiB, rm: false, hotplug: false, ro: false, model: 'WDC WD20EFRX', serial: 'WD-1', wwn: '0x50014ee2b1c2d3e4', tran: 'sata', 'log-sec': 512, mountpoints: [null] },
    { name: 'sdb', path: '/dev/sdb', type: 'disk', size: 240 * GiB, rm: '0', hotplug: '0', ro: '0', model: 'INTEL SSDSC2', serial: 'BTWL', wwn: '0x55cd2e404b6f0000', tran: 'sata', 'log-sec': 4096, mountpoints: [null] },
    {
      name: 'sdc', path: '/dev/sdc', type: 'disk', size: 300 * GiB, rm: false, hotplug: false, ro: false, model: 'Busy', serial: 'B1', tran: 'sata', 'log-sec': 512, mountpoints: [null],
      children: [{ name: 'sdc1', path: '/dev/sdc1', type: 'part', size: 300 * GiB, mountpoints: ['/srv'] }],
    },
    { name: 'sdd', path: '/dev/sdd', type: 'disk', size: 64 * GiB, rm: true, hotplug: true, ro: false, model: 'SanDisk Ultra', serial: 'U1', tran: 'usb', 'log-sec': 512, mountpoints: [null] },
    { name: 'sr0', path: '/dev/sr0', type: 'rom', size: 4 * GiB, rm: true, ro: false, model: 'DVD', 'log-sec': 2048, mountpoints: [null] },
    { name: 'zram0', path: '/dev/zram0', type: 'disk', size: 8 * GiB, rm: false, ro: false, 'log-sec': 4096, mountpoints: ['[SWAP]'] },
    { name: 'loop0', path: '/dev/loop0', type: 'loop', size: 100 * GiB, rm: false, ro: false, 'log-sec': 512, mountpoints: [null] },
  ],
});

const disks = parseLsblk(lsblk);
const rule = (r: Record<string, unknown>) => DiskRuleSchema.parse(r);

describe('parseLsblk', () => {
  it('reads disks with their size, sector size, identity and what is mounted from them', () => {
    const nvme = disks.find((d) => d.name === 'nvme0n1')!;
    expect(nvme).toMatchObject({ path: '/dev/nvme0n1', sizeBytes: 512 * GiB, sectorSize: 512, model: 'Samsung SSD 980', holdsSystem: true, partitionCount: 2 });
    expect(nvme.mountPoints).toEqual(['/boot/efi', '/']);
    expect(disks.find((d) => d.name === 'sdb')).toMatchObject({ sectorSize: 4096, removable: false, readOnly: false, holdsSystem: false });
    expect(disks.find((d) => d.name === 'sdd')).toMatchObject({ removable: true, transport: 'usb' });
    expect(disks.map((d) => d.name)).not.toContain('sr0');
  });
});

describe('selectDisk', () => {
  it.each([
    [{ pick: 'smallest' }, '/dev/sdb'],
    [{ pick: 'largest' }, '/dev/sda'],
    [{ pick: 'smallest', minSize: '250GiB' }, '/dev/sda'],
    [{ pick: 'largest', maxSize: '1TB' }, '/dev/sdb'],
    [{ pick: 'largest', model: 'intel' }, '/dev/sdb'],
    [{ pick: 'largest', serial: 'WD-1' }, '/dev/sda'],
    [{ pick: 'largest', wwn: '50014EE2B1C2D3E4' }, '/dev/sda'],
    [{ pick: 'smallest', allowRemovable: true }, '/dev/sdd'],
  ])('%j picks %s', (r, expected) => {
    expect(selectDisk(rule(r), disks).path).toBe(expected);
  });

  it('never picks the disk the system runs from, one with mounted filesystems, a RAM disk or removable media by default', () => {
    const picked = new Set(['smallest', 'largest'].map((pick) => selectDisk(rule({ pick }), disks).path));
    for (const never of ['/dev/nvme0n1', '/dev/sdc', '/dev/zram0', '/dev/sdd', '/dev/loop0']) expect(picked).not.toContain(never);
    expect(() => selectDisk(rule({ pick: 'largest', model: 'Samsung' }), disks)).toThrow(/nvme0n1: the running system lives on it/);
    expect(() => selectDisk(rule({ pick: 'largest', model: 'Busy' }), disks)).toThrow(/sdc: holds mounted filesystems \(\/srv\)/);
  });

  it('never picks the disk the environment booted from when told which it is', () => {
    expect(selectDisk(rule({ pick: 'largest' }), disks, { bootDisks: ['/dev/sda'] }).path).toBe('/dev/sdb');
  });

  it('explains why no disk matched', () => {
    try {
      selectDisk(rule({ pick: 'smallest', minSize: '10TiB' }), disks);
      throw new Error('expected no match');
    } catch (e) {
      expect(e).toMatchObject({ code: 'NOT_FOUND' });
      expect((e as Error).message).toMatch(/no disk matches the rule "the smallest disk of at least 10TiB"/);
      expect((e as Error).message).toMatch(/\/dev\/sda: 1\.95 TiB, smaller than 10\.0 TiB/);
    }
  });
});
