import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, rmdir, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB, run } from '../core/index.js';
import { sparseFile } from '../test-support/tree.js';
import { currentNodes, filesystemBytes } from './grow.js';
import { apply, describeDisk, growToDisk, parseLayout, probeFilesystem, readTable, resolveLayout, withAttachedImage, type LayoutInput } from './index.js';

// Each case makes a small disk image with apply, writes a file into its root, copies the image
// sparsely into a larger file (a raw image written to a larger disk), grows it and reads back.

let dir: string;
const runOpts = (what: string) => ({ what, timeoutMs: 120_000 });
const CONTENT = Buffer.from(Array.from({ length: 3 * MiB }, (_, i) => (i * 7919) % 251));
const SHA = createHash('sha256').update(CONTENT).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-grow-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function mounted<T>(node: string, fsType: string, ro: boolean, body: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = await mkdtemp(join(dir, 'mnt-'));
  await run('mount', ['-t', fsType, '-o', ro ? (fsType === 'ext4' ? 'ro,noload' : 'ro') : 'rw', node, mnt]);
  try {
    return await body(mnt);
  } finally {
    await run('umount', [mnt]);
    await rmdir(mnt);
  }
}

/** A disk image made by apply with a 3 MiB file in partition `root`, copied sparsely into a file of `bigSize`. */
async function imageOnLargerDisk(name: string, size: number, bigSize: number, layout: LayoutInput, root: number, fsType: string): Promise<string> {
  const small = await sparseFile(join(dir, `${name}-small.img`), size);
  await apply(resolveLayout(parseLayout(layout), await describeDisk(small)));
  await withAttachedImage(small, async (loop) => {
    const nodes = await currentNodes(loop, [root], runOpts);
    await mounted(nodes.get(root)!, fsType, false, (mnt) => writeFile(join(mnt, 'kept.bin'), CONTENT));
  });
  const big = join(dir, `${name}.img`);
  await run('cp', ['--sparse=always', small, big]);
  await truncate(big, bigSize);
  await rm(small);
  return big;
}

async function readBack(image: string, root: number, fsType: string) {
  return withAttachedImage(image, async (loop) => {
    const table = (await readTable(loop, runOpts))!;
    const numbers = table.partitions!.map((p) => Number(/(\d+)$/.exec(p.node)![1]));
    const nodes = await currentNodes(loop, numbers, runOpts);
    const verify = table.label === 'gpt' ? (await run('sgdisk', ['-v', loop])).stdout : '';
    const fsBytes = await filesystemBytes(nodes.get(root)!, fsType, runOpts);
    const kept = await mounted(nodes.get(root)!, fsType, true, async (mnt) => createHash('sha256').update(await readFile(join(mnt, 'kept.bin'))).digest('hex'));
    const probes = new Map<number, Record<string, string>>();
    for (const n of numbers) probes.set(n, await probeFilesystem(nodes.get(n)!, runOpts));
    const dump = (await run('sfdisk', ['--dump', loop])).stdout.replace(/^device: .*$/m, '').replace(/\/dev\/loop\d+/g, 'DISK');
    return { table, verify, fsBytes, kept, probes, dump };
  });
}

