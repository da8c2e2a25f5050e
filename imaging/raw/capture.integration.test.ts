import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MTOOLS_ENV, MiB, run, type ImagepeEvent } from '../../core/index.js';
import { apply, currentNodes, describeDisk, parseLayout, resolveLayout, withAttachedImage } from '../../partition/index.js';
import { sparseFile } from '../../test-support/tree.js';
import { captureRaw, type CaptureRawResult } from './capture.js';
import { parseBmap } from './bmap.js';

// A 512 MiB GPT disk image (ext4 with a few MiB of files, swap, a small FAT volume) captured
// as used blocks, then decompressed and compared with the source byte for byte where the bmap maps.

let dir: string;
let source: string;
let result: CaptureRawResult;
let seconds: number;
const events: ImagepeEvent[] = [];
const runOpts = (what: string) => ({ what, timeoutMs: 120_000 });
const SWAP_UUID = '9d0e2f3a-4b5c-4d6e-8f70-112233445566';
const files = new Map<string, Buffer>();
for (let i = 0; i < 4; i++) files.set(`/data/file${i}.bin`, Buffer.from(Array.from({ length: MiB + i * 4096 }, (_, j) => (j * (i + 3) + (j >> 9)) % 253)));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function mounted<T>(node: string, body: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = await mkdtemp(join(dir, 'mnt-'));
  await run('mount', ['-t', 'ext4', node, mnt]);
  try {
    return await body(mnt);
  } finally {
    await run('umount', [mnt]);
    await rmdir(mnt);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-capture-raw-'));
  source = await sparseFile(join(dir, 'source.img'), 512 * MiB);
  const layout = parseLayout({
    table: 'gpt',
    partitions: [
      { name: 'bios', size: '1MiB', type: 'bios-boot' },
      { name: 'ESP', size: '40MiB', type: 'esp', format: 'vfat', label: 'ESP' },
      { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root' },
      { name: 'swap', size: '64MiB', type: 'linux-swap', format: 'swap', uuid: SWAP_UUID, label: 'swp' },
    ],
  });
  await apply(resolveLayout(layout, await describeDisk(source)));
  await withAttachedImage(source, async (loop) => {
    const nodes = await currentNodes(loop, [1, 2, 3, 4], runOpts);
    // Something a boot loader would leave in the bios-boot partition.
    const fh = await open(nodes.get(1)!, 'r+');
    await fh.write(Buffer.alloc(8192, 0xb1), 0, 8192, 4096);
    await fh.close();
    await mounted(nodes.get(3)!, async (mnt) => {
      await run('mkdir', ['-p', join(mnt, 'data')]);
      for (const [path, data] of files) await writeFile(join(mnt, path), data);
    });
    const hello = join(dir, 'hello.txt');
    await writeFile(hello, 'hello from FAT\n');
    await run('mcopy', ['-i', nodes.get(2)!, hello, '::/hello.txt'], { env: { ...MTOOLS_ENV } });
  });
  const started = Date.now();
  result = await captureRaw({ disk: source, output: join(dir, 'out/debian.img.zst'), scratchDir: join(dir, 'scratch'), events: (e) => events.push(e) });
  seconds = (Date.now() - started) / 1000;
}, 300_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('captureRaw', () => {
  it('writes the zstd image, the bmap beside it where bmaptool looks, and a sha256 file that verifies', async () => {
    process.stdout.write(`capture-raw of a 512 MiB disk: ${seconds.toFixed(1)} s, ${result.usedBytes} bytes mapped, ${result.outputBytes} bytes compressed\n`);
    expect(result.output).toBe(join(dir, 'out/debian.img.zst'));
    expect(result.bmap).toBe(join(dir, 'out/debian.img.bmap'));
    expect(result.sha256File).toBe(join(dir, 'out/debian.img.zst.sha256'));
    expect(result.imageBytes).toBe(512 * MiB);
    expect(result.outputBytes).toBe((await stat(result.output)).size);
    expect(await readFile(result.sha256File, 'utf8')).toBe(`${result.sha256}  debian.img.zst\n`);
    await run('sha256sum', ['-c', 'debian.img.zst.sha256'], { cwd: join(dir, 'out') });
    // Only the three outputs are left: no intermediate, no partclone log.
    expect((await readdir(join(dir, 'out'))).sort()).toEqual(['debian.img.bmap', 'debian.img.zst', 'debian.img.zst.sha256']);
    expect(await readdir(join(dir, 'scratch'))).toEqual([]);
    expect(events.filter((e) => e.type === 'step' && e.status === 'done').map((e) => (e as { step: string }).step)).toEqual(['check', 'table', 'partition 1', 'partition 2', 'partition 3', 'partition 4', 'bmap', 'compress', 'sha256']);
  });

  it('copies used blocks only, by the method that fits each partition', async () => {
    expect(result.partitions.map((p) => [p.number, p.fsType, p.method])).toEqual([
      [1, undefined, 'zero-detect'],
      [2, 'vfat', 'partclone.fat'],
      [3, 'ext4', 'partclone.ext4'],
      [4, 'swap', 'header-only'],
    ]);
    expect(result.partitions[0]!.usedBytes).toBe(8192);
    expect(result.partitions[3]!.usedBytes).toBe(4096);
    // 4 MiB of files plus ext4's journal and inode tables, FAT's tables: an eighth of the 512 MiB disk at most.
    expect(result.usedBytes).toBeGreaterThan(4 * MiB);
    expect(result.usedBytes).toBeLessThan(64 * MiB);
    // The bmap maps what the partitions' copies wrote plus the GPT areas, at 4 KiB granularity.
    const copied = result.partitions.reduce((n, p) => n + p.usedBytes, 0);
    expect(result.usedBytes).toBeGreaterThanOrEqual(copied);
    expect(result.usedBytes).toBeLessThan(copied + MiB);
    expect(result.outputBytes).toBeLessThan(result.usedBytes);
  });

  it('decompresses to the source disk: every byte the bmap maps is equal, the filesystems are whole', async () => {
    const raw = join(dir, 'restored.img');
    await run('zstd', ['-d', '-q', '--sparse', result.output, '-o', raw], { timeoutMs: 120_000 });
    expect((await stat(raw)).size).toBe(512 * MiB);
    const bmap = parseBmap(await readFile(result.bmap, 'utf8'));
    expect(bmap.imageBytes).toBe(512 * MiB);
    const a = await open(source, 'r');
    const b = await open(raw, 'r');
    try {
      let compared = 0;
      for (const r of bmap.ranges) {
        const offset = r.first * bmap.blockSize;
        const length = (r.last - r.first + 1) * bmap.blockSize;
        const x = Buffer.alloc(length);
        const y = Buffer.alloc(length);
        await a.read(x, 0, length, offset);
        await b.read(y, 0, length, offset);
        expect(x.equals(y)).toBe(true);
        compared += length;
      }
      expect(compared).toBe(result.usedBytes);
    } finally {
      await a.close();
      await b.close();
    }
    await withAttachedImage(raw, async (loop) => {
      const table = JSON.parse((await run('sfdisk', ['--json', loop])).stdout).partitiontable;
      expect(table.partitions.map((p: { name: string }) => p.name)).toEqual(['bios', 'ESP', 'root', 'swap']);
      await run('sgdisk', ['-v', loop]);
      const nodes = await currentNodes(loop, [1, 2, 3, 4], runOpts);
      await run('e2fsck', ['-fn', nodes.get(3)!]);
      await mounted(nodes.get(3)!, async (mnt) => {
        for (const [path, data] of files) expect(sha(await readFile(join(mnt, path)))).toBe(sha(data));
      });
      expect((await run('mtype', ['-i', nodes.get(2)!, '::/hello.txt'], { env: { ...MTOOLS_ENV } })).stdout).toBe('hello from FAT\n');
      await run('fsck.vfat', ['-n', nodes.get(2)!]);
      const swap = (await run('blkid', ['--probe', '--output', 'export', nodes.get(4)!])).stdout;
      expect(swap).toContain(`UUID=${SWAP_UUID}`);
      expect(swap).toContain('TYPE=swap');
    });
  }, 300_000);

  it('refuses a disk with a mounted filesystem (DISK_IN_USE), through the image file and its loop device', async () => {
    await withAttachedImage(source, async (loop) => {
      const nodes = await currentNodes(loop, [3], runOpts);
      await mounted(nodes.get(3)!, async () => {
        await expect(captureRaw({ disk: source, output: join(dir, 'busy/a.img.zst') })).rejects.toMatchObject({ code: 'DISK_IN_USE' });
        await expect(captureRaw({ disk: loop, output: join(dir, 'busy/b.img.zst') })).rejects.toMatchObject({ code: 'DISK_IN_USE', message: expect.stringContaining('in use') });
      });
    });
    expect(await readdir(join(dir, 'busy')).catch(() => [])).toEqual([]);
  }, 120_000);
});
