import { mkdtemp, open, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB, run, type ImagepeEvent } from '../core/index.js';
import { waitForPartitions } from './apply.js';
import { withAttachedImage } from './loop.js';
import { apply, describeDisk, parseLayout, resolveLayout, type LayoutInput, type ResolvedLayout, type Result } from './index.js';
import { sparseFile } from '../test-support/tree.js';

// Every disk here is a sparse image file in a temp dir; no test names a real block device.

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-partition-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function image(name: string, size: number): Promise<string> {
  return sparseFile(join(dir, name), size);
}

async function planFor(path: string, layout: LayoutInput, sectorSize = 512): Promise<ResolvedLayout> {
  return resolveLayout(parseLayout(layout), await describeDisk(path, { sectorSize }));
}

async function loopsOf(path: string): Promise<string> {
  return (await run('losetup', ['--associated', path, '--noheadings', '--output', 'NAME'])).stdout.trim();
}

interface Attached {
  loop: string;
  node(n: number): string;
}

/** Attaches the image on its own, the way a later boot would find the disk, and releases it again. */
function withAttached<T>(path: string, sectorSize: number, fn: (a: Attached) => Promise<T>): Promise<T> {
  return withAttachedImage(path, (loop) => fn({ loop, node: (n) => `${loop}p${n}` }), { sectorSize });
}

interface SfdiskJson {
  partitiontable: { label: string; id: string; sectorsize: number; partitions: { node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }[] };
}

async function sfdiskJson(loop: string): Promise<SfdiskJson['partitiontable']> {
  return (JSON.parse((await run('sfdisk', ['--json', loop])).stdout) as SfdiskJson).partitiontable;
}

