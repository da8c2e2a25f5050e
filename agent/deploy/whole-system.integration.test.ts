import { jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import { DEBIAN_BTRFS_LAYOUT, DEBIAN_MBR_LAYOUT, DEBIAN_SEPARATE_LAYOUT, makeDebianReferenceDisk, readDeployedDebian, type DebianReference } from '../../test-support/debian-reference.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import * as partition from '../../partition/index.js';
import { capture, LAYOUT_PROPERTY, parseRecordedLayout } from '../capture/index.js';
import type { DeployEvent } from '../events/index.js';
import { parseCapturePlan, parsePlan, type DeployPlanInput } from '../plan/index.js';
import { deploy } from './index.js';
import { partitionNeeds } from './replan.js';

// Whole systems on real layouts, on loop devices: a Debian 12 with separate /boot and /home and
// swap after root is captured as one tree and deployed to a smaller and a larger disk than the
// reference's; a disk too small is refused before a byte is written; an MBR, BIOS-only reference
// keeps its table kind and active flag; a root and /home in btrfs subvolumes are made again.
// (LVM needs device-mapper, which this host's kernel lacks: it is tested in QEMU.)

jest.setTimeout(600_000);

const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
let dir: string;
let share: string;
let sep: DebianReference;
let mbr: DebianReference;

beforeAll(async () => {
  dir = await tempDir('whole-system');
  share = join(dir, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
});

/** A Debian reference made with `layout` and captured by imagepe's capture mode to images/NAME.wim. */
async function reference(name: string, layout: Parameters<typeof makeDebianReferenceDisk>[1]): Promise<DebianReference> {
  const ref = await makeDebianReferenceDisk(join(dir, `${name}.img`), layout);
  await capture(parseCapturePlan({ kind: 'capture', destination: { url: `file://${share}`, file: `images/${name}.wim`, name, compression: 'xpress' } }), { disk: ref.image });
  return ref;
}

afterAll(async () => {
  await removeDir(dir);
});

function plan(image: string, over: Partial<DeployPlanInput> = {}): ReturnType<typeof parsePlan> {
  return parsePlan({ source: { url: `file://${share}`, image }, target: { layout: 'from-image' }, specialize: { hostname: 'node-{mac}' }, after: 'poweroff', ...over });
}

async function deployTo(name: string, bytes: number, p: ReturnType<typeof parsePlan>): Promise<{ disk: string; events: DeployEvent[] }> {
  const disk = await sparseFile(join(dir, name), bytes);
  const events: DeployEvent[] = [];
  await deploy(p, { disk, yes: true, facts: { mac: '52:54:00:00:15:01' }, events: (e) => events.push(e) });
  return { disk, events };
}

const stepDetail = (events: DeployEvent[], step: string) => {
  const e = events.find((x) => x.type === 'step' && x.step === step && x.status === 'done');
  return e?.type === 'step' ? (e.detail ?? '') : '';
};

async function recorded(image: string) {
  const text = await imaging.imageProperty(join(share, image), 1, LAYOUT_PROPERTY);
  return parseRecordedLayout(text!, image);
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

describe('a reference with separate /boot and /home, swap after root', () => {
  beforeAll(async () => {
    sep = await reference('separate', { layout: DEBIAN_SEPARATE_LAYOUT, sizeBytes: 4 * GiB });
  }, 600_000);

  it('is captured as one tree: the image holds /boot and /home, the layout records where each was mounted and what it held', async () => {
    const files = await imaging.dir(join(share, 'images/separate.wim'), 1);
    const paths = files.map((f) => (typeof f === "string" ? f : f.path));
    expect(paths).toEqual(expect.arrayContaining([sep.homeFile!.path, expect.stringMatching(/^\/boot\/vmlinuz-6\./), expect.stringMatching(/^\/boot\/grub\/grub\.cfg$/)]));
    const r = await recorded('images/separate.wim');
    expect(r.layout.partitions.map((p) => [p.name, p.size, p.mount])).toEqual([
      ['ESP', '64MiB', '/boot/efi'],
      ['bios-boot', '1MiB', undefined],
      ['boot', '256MiB', '/boot'],
      ['root', 'rest', '/'],
      ['home', '128MiB', '/home'],
      ['swap', '128MiB', 'swap'],
    ]);
    const used = Object.fromEntries(r.volumes.map((v) => [v.partition, v.usedBytes]));
    // The kernel and initramfs are on /boot, the system on /, one small file on /home.
    expect(used.boot).toBeGreaterThan(30 * MiB);
    expect(used.root).toBeGreaterThan(300 * MiB);
    expect(used.home).toBeLessThan(5 * MiB);
  });

  it('deploys to a smaller disk than the reference: root re-planned; /boot holds the kernel; /home has its files; fstab and GRUB name the new filesystems', async () => {
    const { disk, events } = await deployTo('smaller.img', 2 * GiB, plan('images/separate.wim'));
    expect(stepDetail(events, 'check')).toMatch(/layout re-planned: root shrunk from 3\.\d+ GiB on the reference to 1\.\d+ GiB, what this 2\.0+ GiB disk leaves it \(its data needs [\d.]+ [MG]iB\)/);
    const got = await readDeployedDebian(disk, Object.values(sep.uuids), 4, { files: [sep.homeFile!.path] });
    const fs = got.filesystems;
    expect([1, 3, 4, 5, 6].map((n) => fs[n]!.TYPE)).toEqual(['vfat', 'ext4', 'ext4', 'ext4', 'swap']);
    expect(got.fstab).toContain(`UUID=${fs[3]!.UUID} /boot `);
    expect(got.fstab).toContain(`UUID=${fs[5]!.UUID} /home `);
    expect(got.stale).toEqual([]);
    expect(got.files[sep.homeFile!.path]).toBe(sep.homeFile!.content);
    // readDeployedDebian mounted /boot from its own filesystem: the kernel and initramfs are there.
    expect(got.bootFiles).toEqual(expect.arrayContaining([expect.stringMatching(/^vmlinuz-6\./), expect.stringMatching(/^initrd\.img-6\./), 'grub']));
    // GRUB reads the kernel from the /boot filesystem, so its paths have no /boot in front.
    expect(got.grubCfg).toContain(`search --no-floppy --fs-uuid --set=root ${fs[3]!.UUID}`);
    for (const l of got.grubLinux) expect(l).toMatch(new RegExp(`^linux\\s+/vmlinuz-\\S+ root=UUID=${fs[4]!.UUID} `));
    expect(got.initramfsResume).toBe(`UUID=${fs[6]!.UUID}`);
  });

  it('deploys to a larger disk: root grows, the other partitions keep their sizes', async () => {
    const { disk } = await deployTo('larger.img', 8 * GiB, plan('images/separate.wim'));
    const table = JSON.parse((await run('sfdisk', ['--json', disk])).stdout) as { partitiontable: { partitions: { size: number }[] } };
    const sizes = table.partitiontable.partitions.map((p) => (p.size * 512) / MiB);
    expect(sizes).toEqual([64, 1, 256, 8192 - 64 - 1 - 256 - 128 - 128 - 2, 128, 128]);
  });

  it('refuses a disk too small for the data before writing a byte, naming the partition; target.minSwap lets swap give room', async () => {
    const r = await recorded('images/separate.wim');
    const mounts = new Map(r.layout.partitions.flatMap((p) => (p.mount ? [[p.name, p.mount] as const] : [])));
    // What root needs: the reference's data with its margin, and the initramfs rebuild's workspace.
    const rootNeed = partitionNeeds(r.layout, r.volumes, mounts, { rebuild: true }).get('root')!.bytes;
    // Room for everything but 64 MiB of that: swap (128 MiB) must give it up.
    const fixed = 64 + 1 + 256 + 128 + 128 + 2;
    const bytes = (fixed + Math.ceil(rootNeed / MiB) - 64) * MiB;
    const small = await sparseFile(join(dir, 'too-small.img'), bytes);
    const before = await sha256(small);
    const events: DeployEvent[] = [];
    await expect(deploy(plan('images/separate.wim'), { disk: small, yes: true, facts: { mac: '52:54:00:00:15:02' }, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'LAYOUT_INVALID' });
    const failed = events[events.length - 1]!;
    expect(failed).toMatchObject({ type: 'failed', step: 'check', diskTouched: false });
    expect(failed.type === 'failed' && failed.message).toMatch(/partition root \(\/\) needs [\d.]+ [MG]iB, has [\d.]+ [MG]iB: the reference had \d+ MiB in use on \/, which a new filesystem takes with room to spare \(10% and 64\.0 MiB\); the initramfs rebuild needs 256 MiB in \/var\/tmp$/);
    expect(await sha256(small)).toBe(before);

    const { events: ok } = await deployTo('swap-shrunk.img', bytes, plan('images/separate.wim', { target: { layout: 'from-image', minSwap: '32MiB' } }));
    expect(stepDetail(ok, 'check')).toMatch(/swap partition swap shrunk from 128 MiB to (6[3-4]|[4-5]\d)(\.\d)? MiB \(target\.minSwap is 32\.0 MiB\) to make room for the data/);
  });
});

describe('an MBR, BIOS-only reference', () => {
  beforeAll(async () => {
    mbr = await reference('mbr', { layout: DEBIAN_MBR_LAYOUT, sizeBytes: 3 * GiB, hostname: 'bios-box' });
  }, 600_000);

  it('keeps its table kind and active flag on a smaller disk, with GRUB in the boot sector and the references remapped', async () => {
    const { disk } = await deployTo('mbr.img', 2 * GiB, plan('images/mbr.wim', { bootloader: { firmware: 'bios' } }));
    const table = JSON.parse((await run('sfdisk', ['--json', disk])).stdout) as { partitiontable: { label: string; partitions: { type: string; bootable?: boolean }[] } };
    expect(table.partitiontable.label).toBe('dos');
    expect(table.partitiontable.partitions.map((p) => [p.type, p.bootable ?? false])).toEqual([['83', true], ['82', false]]);
    const f = await open(disk, 'r');
    const sector = Buffer.alloc(512);
    await f.read(sector, 0, 512, 0);
    await f.close();
    expect(sector.includes('GRUB')).toBe(true);
    const got = await readDeployedDebian(disk, Object.values(mbr.uuids), 1);
    expect(got.fstab).toContain(`UUID=${got.filesystems[1]!.UUID} /`);
    expect(got.fstab).toContain(`UUID=${got.filesystems[2]!.UUID} none`);
    expect(got.stale).toEqual([]);
    for (const l of got.grubLinux) expect(l).toMatch(new RegExp(`root=UUID=${got.filesystems[1]!.UUID} `));
  });
});

describe('a reference with root and /home in btrfs subvolumes', () => {
  let btr: DebianReference;

  beforeAll(async () => {
    btr = await reference('btrfs', { layout: DEBIAN_BTRFS_LAYOUT, sizeBytes: 3 * GiB, hostname: 'btrfs-box' });
  }, 600_000);

  it('is captured from its subvolume with the subvolumes recorded, and deployed with them made again: fstab subvol= kept, the default set, GRUB finds the kernel', async () => {
    const r = await recorded('images/btrfs.wim');
    expect(r.layout.partitions.find((p) => p.name === 'root')).toMatchObject({ format: 'btrfs', size: 'rest', mount: '/', subvolumes: [{ name: '@', mount: '/' }, { name: '@home', mount: '/home' }], defaultSubvolume: '@' });
    // The image holds the system as it runs: /etc at the top, /home's files under /home, nothing under /@.
    const paths = (await imaging.dir(join(share, 'images/btrfs.wim'), 1)).map((f) => (typeof f === 'string' ? f : f.path));
    expect(paths).toEqual(expect.arrayContaining(['/etc/os-release', btr.homeFile!.path]));
    expect(paths.filter((p) => p.startsWith('/@'))).toEqual([]);

    const { disk, events } = await deployTo('btrfs-deployed.img', 2 * GiB, plan('images/btrfs.wim'));
    expect(stepDetail(events, 'check')).toMatch(/layout re-planned: root shrunk/);
    const got = await readDeployedDebian(disk, Object.values(btr.uuids), 3, { files: [btr.homeFile!.path] });
    const root = got.filesystems[3]!;
    expect(root.TYPE).toBe('btrfs');
    expect(root.UUID).not.toBe(btr.uuids.root);
    expect(got.fstab).toMatch(new RegExp(`UUID=${root.UUID} /\\s+btrfs\\s+defaults,subvol=@\\s`));
    expect(got.fstab).toMatch(new RegExp(`UUID=${root.UUID} /home\\s+btrfs\\s+defaults,subvol=@home\\s`));
    expect(got.stale).toEqual([]);
    expect(got.files[btr.homeFile!.path]).toBe(btr.homeFile!.content);
    // update-grub names the kernel from the top of the filesystem and mounts the root subvolume.
    expect(got.grubLinux.length).toBeGreaterThan(0);
    for (const l of got.grubLinux) expect(l).toMatch(new RegExp(`^linux\\s+/@/boot/vmlinuz-\\S+ root=UUID=${root.UUID} .*rootflags=subvol=@`));
    await partition.withAttachedImage(
      disk,
      async (loop) => {
        const nodes = await partition.waitForPartitions(loop, [3], 15_000, (what) => ({ what, timeoutMs: 60_000 }));
        const top = await tempDir('btrfs-top');
        await run('mount', ['-t', 'btrfs', '-o', 'ro,subvolid=5', nodes.get(3)!, top]);
        try {
          const list = (await run('btrfs', ['subvolume', 'list', top])).stdout;
          expect(list.split('\n').filter(Boolean).map((l) => / path (.+)$/.exec(l)?.[1])).toEqual(['@', '@home']);
          expect((await run('btrfs', ['subvolume', 'get-default', top])).stdout).toMatch(/ path @$/m);
        } finally {
          await run('umount', [top]);
          await removeDir(top);
        }
      },
      { readOnly: true },
    );
  });
});
