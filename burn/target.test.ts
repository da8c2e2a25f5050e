import { GiB, MiB } from '../core/index.js';
import { burnRefusals, refusalError, targetFromLsblk, type RefusalContext, type TargetDescription, type TargetProbes } from './target.js';

// `lsblk --json --bytes --output-all /dev/loop0` (util-linux 2.38.1), trimmed to the fields read:
// a GPT disk image on a loop device, its second partition (ext4) mounted on /tmp/pm.
const LOOP_WITH_MOUNT = {
  blockdevices: [
    {
      name: 'loop0', path: '/dev/loop0', type: 'loop', 'maj:min': '7:0', size: 67108864, rm: false, ro: false, vendor: null, model: null, serial: null, tran: null, 'log-sec': 512, mountpoints: [null],
      children: [
        { name: 'loop0p1', path: '/dev/loop0p1', type: 'part', 'maj:min': '259:0', size: 20971520, rm: false, ro: false, 'log-sec': 512, mountpoints: [null] },
        { name: 'loop0p2', path: '/dev/loop0p2', type: 'part', 'maj:min': '259:1', size: 44040192, rm: false, ro: false, 'log-sec': 512, mountpoints: ['/tmp/pm'] },
      ],
    },
  ],
};
const MOUNTINFO = '62 27 259:1 / /tmp/pm rw,relatime - ext4 /dev/loop0p2 rw\n22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw';

// A USB stick as lsblk shows one: RM=1, transport usb, vendor and model, a dm-crypt holder on its partition.
const STICK = {
  blockdevices: [
    {
      name: 'sdb', path: '/dev/sdb', type: 'disk', 'maj:min': '8:16', size: 15502147584, rm: true, ro: false, vendor: 'SanDisk ', model: 'Cruzer Blade    ', serial: '4C5300', tran: 'usb', 'log-sec': 512, mountpoints: [null],
      children: [{ name: 'sdb1', path: '/dev/sdb1', type: 'part', 'maj:min': '8:17', size: 15501099008, mountpoints: [null], children: [{ name: 'luks-1', type: 'crypt', mountpoints: [null] }] }],
    },
  ],
};

function probes(mountinfo: string, blkid: Record<string, Record<string, string>>, swaps: string[] = []): TargetProbes {
  return { probe: async (node) => blkid[node] ?? {}, mountinfo: async () => mountinfo, swaps: async () => swaps };
}

describe('targetFromLsblk', () => {
  it('describes a loop device with its table, filesystems and the mount, from lsblk and blkid', async () => {
    const t = await targetFromLsblk('/dev/loop0', JSON.stringify(LOOP_WITH_MOUNT), probes(MOUNTINFO, { '/dev/loop0': { PTTYPE: 'gpt' }, '/dev/loop0p2': { TYPE: 'ext4', LABEL: 'data' } }));
    expect(t).toEqual({
      path: '/dev/loop0',
      device: '/dev/loop0',
      sizeBytes: 64 * MiB,
      sectorSize: 512,
      removable: false,
      readOnly: false,
      partitionTable: 'gpt',
      partitions: [
        { path: '/dev/loop0p1', sizeBytes: 20 * MiB, mountPoints: [] },
        { path: '/dev/loop0p2', sizeBytes: 42 * MiB, fsType: 'ext4', label: 'data', mountPoints: ['/tmp/pm'] },
      ],
      uses: { uses: ['/dev/loop0p2 on /tmp/pm'] },
    });
  });

  it('takes a USB disk as removable, trims vendor and model, and names holders', async () => {
    const t = await targetFromLsblk('/dev/disk/by-id/usb-SanDisk', JSON.stringify(STICK), probes('', { '/dev/sdb': { PTTYPE: 'dos' }, '/dev/sdb1': { TYPE: 'crypto_LUKS' } }));
    expect(t).toMatchObject({ path: '/dev/disk/by-id/usb-SanDisk', device: '/dev/sdb', vendor: 'SanDisk', model: 'Cruzer Blade', serial: '4C5300', transport: 'usb', removable: true, partitionTable: 'dos' });
    expect(t.uses.uses).toEqual(['/dev/sdb1 held by luks-1']);
  });

  it('takes transport usb as removable even with RM=0', async () => {
    const usbDisk = { blockdevices: [{ ...STICK.blockdevices[0], rm: false, children: [] }] };
    expect((await targetFromLsblk('/dev/sdb', JSON.stringify(usbDisk), probes('', {}))).removable).toBe(true);
  });
});