describe('growToDisk', () => {
  it('moves the backup GPT, moves the trailing swap with its UUID and grows ext4 root to fill a 1 GiB disk', async () => {
    const swapUuid = '9d0e2f3a-4b5c-4d6e-8f70-112233445566';
    const image = await imageOnLargerDisk('gpt-ext4', 256 * MiB, 1024 * MiB, {
      table: 'gpt',
      partitions: [
        { name: 'ESP', size: '40MiB', type: 'esp', format: 'vfat' },
        { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root' },
        { name: 'swap', size: '32MiB', type: 'linux-swap', format: 'swap', label: 'swp', uuid: swapUuid },
      ],
    }, 2, 'ext4');
    const before = await withAttachedImage(image, async (loop) => (await readTable(loop, runOpts))!);

    const r = await growToDisk(image);
    expect(r).toMatchObject({ backupHeaderMoved: true, partition: 2, fsType: 'ext4', filesystemGrown: true, fromBytes: (256 - 1 - 40 - 32 - 1) * MiB });
    const swapStart = (1024 - 1 - 32) * 2048;
    expect(r.movedSwap).toEqual([{ number: 3, uuid: swapUuid, fromStart: before.partitions![2]!.start, toStart: swapStart }]);
    expect(r.toBytes).toBe(swapStart * 512 - 41 * MiB);

    const back = await readBack(image, 2, 'ext4');
    expect(back.verify).toContain('No problems found');
    expect(back.table.partitions!.map((p) => [p.start, p.size, p.type, p.uuid, p.name])).toEqual([
      [before.partitions![0]!.start, before.partitions![0]!.size, before.partitions![0]!.type, before.partitions![0]!.uuid, 'ESP'],
      [41 * 2048, r.toBytes / 512, before.partitions![1]!.type, before.partitions![1]!.uuid, 'root'],
      [swapStart, 32 * 2048, before.partitions![2]!.type, before.partitions![2]!.uuid, 'swap'],
    ]);
    expect(back.fsBytes).toBeLessThanOrEqual(r.toBytes);
    expect(back.fsBytes).toBeGreaterThan(r.toBytes - 4 * MiB);
    expect(back.kept).toBe(SHA);
    expect(back.probes.get(3)).toMatchObject({ TYPE: 'swap', UUID: swapUuid, LABEL: 'swp' });

    // The same disk again: nothing to do, the table not touched.
    const again = await growToDisk(image);
    expect(again).toMatchObject({ backupHeaderMoved: false, filesystemGrown: false, movedSwap: [], fromBytes: r.toBytes, toBytes: r.toBytes });
    expect(again.notes.join(' ')).toContain('nothing to grow');
    expect((await readBack(image, 2, 'ext4')).dump).toBe(back.dump);
  }, 300_000);

  it('grows an xfs root that is the last partition', async () => {
    // mkfs.xfs makes nothing under 300 MB.
    const image = await imageOnLargerDisk('gpt-xfs', 400 * MiB, 1024 * MiB, {
      table: 'gpt',
      partitions: [
        { name: 'ESP', size: '40MiB', type: 'esp', format: 'vfat' },
        { name: 'root', size: 'rest', type: 'linux', format: 'xfs' },
      ],
    }, 2, 'xfs');
    const r = await growToDisk(image);
    expect(r).toMatchObject({ backupHeaderMoved: true, partition: 2, fsType: 'xfs', filesystemGrown: true, movedSwap: [], toBytes: (1024 - 1 - 41) * MiB });
    const back = await readBack(image, 2, 'xfs');
    expect(back.verify).toContain('No problems found');
    expect(back.fsBytes).toBe(r.toBytes);
    expect(back.kept).toBe(SHA);
  }, 300_000);

  it('grows a btrfs root that is the last partition', async () => {
    const image = await imageOnLargerDisk('gpt-btrfs', 256 * MiB, 768 * MiB, {
      table: 'gpt',
      partitions: [
        { name: 'bios', size: '1MiB', type: 'bios-boot' },
        { name: 'root', size: 'rest', type: 'linux', format: 'btrfs' },
      ],
    }, 2, 'btrfs');
    const r = await growToDisk(image);
    expect(r).toMatchObject({ partition: 2, fsType: 'btrfs', filesystemGrown: true, toBytes: (768 - 1 - 2) * MiB });
    const back = await readBack(image, 2, 'btrfs');
    expect(back.fsBytes).toBe(r.toBytes);
    expect(back.kept).toBe(SHA);
  }, 300_000);

  it('grows the last MBR primary past a swap primary', async () => {
    const image = await imageOnLargerDisk('mbr-ext4', 256 * MiB, 512 * MiB, {
      table: 'mbr',
      partitions: [
        { name: 'root', size: 'rest', type: 'linux', format: 'ext4' },
        { name: 'swap', size: '16MiB', type: 'linux-swap', format: 'swap' },
      ],
    }, 1, 'ext4');
    const swapUuid = (await withAttachedImage(image, async (loop) => probeFilesystem((await currentNodes(loop, [1, 2], runOpts)).get(2)!, runOpts))).UUID;
    const r = await growToDisk(image);
    expect(r).toMatchObject({ backupHeaderMoved: false, partition: 1, fsType: 'ext4', filesystemGrown: true });
    expect(r.movedSwap).toEqual([expect.objectContaining({ number: 2, uuid: swapUuid, toStart: (512 - 16) * 2048 })]);
    const back = await readBack(image, 1, 'ext4');
    expect(back.table.partitions![0]!.size * 512).toBe(r.toBytes);
    expect(r.toBytes).toBe((512 - 16 - 1) * MiB);
    expect(back.fsBytes).toBeGreaterThan(r.toBytes - 4 * MiB);
    expect(back.kept).toBe(SHA);
    expect(back.probes.get(2)).toMatchObject({ TYPE: 'swap', UUID: swapUuid });
  }, 300_000);

  it('refuses a named partition with a data partition after it, and leaves the disk untouched', async () => {
    const image = await imageOnLargerDisk('gpt-refused', 256 * MiB, 512 * MiB, {
      table: 'gpt',
      partitions: [
        { name: 'root', size: '128MiB', type: 'linux', format: 'ext4' },
        { name: 'data', size: 'rest', type: 'linux', format: 'ext4', label: 'data' },
      ],
    }, 1, 'ext4');
    const sum = async () => createHash('sha256').update(await readFile(image)).digest('hex');
    const before = await sum();
    await expect(growToDisk(image, { partition: 1 })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('partition 2 "data" (ext4') });
    expect(await sum()).toBe(before);
  }, 300_000);
});
