import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB, run, type ImagepeEvent } from '../core/index.js';
import { attachImageFile, detachLoop } from '../partition/index.js';
import { removeDir, tempDir } from '../test-support/tree.js';
import { partitionNode } from '../test-support/disk-image.js';
import { alignedBuffers } from './aligned.js';
import { DeviceIo } from './device.js';
import { burn, planBurn, type BurnResult, type PlanBurnOptions } from './index.js';
import { planBlocks } from './plan.js';
import { verifyBlocks } from './verify.js';
import { writeBlocks } from './write.js';

// Every target is a loop device over a file in a temp dir. Loop devices are never removable, so
// the tests that burn name theirs in treatAsRemovable (the library's test hook); one test shows
// the refusal without it.

const DEVICE_BYTES = 64 * MiB;
const PATTERN = 0xa5;
let dir: string;
const loops: string[] = [];
const mounts: string[] = [];

beforeAll(async () => {
  dir = await tempDir('burn');
});

afterAll(async () => {
  for (const m of mounts) await run('umount', [m]).catch(() => undefined);
  for (const l of loops) await detachLoop(l).catch(() => undefined);
  await removeDir(dir);
}, 60_000);

/** A new loop device over a file of `size` bytes, every byte PATTERN (the old stick's contents). */
async function device(name: string, size = DEVICE_BYTES): Promise<string> {
  const file = join(dir, `${name}.dev`);
  await writeFile(file, Buffer.alloc(size, PATTERN));
  const loop = await attachImageFile(file);
  loops.push(loop);
  return loop;
}