async function blkid(node: string): Promise<Record<string, string>> {
  const r = await run('blkid', ['--probe', '--output', 'export', node], { okExitCodes: [0, 2] });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/**
 * Mounts the filesystem, writes a file, remounts and reads it back: proof that it is real. This
 * test kernel has no vfat driver, so FAT is proved by another implementation instead: mtools
 * writes and reads the file and fsck.vfat checks the volume.
 */
async function proveWritable(node: string, fsType: string): Promise<void> {
  if (fsType === 'vfat' && !(await readFile('/proc/filesystems', 'utf8')).includes('\tvfat')) {
    const text = `written to ${node} at ${Date.now()}`;
    const local = join(dir, 'proof.txt');
    await writeFile(local, text);
    const env = { MTOOLS_SKIP_CHECK: '1' };
    await run('mmd', ['-i', node, '::/imagepe-test'], { env });
    await run('mcopy', ['-i', node, local, '::/imagepe-test/proof.txt'], { env });
    expect((await run('mtype', ['-i', node, '::/imagepe-test/proof.txt'], { env })).stdout).toBe(text);
    await run('fsck.vfat', ['-n', node]);
    return;
  }
  const mnt = await mkdtemp(join(dir, 'mnt-'));
  const args = fsType === 'ntfs' ? ['-t', 'ntfs-3g', node, mnt] : ['-t', fsType, node, mnt];
  const text = `written to ${node} at ${Date.now()}`;
  await run('mount', args);
  try {
    await mkdir(join(mnt, 'imagepe-test'), { recursive: true });
    await writeFile(join(mnt, 'imagepe-test', 'proof.txt'), text);
  } finally {
    await run('umount', [mnt]);
  }
  await run('mount', args);
  try {
    expect(await readFile(join(mnt, 'imagepe-test', 'proof.txt'), 'utf8')).toBe(text);
  } finally {
    await run('umount', [mnt]);
  }
}

function expectTableMatches(table: SfdiskJson['partitiontable'], p: ResolvedLayout): void {
  const parts = table.partitions.filter((x) => !['5', 'f', '85'].includes(x.type));
  expect(parts.map((x) => ({ start: x.start, size: x.size }))).toEqual(p.partitions.map((x) => ({ start: x.start, size: x.size })));
}

describe('apply on disk image files', () => {
  it('writes a GPT disk with esp, bios-boot, root and swap, with fixed UUIDs, and releases the loop device', async () => {
    const path = await image('gpt.img', 1024 * MiB);
    const p = await planFor(path, {
      table: 'gpt',
      firmware: 'both',
      id: '5A0C3B8E-2D6F-4E43-9D1B-7A3C11D0E001',
      partitions: [
        { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', label: 'ESP', uuid: '1234-ABCD', mount: '/boot/efi' },
        { name: 'bios', size: '1MiB', type: 'bios-boot' },
        { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root', uuid: '0b5c7a46-1b4f-4c0e-9a55-3f1f0b2a7c01', partuuid: '6E1B7C1C-6F1E-4E4B-8F3C-0A1B2C3D4E5F', mount: '/' },
        { name: 'swap', size: '128MiB', type: 'linux-swap', format: 'swap', label: 'swap', uuid: '9d0e2f3a-4b5c-4d6e-8f70-112233445566', mount: 'swap' },
      ],
    });
    const events: ImagepeEvent[] = [];
    const result = await apply(p, { events: (e) => events.push(e) });

    expect(await loopsOf(path)).toBe('');
    expect(result.partitions.map((x) => x.fsType)).toEqual(['vfat', undefined, 'ext4', 'swap']);
    expect(events.filter((e) => e.type === 'step' && e.status === 'done').map((e) => (e as { step: string }).step)).toEqual(
      expect.arrayContaining(['write-table', 'format ESP', 'format root', 'verify']),
    );

    await withAttached(path, 512, async ({ loop, node }) => {
      const table = await sfdiskJson(loop);
      expect(table.label).toBe('gpt');
      expect(table.id).toBe('5A0C3B8E-2D6F-4E43-9D1B-7A3C11D0E001');
      expectTableMatches(table, p);
      expect(table.partitions.map((x) => x.type)).toEqual([
        'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
        '21686148-6449-6E6F-744E-656564454649',
        '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
      ]);
      expect(table.partitions.map((x) => x.name)).toEqual(['ESP', 'bios', 'root', 'swap']);
      expect(table.partitions[2]!.uuid).toBe('6E1B7C1C-6F1E-4E4B-8F3C-0A1B2C3D4E5F');
      for (const x of table.partitions) expect(x.start % 2048).toBe(0);
      // The swap partition comes after "rest", so rest ended where swap's MiB begins.
      expect(table.partitions[3]!.start + table.partitions[3]!.size).toBeLessThanOrEqual(p.totalSectors - 33);

      expect(await blkid(node(1))).toMatchObject({ TYPE: 'vfat', LABEL: 'ESP', UUID: '1234-ABCD', VERSION: 'FAT32' });
      expect((await blkid(node(2))).TYPE).toBeUndefined();
      expect(await blkid(node(3))).toMatchObject({ TYPE: 'ext4', LABEL: 'root', UUID: '0b5c7a46-1b4f-4c0e-9a55-3f1f0b2a7c01' });
      expect(await blkid(node(4))).toMatchObject({ TYPE: 'swap', LABEL: 'swap', UUID: '9d0e2f3a-4b5c-4d6e-8f70-112233445566' });
      await proveWritable(node(1), 'vfat');
      await proveWritable(node(3), 'ext4');
    });
  });

  it('writes an MBR disk with four primary partitions', async () => {
    const path = await image('mbr4.img', 256 * MiB);
    const p = await planFor(path, {
      table: 'mbr',
      firmware: 'bios',
      id: '0xdeadbeef',
      partitions: [
        { name: 'boot', size: '64MiB', type: 'linux', format: 'ext4', label: 'boot', flags: ['bootable'] },
        { name: 'data', size: '25%', type: '0x83', format: 'vfat', label: 'DATA' },
        { name: 'swap', size: '32MiB', type: 'linux-swap', format: 'swap' },
        { name: 'rest', size: 'rest', type: 'linux', format: 'ext4', label: 'rest' },
      ],
    });
    await apply(p);
    await withAttached(path, 512, async ({ loop, node }) => {
      const table = await sfdiskJson(loop);
      expect(table.label).toBe('dos');
      expect(table.id).toBe('0xdeadbeef');
      expect(table.partitions).toHaveLength(4);
      expectTableMatches(table, p);
      expect(table.partitions.map((x) => x.type)).toEqual(['83', '83', '82', '83']);
      expect(table.partitions.map((x) => x.bootable ?? false)).toEqual([true, false, false, false]);
      expect(await blkid(node(2))).toMatchObject({ TYPE: 'vfat', LABEL: 'DATA' });
      await proveWritable(node(1), 'ext4');
      await proveWritable(node(2), 'vfat');
      await proveWritable(node(4), 'ext4');
    });
  });

  it('writes an MBR disk with more than four partitions as three primaries, an extended one and logicals', async () => {
    const path = await image('mbr-logical.img', 1024 * MiB);
    const p = await planFor(path, {
      table: 'mbr',
      firmware: 'uefi',
      partitions: [
        { name: 'esp', size: '64MiB', type: 'esp', format: 'vfat', label: 'ESP', flags: ['bootable'] },
        { name: 'root', size: '128MiB', type: 'linux', format: 'ext4', label: 'root' },
        { name: 'var', size: '320MiB', type: 'linux', format: 'xfs', label: 'var' },
        { name: 'swap', size: '32MiB', type: 'linux-swap', format: 'swap', label: 'swap' },
        { name: 'home', size: '64MiB', type: 'linux-home', format: 'ext4', label: 'home' },
        { name: 'srv', size: 'rest', type: 'linux', format: 'ext4', label: 'srv' },
      ],
    });
    expect(p.extended).toBeDefined();
    await apply(p);
    await withAttached(path, 512, async ({ loop, node }) => {
      const table = await sfdiskJson(loop);
      expect(table.partitions.map((x) => [Number(/(\d+)$/.exec(x.node)![1]), x.type])).toEqual([
        [1, 'ef'],
        [2, '83'],
        [3, '83'],
        [4, '5'],
        [5, '82'],
        [6, '83'],
        [7, '83'],
      ]);
      expectTableMatches(table, p);
      const ext = table.partitions[3]!;
      for (const logical of table.partitions.slice(4)) {
        expect(logical.start).toBeGreaterThan(ext.start);
        expect(logical.start + logical.size).toBeLessThanOrEqual(ext.start + ext.size);
        expect(logical.start % 2048).toBe(0);
      }
      expect(await blkid(node(3))).toMatchObject({ TYPE: 'xfs', LABEL: 'var' });
      expect(await blkid(node(5))).toMatchObject({ TYPE: 'swap', LABEL: 'swap' });
      await proveWritable(node(3), 'xfs');
      await proveWritable(node(6), 'ext4');
      await proveWritable(node(7), 'ext4');
    });
  });

  it('writes a Windows layout with ESP, MSR, an NTFS system volume with a fixed serial, and recovery', async () => {
    const path = await image('windows.img', 512 * MiB);
    const p = await planFor(path, {
      table: 'gpt',
      partitions: [
        { name: 'EFI system partition', size: '100MiB', type: 'esp', format: 'vfat', label: 'SYSTEM' },
        { name: 'Microsoft reserved partition', size: '16MiB', type: 'msr' },
        { name: 'Basic data partition', size: 'rest', type: 'windows-basic', format: 'ntfs', label: 'Windows', uuid: '0123456789ABCDEF' },
        { name: 'Recovery', size: '64MiB', type: 'windows-recovery', format: 'ntfs', label: 'Recovery' },
      ],
    });
    const result = await apply(p);
    expect(result.partitions[2]).toMatchObject({ fsType: 'ntfs', label: 'Windows', uuid: '0123456789ABCDEF' });
    await withAttached(path, 512, async ({ loop, node }) => {
      const table = await sfdiskJson(loop);
      expectTableMatches(table, p);
      expect(table.partitions.map((x) => x.type)).toEqual([
        'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
        'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
        'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
        'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
      ]);
      expect((await blkid(node(2))).TYPE).toBeUndefined();
      expect(await blkid(node(3))).toMatchObject({ TYPE: 'ntfs', LABEL: 'Windows', UUID: '0123456789ABCDEF' });
      expect(await blkid(node(4))).toMatchObject({ TYPE: 'ntfs', LABEL: 'Recovery' });
      await proveWritable(node(3), 'ntfs');
      await proveWritable(node(1), 'vfat');
    });
  });

  it('writes a 4Kn disk: 4096-byte sectors, sectors counted in 4 KiB, FAT32 ESP of 260 MiB', async () => {
    const path = await image('4kn.img', 512 * MiB);
    const p = await planFor(
      path,
      {
        table: 'gpt',
        partitions: [
          { name: 'ESP', size: '260MiB', type: 'esp', format: 'vfat', label: 'ESP' },
          { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root' },
        ],
      },
      4096,
    );
    expect(p.partitions[0]!.start).toBe(256);
    await apply(p);
    await withAttached(path, 4096, async ({ loop, node }) => {
      const table = await sfdiskJson(loop);
      expect(table.sectorsize).toBe(4096);
      expectTableMatches(table, p);
      expect(table.partitions[0]!.start).toBe(256);
      expect(table.partitions[0]!.size).toBe((260 * MiB) / 4096);
      expect(await blkid(node(1))).toMatchObject({ TYPE: 'vfat', VERSION: 'FAT32', LABEL: 'ESP' });
      await proveWritable(node(1), 'vfat');
      await proveWritable(node(2), 'ext4');
    });
  });
});

describe('what apply refuses', () => {
  const layout = (wipe: boolean): LayoutInput => ({
    table: 'gpt',
    wipe,
    partitions: [
      { name: 'ESP', size: '40MiB', type: 'esp', format: 'vfat' },
      { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'newroot' },
    ],
  });

  it('refuses a disk that holds partitions unless wipe is set, naming what it holds, and wipes it when set', async () => {
    const path = await image('reuse.img', 128 * MiB);
    await apply(
      await planFor(path, {
        table: 'mbr',
        partitions: [
          { name: 'old', size: '32MiB', type: 'linux', format: 'ext4', label: 'oldroot' },
          { name: 'raw', size: '32MiB', type: 'linux' },
        ],
      }),
    );
    const refused = apply(await planFor(path, layout(false)));
    await expect(refused).rejects.toMatchObject({ code: 'REFUSED' });
    await expect(refused).rejects.toThrow(/MBR partition table with 2 partitions.*ext4 on \/dev\/loop\d+p1 labelled "oldroot"/s);
    expect(await loopsOf(path)).toBe('');

    await withAttached(path, 512, async ({ node }) => {
      expect(await blkid(node(1))).toMatchObject({ LABEL: 'oldroot' });
    });

    const result: Result = await apply(await planFor(path, layout(true)));
    expect(result.table).toBe('gpt');
    await withAttached(path, 512, async ({ loop, node }) => {
      expect((await sfdiskJson(loop)).label).toBe('gpt');
      expect(await blkid(node(2))).toMatchObject({ TYPE: 'ext4', LABEL: 'newroot' });
    });
  });

  it('refuses a disk with a filesystem directly on it, unless wipe is set', async () => {
    const path = await image('superfloppy.img', 64 * MiB);
    await run('mkfs.ext4', ['-q', '-F', '-L', 'whole', path]);
    await expect(apply(await planFor(path, layout(false)))).rejects.toThrow(/ext4 on the whole disk/);
    await apply(await planFor(path, layout(true)));
    await withAttached(path, 512, async ({ loop }) => {
      expect((await sfdiskJson(loop)).label).toBe('gpt');
    });
  });

  it('refuses a disk image that is attached elsewhere, and a disk with a mounted filesystem even with wipe set', async () => {
    const path = await image('busy.img', 128 * MiB);
    await apply(await planFor(path, layout(false)));
    await withAttached(path, 512, async ({ loop, node }) => {
      await expect(apply(await planFor(path, layout(true)))).rejects.toMatchObject({ code: 'DISK_IN_USE' });

      const mnt = await mkdtemp(join(dir, 'busy-'));
      await run('mount', [node(2), mnt]);
      try {
        const onDevice = resolveLayout(parseLayout(layout(true)), await describeDisk(loop));
        await expect(apply(onDevice)).rejects.toMatchObject({ code: 'DISK_IN_USE', message: expect.stringContaining(`${node(2)} on ${mnt}`) });
      } finally {
        await run('umount', [mnt]);
      }
      expect((await blkid(node(2))).LABEL).toBe('newroot');
    });
  });

  it('refuses a partition, which is not a whole disk', async () => {
    const path = await image('part.img', 128 * MiB);
    await apply(await planFor(path, layout(false)));
    await withAttached(path, 512, async ({ node }) => {
      const inner = resolveLayout(parseLayout({ ...layout(true), partitions: [{ name: 'x', size: 'rest', type: 'linux' }] }), await describeDisk(node(2)));
      await expect(apply(inner)).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('is a partition, not a disk') });
    });
  });

  it('refuses a plan made for a disk of another size', async () => {
    const path = await image('resized.img', 128 * MiB);
    const p = await planFor(path, layout(false));
    const fh = await open(path, 'r+');
    await fh.truncate(256 * MiB);
    await fh.close();
    await expect(apply(p)).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('not the disk the plan was made for') });
    expect(await loopsOf(path)).toBe('');
  });
});

