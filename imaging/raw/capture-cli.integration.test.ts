import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB, run } from '../../core/index.js';
import { apply, describeDisk, parseLayout, resolveLayout } from '../../partition/index.js';
import { runImagepe as imagepe } from '../../test-support/cli.js';
import { sparseFile } from '../../test-support/tree.js';

// imagepe capture-raw as users run it: the built entry point (npm test builds first) on a disk
// image file, its JSON result and the files it leaves, and its refusal to overwrite them.

let dir: string;
let disk: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-capture-raw-cli-'));
  disk = await sparseFile(join(dir, 'disk.img'), 256 * MiB);
  await apply(resolveLayout(parseLayout({ table: 'gpt', partitions: [{ name: 'root', size: 'rest', type: 'linux', format: 'ext4', mount: '/' }] }), await describeDisk(disk)));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('captures a disk image to .img.zst with its bmap and sha256, and refuses to overwrite them', async () => {
  const out = join(dir, 'out/disk.img.zst');
  const r = await imagepe(['capture-raw', disk, out, '--json']);
  expect(r.code).toBe(0);
  const result = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; result?: { output: string; bmap: string; sha256File: string; sha256: string; imageBytes: number; usedBytes: number } })
    .find((e) => e.type === 'result')!.result!;
  expect(result).toMatchObject({ output: out, bmap: join(dir, 'out/disk.img.bmap'), sha256File: `${out}.sha256`, imageBytes: 256 * MiB });
  expect(result.usedBytes).toBeLessThan(64 * MiB);
  expect((await readFile(`${out}.sha256`, 'utf8')).trim()).toBe(`${result.sha256}  disk.img.zst`);
  await run('sha256sum', ['-c', 'disk.img.zst.sha256'], { cwd: join(dir, 'out') } as Parameters<typeof run>[2]);
  expect(await readFile(result.bmap, 'utf8')).toContain('<bmap version=');
  // Decompressed, the image is the disk: its table and filesystem read back.
  await run('zstd', ['-d', '-q', out, '-o', join(dir, 'back.img')]);
  expect((await run('sfdisk', ['--json', join(dir, 'back.img')])).stdout).toMatch(/"name": "root"/);

  const again = await imagepe(['capture-raw', disk, out]);
  expect(again.code).toBe(4);
  expect(again.stderr).toMatch(/disk\.img\.zst exists already/);
}, 180_000);
