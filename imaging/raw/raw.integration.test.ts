import { jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ImagepeError, MiB, run } from '../../core/index.js';
import { attachImageFile, detachLoop } from '../../partition/index.js';
import { removeDir, tempDir } from '../../test-support/tree.js';
import { probeRawImage, writeRawImage, type RawFormat, type WriteRawOptions, type WriteRawResult } from './index.js';

// Every target is a loop device over a file in a temp dir, filled with OLD bytes first (the
// disk's previous system). The image: 24 MiB with random data, a 4 MiB run of written zeros
// (mapped by bmaptool, yet all zeros) and holes (unmapped):
//   [0, 1M) data · [1M, 4M) hole · [4M, 8M) written zeros · [8M, 10M) data · [10M, 20M) hole
//   · [20M, 20M + 12K) data · hole to 24M

jest.setTimeout(120_000);

const IMAGE_BYTES = 24 * MiB;
const DEVICE_BYTES = 32 * MiB;
const OLD = 0xaa;
let dir: string;
let image: string;
let imageSha: string;
const loops: string[] = [];

beforeAll(async () => {
  dir = await tempDir('raw');
  image = join(dir, 'disk.img');
  const fh = await open(image, 'w');
  await fh.truncate(IMAGE_BYTES);
  await fh.write(randomBytes(MiB), 0, MiB, 0);
  await fh.write(Buffer.alloc(4 * MiB), 0, 4 * MiB, 4 * MiB);
  await fh.write(randomBytes(2 * MiB), 0, 2 * MiB, 8 * MiB);
  await fh.write(randomBytes(12 * 1024), 0, 12 * 1024, 20 * MiB);
  await fh.close();
  imageSha = await sha256Of(image);
}, 60_000);

afterAll(async () => {
  for (const l of loops) await detachLoop(l).catch(() => undefined);
  await removeDir(dir);
}, 60_000);

async function sha256Of(file: string, length?: number): Promise<string> {
  const data = await readFile(file);
  return createHash('sha256').update(length === undefined ? data : data.subarray(0, length)).digest('hex');
}

/** A loop device over `<name>.dev`, every byte OLD; returns the device and its backing file. */
async function device(name: string, size = DEVICE_BYTES): Promise<{ loop: string; file: string }> {
  const file = join(dir, `${name}.dev`);
  await writeFile(file, Buffer.alloc(size, OLD));
  const loop = await attachImageFile(file);
  loops.push(loop);
  return { loop, file };
}

/** The device's bytes as the device gives them, its page cache dropped first. */
async function deviceBytes(loop: string): Promise<Buffer> {
  await run('blockdev', ['--flushbufs', loop]);
  return readFile(loop);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Makes `disk.img.<format>` (or .qcow2) beside the image, once. */
const made = new Map<RawFormat, string>();
async function encoded(format: RawFormat): Promise<string> {
  if (format === 'raw') return image;
  const have = made.get(format);
  if (have) return have;
  const out = format === 'qcow2' ? join(dir, 'disk.qcow2') : `${image}.${format}`;
  if (format === 'zst') await run('zstd', ['-q', '-3', '-f', image, '-o', out]);
  if (format === 'xz') await run('xz', ['-k', '-1', '-f', '-T0', image]);
  if (format === 'gz') await run('gzip', ['-k', '-1', '-f', image]);
  if (format === 'qcow2') await run('qemu-img', ['convert', '-O', 'qcow2', image, out]);
  made.set(format, out);
  return out;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<ImagepeError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ImagepeError);
  expect((e as ImagepeError).code).toBe(code);
  return e as ImagepeError;
}

function write(opts: Partial<WriteRawOptions> & Pick<WriteRawOptions, 'source' | 'device'>): Promise<WriteRawResult> {
  return writeRawImage({ bmap: 'none', ...opts });
}