const stick = (over: Partial<TargetDescription> = {}): TargetDescription => ({
  path: '/dev/sdb',
  device: '/dev/sdb',
  sizeBytes: 16 * GiB,
  sectorSize: 512,
  transport: 'usb',
  removable: true,
  readOnly: false,
  partitions: [],
  uses: { uses: [] },
  ...over,
});
const ctx = (over: Partial<RefusalContext> = {}): RefusalContext => ({ imageBytes: 700 * MiB, imageDisks: ['/dev/sda'], bootMedia: [], treatAsRemovable: [], ...over });
const codes = (t: TargetDescription, c: RefusalContext) => burnRefusals(t, c).map((r) => r.code);

describe('burnRefusals', () => {
  it('lets a free removable stick larger than the image through', () => {
    expect(burnRefusals(stick(), ctx())).toEqual([]);
  });

  it("refuses the running system's disk, once, even though its mounts are uses too", () => {
    const t = stick({ uses: { system: '/dev/sdb2 is mounted at /', uses: ['/dev/sdb2 on /', '/dev/sdb1 on /boot/efi'] } });
    const r = burnRefusals(t, ctx());
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ code: 'REFUSED', reason: 'the running system lives on it (/dev/sdb2 is mounted at /)' });
  });

  it('refuses the boot medium and the disk the image is stored on', () => {
    expect(codes(stick(), ctx({ bootMedia: ['/dev/sdb'] }))).toEqual(['REFUSED']);
    expect(burnRefusals(stick(), ctx({ imageDisks: ['/dev/dm-0', '/dev/sdb'] }))[0]!.reason).toMatch(/image file itself is stored on it/);
  });

  it('refuses a disk with a mounted partition, swap or a holder as in use', () => {
    const r = burnRefusals(stick({ uses: { uses: ['/dev/sdb1 on /media/stick', '/dev/sdb2 as swap'] } }), ctx());
    expect(r).toEqual([expect.objectContaining({ code: 'DISK_IN_USE', reason: 'it is in use: /dev/sdb1 on /media/stick, /dev/sdb2 as swap' })]);
  });

  it('refuses a write-protected stick and an empty card reader', () => {
    expect(codes(stick({ readOnly: true }), ctx())).toEqual(['REFUSED']);
    expect(codes(stick({ sizeBytes: 0 }), ctx())).toEqual(['NOT_FOUND']);
  });

  it('refuses a non-removable disk unless --force names it again or a test hook treats it as removable', () => {
    const internal = stick({ removable: false, transport: 'sata' });
    expect(burnRefusals(internal, ctx())[0]).toMatchObject({ code: 'REFUSED', reason: 'it is not removable (transport sata, RM=0)', hint: expect.stringContaining('--force /dev/sdb') });
    expect(codes(internal, ctx({ force: '/dev/sdc' }))).toEqual(['REFUSED']);
    expect(codes(internal, ctx({ force: '/dev/sdb' }))).toEqual([]);
    expect(codes(internal, ctx({ treatAsRemovable: ['/dev/sdb'] }))).toEqual([]);
  });

  it('--force never overrides the other refusals', () => {
    const t = stick({ removable: false, uses: { system: '/dev/sdb1 is mounted at /boot', uses: ['/dev/sdb1 on /boot'] } });
    expect(codes(t, ctx({ force: '/dev/sdb' }))).toEqual(['REFUSED']);
  });

  it('refuses a device smaller than the image with NO_SPACE and both sizes', () => {
    const r = burnRefusals(stick({ sizeBytes: 512 * MiB }), ctx({ imageBytes: 700 * MiB }));
    expect(r).toEqual([expect.objectContaining({ code: 'NO_SPACE', reason: `it holds 512 MiB (${512 * MiB} bytes) and the image is 700 MiB (${700 * MiB} bytes)` })]);
  });

  it('gives every reason in one error with the first code', () => {
    const t = stick({ removable: false, transport: undefined, sizeBytes: MiB });
    const e = refusalError(t, burnRefusals(t, ctx()));
    expect(e.code).toBe('REFUSED');
    expect(e.message).toBe(`not burning to /dev/sdb:\n  - it is not removable (no transport, RM=0)\n  - it holds 1.00 MiB (1048576 bytes) and the image is 700 MiB (${700 * MiB} bytes)`);
  });
});