/** The device's bytes as the device gives them, its page cache dropped first. */
async function deviceBytes(loop: string): Promise<Buffer> {
  await run('blockdev', ['--flushbufs', loop]);
  return readFile(loop);
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** Writes `length` bytes of 0x5a at `offset` through a second, buffered handle, and syncs them to the device. */
function corrupt(loop: string, offset: number, length = 4096): void {
  const fd = openSync(loop, 'r+');
  try {
    writeSync(fd, Buffer.alloc(length, 0x5a), 0, length, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A dense image of random bytes whose size is not a whole number of sectors. */
async function denseImage(name: string, size = 24 * MiB + 1234): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, randomBytes(size));
  return path;
}

/** A 40 MiB sparse image: data at 3-5 MiB, 4 KiB at 20 MiB, 1 MiB at 32 MiB, and holes around them. */
async function sparseImage(name: string): Promise<{ path: string; data: [number, number][] }> {
  const path = join(dir, name);
  const data: [number, number][] = [
    [3 * MiB, 2 * MiB],
    [20 * MiB, 4096],
    [32 * MiB, MiB],
  ];
  await writeFile(path, '');
  await truncate(path, 40 * MiB);
  const fh = await open(path, 'r+');
  for (const [at, length] of data) await fh.write(randomBytes(length), 0, length, at);
  await fh.close();
  return { path, data };
}

const removable = (loop: string, more: PlanBurnOptions = {}): PlanBurnOptions => ({ treatAsRemovable: [loop], ...more });

async function burnTo(image: string, loop: string, options: PlanBurnOptions = {}, events?: (e: ImagepeEvent) => void): Promise<BurnResult> {
  return burn(await planBurn(image, loop, removable(loop, options)), events ? { events } : {});
}

describe('burn to a loop device', () => {
  it('writes a dense image byte for byte with O_DIRECT, zeros the device end, and reports sha256 and timings', async () => {
    const loop = await device('dense');
    const image = await denseImage('dense.img');
    const events: ImagepeEvent[] = [];
    const r = await burnTo(image, loop, {}, (e) => events.push(e));

    const img = await readFile(image);
    const dev = await deviceBytes(loop);
    expect(dev.subarray(0, img.length).equals(img)).toBe(true);
    // The rest of the image's last sector and what follows up to the last MiB keep the old bytes.
    expect(dev.subarray(img.length, DEVICE_BYTES - MiB).every((b) => b === PATTERN)).toBe(true);
    expect(dev.subarray(DEVICE_BYTES - MiB).every((b) => b === 0)).toBe(true);
    expect(r).toMatchObject({ sha256: await sha256Of(image), directIo: true, bytesSkipped: 0, imageBytes: img.length, rewrites: 0, clearedEnd: { offset: DEVICE_BYTES - MiB, length: MiB } });
    expect(r.bytesWritten).toBe(img.length + MiB);
    expect(r.writeSeconds).toBeGreaterThan(0);
    expect(r.verifyMiBps).toBeGreaterThan(0);
    const phases = new Set(events.filter((e) => e.type === 'progress').map((e) => (e as { phase: string }).phase));
    expect([...phases]).toEqual(['write', 'verify']);
    expect(events.filter((e) => e.type === 'progress' && e.phase === 'verify').at(-1)).toMatchObject({ done: r.bytesWritten, total: r.bytesWritten, unit: 'bytes', operation: 'burn' });
  }, 60_000);

  it("does not write a sparse image's holes but reads them back: old bytes there are zeroed, zeros left alone; the sha256 is sha256sum's", async () => {
    const loop = await device('sparse');
    const { path, data } = await sparseImage('sparse.img');
    const dataBytes = 3 * MiB + 4096;
    const holeBytes = 40 * MiB - dataBytes;
    // The device was filled with PATTERN: every hole holds old data, as a used stick does.
    const r = await burnTo(path, loop);
    const img = await readFile(path);
    const dev = await deviceBytes(loop);
    expect(dev.subarray(0, 40 * MiB).equals(img)).toBe(true);
    for (const [at, length] of data) expect(img.subarray(at, at + length).some((b) => b !== 0)).toBe(true);
    expect(r.sha256).toBe((await run('sha256sum', [path])).stdout.split(' ')[0]);
    expect(r.bytesSkipped).toBe(holeBytes);
    expect(r.zeroedBytes).toBe(holeBytes);
    expect(r.bytesWritten).toBe(dataBytes + MiB + holeBytes);
    expect(r.rewrites).toBe(0);

    // Burnt again, the holes read back as zeros already: only the data (and the cleared end) is written.
    const again = await burnTo(path, loop);
    expect(again.zeroedBytes).toBe(0);
    expect(again.bytesWritten).toBe(dataBytes + MiB);
    expect((await deviceBytes(loop)).subarray(0, 40 * MiB).equals(img)).toBe(true);
  }, 60_000);

  it('writes the holes as zeros with sparse: false (--no-sparse)', async () => {
    const loop = await device('nosparse');
    const { path } = await sparseImage('nosparse.img');
    const r = await burnTo(path, loop, { sparse: false });
    const img = await readFile(path);
    expect((await deviceBytes(loop)).subarray(0, img.length).equals(img)).toBe(true);
    expect(r.bytesSkipped).toBe(0);
  }, 60_000);

  it('refuses a non-removable loop device without the override and touches nothing; --force naming it lets it through', async () => {
    const loop = await device('fixed');
    const image = await denseImage('fixed.img', 4 * MiB);
    await expect(planBurn(image, loop)).rejects.toMatchObject({ code: 'REFUSED', message: `not burning to ${loop}: it is not removable (no transport, RM=0)`, hint: expect.stringContaining(`--force ${loop}`) });
    await expect(planBurn(image, loop, { force: '/dev/loop-none' })).rejects.toMatchObject({ code: 'REFUSED' });
    expect((await deviceBytes(loop)).every((b) => b === PATTERN)).toBe(true);
    const plan = await planBurn(image, loop, { force: loop });
    expect(plan.target).toMatchObject({ device: loop, removable: false, sizeBytes: DEVICE_BYTES });
  }, 60_000);

  it('refuses a device smaller than the image with NO_SPACE and both sizes', async () => {
    const loop = await device('small', 2 * MiB);
    const image = await denseImage('big.img', 3 * MiB);
    await expect(planBurn(image, loop, removable(loop))).rejects.toMatchObject({
      code: 'NO_SPACE',
      message: `not burning to ${loop}: it holds 2.00 MiB (${2 * MiB} bytes) and the image is 3.00 MiB (${3 * MiB} bytes)`,
    });
  }, 60_000);

  it('describes a disk with a mounted partition, refuses it as in use, and refuses the disk the image is stored on', async () => {
    const loop = await device('mounted');
    await run('sfdisk', ['--quiet', loop], { input: 'label: gpt\n,8M\n,\n' });
    await run('partx', ['--update', loop], { okExitCodes: [0, 1] });
    const part = await partitionNode(loop, 2);
    await run('mkfs.ext4', ['-q', '-L', 'olddata', part]);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await run('mount', ['-t', 'ext4', part, mnt]);
    mounts.push(mnt);
    const image = await denseImage('elsewhere.img', 4 * MiB);

    const e = await planBurn(image, loop, removable(loop)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'DISK_IN_USE', message: `not burning to ${loop}: it is in use: ${part} on ${mnt}` });

    const inside = join(mnt, 'inside.img');
    await writeFile(inside, randomBytes(MiB));
    const e2 = await planBurn(inside, loop, removable(loop)).catch((x: unknown) => x);
    expect(e2).toMatchObject({ code: 'REFUSED', message: `not burning to ${loop}:\n  - the image file itself is stored on it\n  - it is in use: ${part} on ${mnt}` });

    const { describeTarget } = await import('./index.js');
    expect(await describeTarget(loop)).toMatchObject({
      device: loop,
      partitionTable: 'gpt',
      partitions: [
        { path: `${loop}p1`, sizeBytes: 8 * MiB, mountPoints: [] },
        { path: part, fsType: 'ext4', label: 'olddata', mountPoints: [mnt] },
      ],
    });
    await run('umount', [mnt]);
    mounts.pop();
  }, 60_000);

  it('refuses the boot medium, even through a link', async () => {
    const loop = await device('bootmedium');
    const link = join(dir, 'medium-link');
    await run('ln', ['-s', loop, link]);
    const image = await denseImage('pe.img', MiB);
    await expect(planBurn(image, loop, removable(loop, { bootMedia: [link] }))).rejects.toMatchObject({ code: 'REFUSED', message: `not burning to ${loop}: it is the boot medium this environment started from` });
  }, 60_000);

  it('rewrites a block that reads back wrong once, and ends with the right bytes', async () => {
    const loop = await device('flaky');
    const image = await denseImage('flaky.img');
    let corrupted = false;
    const r = await burnTo(image, loop, {}, (e) => {
      // The verify phase has begun (the cache is dropped): the medium now "forgets" part of block 2.
      if (e.type === 'progress' && e.phase === 'verify' && e.done === 0 && !corrupted) {
        corrupt(loop, 8 * MiB + 4096);
        corrupted = true;
      }
    });
    expect(corrupted).toBe(true);
    expect(r.rewrites).toBe(1);
    expect(r.rewrittenOffsets).toEqual([8 * MiB]);
    const img = await readFile(image);
    expect((await deviceBytes(loop)).subarray(0, img.length).equals(img)).toBe(true);
  }, 60_000);

  it('fails with VERIFY_FAILED naming the offset when a block reads back wrong after every rewrite', async () => {
    const loop = await device('broken');
    const image = await denseImage('broken.img');
    let rewrites = 0;
    const e = await burnTo(image, loop, {}, (ev) => {
      if (ev.type !== 'progress') return;
      if ((ev.phase === 'verify' && ev.done === 0) || ev.phase === 'rewrite') corrupt(loop, 12 * MiB);
      if (ev.phase === 'rewrite') rewrites++;
    }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VERIFY_FAILED', message: `${loop} does not hold what was written: the block at offset ${12 * MiB} (4.00 MiB at 12.0 MiB) still read back wrong after 3 rewrites each` });
    expect(rewrites).toBe(3);
  }, 60_000);

  it('fails with VERIFY_FAILED when the image does not have the sha256 of IMAGE.sha256, and reports the one it matched', async () => {
    const loop = await device('checksum');
    const image = await denseImage('sum.img', 2 * MiB);
    await writeFile(`${image}.sha256`, `${'0'.repeat(64)}  sum.img\n`);
    await expect(burnTo(image, loop)).rejects.toMatchObject({ code: 'VERIFY_FAILED', message: expect.stringContaining(`not ${'0'.repeat(64)} (from ${image}.sha256)`) });
    const sha = await sha256Of(image);
    await writeFile(`${image}.sha256`, `${sha}  sum.img\n`);
    expect((await burnTo(image, loop)).expectedSha256).toEqual({ hex: sha, source: `${image}.sha256` });
  }, 60_000);

  it('stops between blocks on cancel, releases the device and says the stick is incomplete', async () => {
    const loop = await device('cancel');
    const image = await denseImage('cancel.img');
    const controller = new AbortController();
    const plan = await planBurn(image, loop, removable(loop));
    const e = await burn(plan, {
      signal: controller.signal,
      events: (ev) => {
        if (ev.type === 'progress' && ev.phase === 'write' && ev.done > 0) controller.abort();
      },
    }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'CANCELLED', message: expect.stringMatching(/was cancelled after 4\.00 MiB of .* were written: the stick is incomplete/) });
    // Released: an exclusive open (which fails while anyone holds one) succeeds.
    const fh = await open(loop, constants.O_RDONLY | constants.O_EXCL);
    await fh.close();
  }, 60_000);
});

describe('aligned memory for O_DIRECT', () => {
  it('is taken by a loop device for direct writes and reads, where the same memory 16 bytes off is refused', async () => {
    const loop = await device('aligned', 4 * MiB);
    const [a, b] = alignedBuffers(2, MiB) as [Buffer, Buffer];
    randomBytes(MiB).copy(a);
    const fh = await open(loop, constants.O_RDWR | constants.O_DIRECT);
    try {
      expect((await fh.write(a, 0, MiB, MiB)).bytesWritten).toBe(MiB);
      expect((await fh.read(b, 0, MiB, MiB)).bytesRead).toBe(MiB);
      expect(b.equals(a)).toBe(true);
      // Where a Buffer's own memory usually starts (malloc's 16-byte header past a page): EINVAL.
      await expect(fh.write(a.subarray(16, 16 + 4096), 0, 4096, 0)).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      await fh.close();
    }
  }, 30_000);
});

describe('the write engine on a target without O_DIRECT', () => {
  it('falls back to buffered writes and fdatasync, says so, and still verifies every block', async () => {
    const ram = join(dir, 'ramfs');
    await mkdir(ram);
    // ramfs has no direct I/O at all: open(O_DIRECT) fails with EINVAL there (tmpfs has it since Linux 6.6).
    await run('mount', ['-t', 'ramfs', 'ramfs', ram]);
    mounts.push(ram);
    const target = join(ram, 'stick');
    await writeFile(target, Buffer.alloc(16 * MiB, PATTERN));
    const image = await denseImage('ram.img', 5 * MiB + 100);
    const io = await DeviceIo.open(target);
    const fh = await open(image, 'r');
    try {
      expect(io.directIo).toBe(false);
      expect(io.fallbackReason).toMatch(/refused O_DIRECT when opened \(EINVAL\); written through the page cache and fdatasync instead/);
      const plan = planBlocks({ imageSize: 5 * MiB + 100, extents: [{ offset: 0, length: 5 * MiB + 100 }], blockSize: MiB, sectorSize: 512, deviceSize: 16 * MiB });
      const phase = { image: fh, imagePath: image, imageSize: 5 * MiB + 100, plan, io, sectorSize: 512, buffers: alignedBuffers(3, MiB), zeros: Buffer.alloc(MiB), events: () => {} };
      const written = await writeBlocks(phase);
      expect(written.sha256).toBe(await sha256Of(image));
      expect((await verifyBlocks(phase, written.checks, 3)).bytesVerified).toBe(5 * MiB + 100 + MiB);
    } finally {
      await fh.close();
      await io.close();
    }
    const img = await readFile(image);
    const dev = await readFile(target);
    expect(dev.subarray(0, img.length).equals(img)).toBe(true);
    expect(dev.subarray(15 * MiB).every((b) => b === 0)).toBe(true);
    await run('umount', [ram]);
    mounts.pop();
    await rm(ram, { recursive: true });
  }, 60_000);
});