describe('writeRawImage, each format', () => {
  it.each<RawFormat>(['raw', 'zst', 'xz', 'gz', 'qcow2'])('%s: the device holds the image; old bytes where it has zeros are zeroed', async (format) => {
    const source = await encoded(format);
    const { loop } = await device(`fmt-${format}`);
    const r = await write({ source: { kind: 'file', path: source }, device: loop });
    const bytes = await deviceBytes(loop);
    expect(sha(bytes.subarray(0, IMAGE_BYTES))).toBe(imageSha);
    // Past the image the disk is not touched.
    expect(bytes.subarray(IMAGE_BYTES).every((b) => b === OLD)).toBe(true);
    expect(r).toMatchObject({ format, imageBytes: IMAGE_BYTES, sha256: await sha256Of(source), rewrites: [], bmapFrom: undefined });
    expect(r.sourceBytes).toBe((await readFile(source)).length);
    expect(r.zeroedBytes).toBeGreaterThan(0);
    if (format !== 'qcow2') {
      // Zero blocks are read back and zeroed, not written in the first pass: 3 of 6 blocks hold data.
      expect(r.skippedBytes).toBe(12 * MiB);
      expect(r.zeroedBytes).toBe(12 * MiB);
      expect(r.writtenBytes).toBe(24 * MiB);
    }
  });

  it('a device that already holds zeros there: zero blocks are neither written nor zeroed', async () => {
    const { loop, file } = await device('zeros');
    await writeFile(file, Buffer.alloc(DEVICE_BYTES));
    const r = await write({ source: { kind: 'file', path: await encoded('zst') }, device: loop });
    expect(r).toMatchObject({ writtenBytes: 12 * MiB, skippedBytes: 12 * MiB, zeroedBytes: 0 });
    expect(sha((await deviceBytes(loop)).subarray(0, IMAGE_BYTES))).toBe(imageSha);
  });
});

describe('probeRawImage', () => {
  it.each<RawFormat>(['raw', 'zst', 'xz', 'qcow2'])('%s: knows the image size', async (format) => {
    const p = await probeRawImage({ kind: 'file', path: await encoded(format) }, { bmap: 'none' });
    expect(p).toMatchObject({ format, imageBytes: IMAGE_BYTES, bmap: undefined });
  });

  it('gz: the size is unknown', async () => {
    expect((await probeRawImage({ kind: 'file', path: await encoded('gz') })).imageBytes).toBeUndefined();
  });
});

describe('bmap', () => {
  it('is found beside the image; unmapped ranges keep the old bytes, zero blocks of mapped ranges are zeroed', async () => {
    const bmapPath = `${image}.bmap`;
    await writeFile(bmapPath, (await run('bmaptool', ['create', image])).stdout);
    try {
      const { loop } = await device('bmap');
      const r = await writeRawImage({ source: { kind: 'file', path: image }, device: loop });
      expect(r.bmapFrom).toBe(bmapPath);
      const bytes = await deviceBytes(loop);
      const img = await readFile(image);
      // Mapped: data and the written zeros at [4M, 8M), which the disk held as OLD.
      for (const [s, e] of [[0, MiB], [4 * MiB, 8 * MiB], [8 * MiB, 10 * MiB], [20 * MiB, 20 * MiB + 12 * 1024]] as const) expect(bytes.subarray(s, e).equals(img.subarray(s, e))).toBe(true);
      expect(bytes.subarray(4 * MiB, 8 * MiB).every((b) => b === 0)).toBe(true);
      // Unmapped (the image's holes): not written, the old bytes are still there.
      for (const [s, e] of [[MiB, 4 * MiB], [10 * MiB, 20 * MiB], [20 * MiB + 12 * 1024, IMAGE_BYTES]] as const) expect(bytes.subarray(s, e).every((b) => b === OLD)).toBe(true);
      expect(r.zeroedBytes).toBe(4 * MiB);
      expect(r.skippedBytes).toBe(IMAGE_BYTES - MiB - 2 * MiB - 12 * 1024);
      expect(r.sha256).toBe(imageSha);

      // A range whose bytes do not match the bmap's sha256: VERIFY_FAILED before its window is written.
      const bad = join(dir, 'bad.bmap');
      const text = await readFile(bmapPath, 'utf8');
      const firstSum = /chksum="([0-9a-f]{64})"/.exec(text)![1]!;
      await writeFile(bad, text.replace(firstSum, '0'.repeat(64)));
      const e = await expectCode(writeRawImage({ source: { kind: 'file', path: image }, device: loop, bmap: { kind: 'file', path: bad } }), 'VERIFY_FAILED');
      expect(e.message).toMatch(/blocks 0-255 have sha256 .* not 0{64} as the bmap says; nothing was written/);
    } finally {
      await rm(bmapPath, { force: true });
    }
  });
});