describe('waiting for partition nodes where no udev runs', () => {
  it('makes the kernel show partitions it had dropped, and returns their device nodes', async () => {
    const path = await image('nodes.img', 128 * MiB);
    await apply(await planFor(path, { table: 'gpt', partitions: [{ name: 'a', size: '32MiB', type: 'linux' }, { name: 'b', size: 'rest', type: 'linux', format: 'ext4', label: 'b' }] }));
    await withAttached(path, 512, async ({ loop, node }) => {
      // Drop the kernel's partitions and their nodes: what a busybox PE sees before anyone reacts.
      await run('partx', ['--delete', loop]);
      await rm(node(1), { force: true });
      await rm(node(2), { force: true });
      const opts = (what: string) => ({ what, timeoutMs: 10_000 });
      const nodes = await waitForPartitions(loop, [1, 2], 2_000, opts);
      expect([...nodes.entries()]).toEqual([
        [1, node(1)],
        [2, node(2)],
      ]);
      expect((await stat(node(2))).isBlockDevice()).toBe(true);
      expect(await blkid(node(2))).toMatchObject({ TYPE: 'ext4', LABEL: 'b' });
    });
  });
});

describe('apply with LVM volume groups', () => {
  const layout: LayoutInput = {
    table: 'gpt',
    firmware: 'bios',
    partitions: [
      { name: 'bios', size: '1MiB', type: 'bios-boot' },
      { name: 'pv', size: 'rest', type: 'lvm', format: 'lvm' },
    ],
    volumeGroups: [{ name: 'imagepe-test-vg', physicalVolumes: ['pv'], logicalVolumes: [{ name: 'root', size: 'rest', format: 'ext4', mount: '/' }] }],
  };

  it('makes the group where the kernel has device-mapper, and otherwise refuses before writing a byte', async () => {
    const path = await image('lvm.img', 512 * MiB);
    const hasDm = (await readFile('/proc/misc', 'utf8')).includes(' device-mapper');
    const before = (await run('sha256sum', [path])).stdout.split(' ')[0];
    const applied = apply(await planFor(path, layout));
    if (!hasDm) {
      // This project's development host: its kernel is built without device-mapper (the PE's has it).
      await expect(applied).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringMatching(/^this kernel has no device-mapper/) });
      expect((await run('sha256sum', [path])).stdout.split(' ')[0]).toBe(before);
      expect(await loopsOf(path)).toBe('');
      return;
    }
    const r = await applied;
    expect(r.partitions.map((p) => [p.name, p.fsType, p.volumeGroup])).toEqual([
      ['bios', undefined, undefined],
      ['pv', 'LVM2_member', undefined],
      ['imagepe-test-vg/root', 'ext4', 'imagepe-test-vg'],
    ]);
    // The group was deactivated before the image was let go of.
    expect(await loopsOf(path)).toBe('');
  }, 120_000);
});
