import { jest } from '@jest/globals';
import { link, mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/index.js';
import { allocatedBytes, removeDir, sparseFile, tempDir } from '../test-support/tree.js';
import { measureTree } from './source-size.js';
import * as wim from './index.js';

// Jest takes testTimeout from the root config only, not from the integration project.
jest.setTimeout(120_000);

const GiB = 1024 ** 3;

describe('measureTree', () => {
  it('sums allocated and apparent bytes in nested directories, counts a hard-linked inode once and does not follow links', async () => {
    const root = await tempDir('size');
    try {
      for (let d = 0; d < 40; d++) {
        await mkdir(join(root, `d${d}/sub`), { recursive: true });
        await writeFile(join(root, `d${d}/sub/f`), Buffer.alloc(1000 + d));
      }
      await writeFile(join(root, 'big'), Buffer.alloc(100_000));
      await link(join(root, 'big'), join(root, 'big-again'));
      await symlink('/usr', join(root, 'usr-link'));
      let allocated = 0;
      for (let d = 0; d < 40; d++) allocated += await allocatedBytes(join(root, `d${d}/sub/f`));
      allocated += await allocatedBytes(join(root, 'big'));
      expect(await measureTree(root)).toEqual({ bytes: allocated, apparentBytes: 40 * 1000 + (39 * 40) / 2 + 100_000, files: 43, directories: 81 });
    } finally {
      await removeDir(root);
    }
  });

  it('counts a 400 GiB sparse file (a VM disk image) by the blocks it uses, not its length', async () => {
    const root = await tempDir('sparse-size');
    try {
      await sparseFile(join(root, 'vm.img'), 400 * GiB);
      const fh = await open(join(root, 'vm.img'), 'r+');
      await fh.write(Buffer.alloc(8192, 1), 0, 8192, 200 * GiB);
      await fh.close();
      await link(join(root, 'vm.img'), join(root, 'vm-link.img'));
      const size = await measureTree(root);
      expect(size.apparentBytes).toBe(400 * GiB);
      expect(size.bytes).toBe(await allocatedBytes(join(root, 'vm.img')));
      expect(size.bytes).toBeLessThan(1024 * 1024);
    } finally {
      await removeDir(root);
    }
  });
});

// The instance: a tree of a few KiB on disk holding a 400 GiB sparse file was refused
// ("not enough free space, 200 GiB needed"). Destinations here are small tmpfs mounts.
describe('free-space estimates of sparse files', () => {
  let work: string;
  const mounts: string[] = [];
  beforeAll(async () => {
    work = await tempDir('sparse');
  });
  afterAll(async () => {
    for (const m of mounts.reverse()) await run('umount', [m]).catch(() => undefined);
    await removeDir(work);
  });
  async function smallFs(name: string, mib: number): Promise<string> {
    const dir = join(work, name);
    await mkdir(dir);
    await run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  it('capture of a 400 GiB sparse file into 32 MiB starts instead of asking for 200 GiB', async () => {
    const src = join(work, 'big-src');
    await mkdir(src);
    await sparseFile(join(src, 'lastlog'), 400 * GiB);
    const dest = await smallFs('dest-400', 32);
    const stop = new AbortController();
    // Once wimlib reports progress the estimate has passed; reading 400 GiB of holes is not the point.
    const r = wim.capture(src, join(dest, 'big.wim'), { events: (e) => e.type === 'progress' && stop.abort(), signal: stop.signal });
    await expect(r).rejects.toMatchObject({ code: 'CANCELLED' });
    // With compression none wimlib writes the holes out as zeros, so the estimate is honest about it.
    await expect(wim.capture(src, join(dest, 'none.wim'), { compression: 'none' })).rejects.toMatchObject({ code: 'NO_SPACE', message: expect.stringContaining('400 GiB') });
  });

  it('captures and applies a 256 MiB sparse file within 32 MiB each way (the old estimates: 128 MiB and 256 MiB); it stays sparse and reads back', async () => {
    const src = join(work, 'src');
    await mkdir(src);
    const size = 256 * 1024 * 1024;
    await sparseFile(join(src, 'disk.img'), size);
    const fh = await open(join(src, 'disk.img'), 'r+');
    const marker = Buffer.from('data in the middle of the holes');
    await fh.write(marker, 0, marker.length, size / 2);
    await fh.close();
    await writeFile(join(src, 'small'), 'small file\n');
    const dest = await smallFs('dest', 32);
    const r = await wim.capture(src, join(dest, 'sparse.wim'), { compression: 'xpress' });
    expect(r.image.totalBytes).toBeGreaterThanOrEqual(size);
    expect(Number(await wim.imageProperty(r.wimPath, 1, wim.ALLOCATED_BYTES_PROPERTY))).toBeLessThan(1024 * 1024);
    const target = await smallFs('target', 32);
    await wim.apply(r.wimPath, 1, join(target, 'out'));
    expect(await allocatedBytes(join(target, 'out/disk.img'))).toBeLessThan(1024 * 1024);
    const back = await open(join(target, 'out/disk.img'), 'r');
    const got = Buffer.alloc(marker.length);
    await back.read(got, 0, marker.length, size / 2);
    const st = await back.stat();
    await back.close();
    expect(got).toEqual(marker);
    expect(st.size).toBe(size);
  }, 180_000);
});