describe('over HTTP', () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  beforeAll(async () => {
    // A plain static server with HEAD and single range requests, like nginx.
    server = createServer((req, res) => {
      void (async () => {
        requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
        const path = join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
        const data = await readFile(path).catch(() => undefined);
        if (!data) return res.writeHead(404).end();
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        if (m) {
          const [s, e] = [Number(m[1]), Math.min(Number(m[2]), data.length - 1)];
          res.writeHead(206, { 'content-length': e - s + 1, 'content-range': `bytes ${s}-${e}/${data.length}` });
          return res.end(req.method === 'HEAD' ? undefined : data.subarray(s, e + 1));
        }
        res.writeHead(200, { 'content-length': data.length });
        res.end(req.method === 'HEAD' ? undefined : data);
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('a raw image, streamed', async () => {
    const { loop } = await device('http-raw');
    const r = await writeRawImage({ source: { kind: 'url', url: new URL(`${base}/disk.img`) }, device: loop, sha256: imageSha });
    expect(r).toMatchObject({ format: 'raw', imageBytes: IMAGE_BYTES, sourceBytes: IMAGE_BYTES, sha256: imageSha, bmapFrom: undefined });
    expect(sha((await deviceBytes(loop)).subarray(0, IMAGE_BYTES))).toBe(imageSha);
  });

  it('a .zst image, its size read from the frame header, its bmap found as bmaptool looks (disk.img.zst → disk.img.bmap)', async () => {
    const zst = await encoded('zst');
    const bmapPath = `${image}.bmap`;
    await writeFile(bmapPath, (await run('bmaptool', ['create', image])).stdout);
    try {
      const url = new URL(`${base}/disk.img.zst`);
      const probe = await probeRawImage({ kind: 'url', url }, { bmap: 'none' });
      expect(probe).toMatchObject({ format: 'zst', imageBytes: IMAGE_BYTES, sourceBytes: (await readFile(zst)).length });
      const { loop } = await device('http-zst');
      requests.length = 0;
      const r = await writeRawImage({ source: { kind: 'url', url }, device: loop, sha256: await sha256Of(zst) });
      expect(r.bmapFrom).toBe(`${base}/disk.img.bmap`);
      expect(requests.filter((q) => q.startsWith('GET /disk.img.zst '))).toHaveLength(2); // the header's range, then the stream
      const bytes = await deviceBytes(loop);
      const img = await readFile(image);
      expect(bytes.subarray(8 * MiB, 10 * MiB).equals(img.subarray(8 * MiB, 10 * MiB))).toBe(true);
      expect(bytes.subarray(10 * MiB, 20 * MiB).every((b) => b === OLD)).toBe(true);
    } finally {
      await rm(bmapPath, { force: true });
    }
  });

  it('an xz image: its size from the index, read with two range requests', async () => {
    await encoded('xz');
    expect((await probeRawImage({ kind: 'url', url: new URL(`${base}/disk.img.xz`) }, { bmap: 'none' })).imageBytes).toBe(IMAGE_BYTES);
  });

  it('a qcow2, downloaded to scratchDir first and removed afterwards', async () => {
    const q = await encoded('qcow2');
    const { loop } = await device('http-qcow2');
    const scratch = join(dir, 'scratch');
    await run('mkdir', ['-p', scratch]);
    const r = await writeRawImage({ source: { kind: 'url', url: new URL(`${base}/disk.qcow2`) }, device: loop, scratchDir: scratch, sha256: await sha256Of(q) });
    expect(r).toMatchObject({ format: 'qcow2', imageBytes: IMAGE_BYTES });
    expect(sha((await deviceBytes(loop)).subarray(0, IMAGE_BYTES))).toBe(imageSha);
    expect((await run('ls', ['-A', scratch])).stdout).toBe('');
  });

  it('a missing image is NOT_FOUND', async () => {
    const { loop } = await device('http-404');
    await expectCode(writeRawImage({ source: { kind: 'url', url: new URL(`${base}/nope.img`) }, device: loop }), 'NOT_FOUND');
  });
});

describe('verification', () => {
  it('a wrong sha256 is VERIFY_FAILED, and says the disk must not be booted', async () => {
    const { loop } = await device('badsum');
    const e = await expectCode(write({ source: { kind: 'file', path: await encoded('zst') }, device: loop, sha256: 'ab'.repeat(32) }), 'VERIFY_FAILED');
    expect(e.message).toMatch(/has already been written .* must not be booted/);
  });

  it('a wrong sha256 for a qcow2 is found before anything is written', async () => {
    const { loop } = await device('badsum-qcow2');
    const e = await expectCode(write({ source: { kind: 'file', path: await encoded('qcow2') }, device: loop, sha256: 'ab'.repeat(32) }), 'VERIFY_FAILED');
    expect(e.message).toMatch(/Nothing was written/);
    expect((await deviceBytes(loop)).every((b) => b === OLD)).toBe(true);
  });

  /** Overwrites 4 KiB at `offset` of the loop device's backing file, under the device. */
  function alter(file: string, offset: number): void {
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  it('a block that reads back wrong once is rewritten, and rewrites names it', async () => {
    const { loop, file } = await device('fault-once');
    let done = false;
    const r = await write({
      source: { kind: 'file', path: await encoded('gz') },
      device: loop,
      afterWindowWritten: async () => {
        if (!done) alter(file, 9 * MiB);
        done = true;
      },
    });
    expect(r.rewrites).toEqual([{ offset: 8 * MiB, length: 4 * MiB }]);
    expect(sha((await deviceBytes(loop)).subarray(0, IMAGE_BYTES))).toBe(imageSha);
  });

  it('a block that reads back wrong every time is VERIFY_FAILED naming its offset', async () => {
    const { loop, file } = await device('fault-always');
    const e = await expectCode(write({ source: { kind: 'file', path: image }, device: loop, rewriteAttempts: 2, afterWindowWritten: async () => alter(file, 9 * MiB) }), 'VERIFY_FAILED');
    expect(e.message).toMatch(/offset 8388608 \(4\.00 MiB at 8\.00 MiB\) still reads back wrong after 2 rewrites/);
  });

  it('qcow2: a difference qemu-img compare finds is converted again; always there, VERIFY_FAILED naming the offset', async () => {
    const q = await encoded('qcow2');
    const once = await device('qcow2-once');
    let done = false;
    const r = await write({ source: { kind: 'file', path: q }, device: once.loop, afterWindowWritten: async () => {
      if (!done) alter(once.file, 9 * MiB);
      done = true;
    } });
    expect(r.rewrites).toEqual([{ offset: 9 * MiB, length: IMAGE_BYTES - 9 * MiB }]);
    const always = await device('qcow2-always');
    const e = await expectCode(write({ source: { kind: 'file', path: q }, device: always.loop, rewriteAttempts: 1, afterWindowWritten: async () => alter(always.file, 9 * MiB) }), 'VERIFY_FAILED');
    expect(e.message).toMatch(/difference at offset 9437184/);
  });
});

describe('limits', () => {
  it('an image bigger than the device is NO_SPACE, and nothing is written', async () => {
    const { loop } = await device('small', 8 * MiB);
    const e = await expectCode(write({ source: { kind: 'file', path: image }, device: loop }), 'NO_SPACE');
    expect(e.message).toMatch(/Nothing was written/);
    expect((await deviceBytes(loop)).every((b) => b === OLD)).toBe(true);
  });

  it('a gz image (size unknown in advance) is NO_SPACE at the first block past the end', async () => {
    const { loop } = await device('small-gz', 8 * MiB);
    const e = await expectCode(write({ source: { kind: 'file', path: await encoded('gz') }, device: loop }), 'NO_SPACE');
    expect(e.message).toMatch(/at least/);
  });

  it('cancelling stops at a block boundary, with the decompressor', async () => {
    const { loop } = await device('cancel');
    const ac = new AbortController();
    const e = await expectCode(write({ source: { kind: 'file', path: await encoded('xz') }, device: loop, signal: ac.signal, afterWindowWritten: async () => ac.abort() }), 'CANCELLED');
    expect(e.message).toMatch(/partial image/);
    const left = await run('pgrep', ['-f', `xz -dc`], { okExitCodes: [0, 1] });
    expect(left.stdout.split('\n').filter(Boolean).map(Number).filter((pid) => pid !== process.pid)).toEqual([]);
  });
});
