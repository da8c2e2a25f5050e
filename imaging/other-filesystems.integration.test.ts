import { jest } from '@jest/globals';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/index.js';
import { removeDir, tempDir } from '../test-support/tree.js';
import * as wim from './index.js';

// Jest takes testTimeout from the root config only, not from the integration project.
jest.setTimeout(120_000);

// A real tmpfs and a real bind mount of another folder inside the capture source: by default
// the capture stays on the source's filesystem, keeps each mount point as an empty directory and
// names it; crossFilesystems takes them in.

let work: string;
let src: string;
const mounted: string[] = [];

beforeAll(async () => {
  work = await tempDir('xfs');
  src = join(work, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'ref\n');
  const elsewhere = join(work, 'elsewhere');
  await mkdir(join(elsewhere, 'deep'), { recursive: true });
  await writeFile(join(elsewhere, 'deep/secret'), 'not part of the source\n');
  for (const d of ['run', 'mnt/bound', 'mnt/with space', 'run/inner']) await mkdir(join(src, d), { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', join(src, 'run')]);
  mounted.push(join(src, 'run'));
  await mkdir(join(src, 'run/inner'));
  await writeFile(join(src, 'run/.hidden-pid'), '1234\n');
  await writeFile(join(src, 'run/big'), Buffer.alloc(4 * 1024 * 1024, 9));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(src, 'run/inner')]);
  mounted.push(join(src, 'run/inner'));
  await writeFile(join(src, 'run/inner/x'), 'x\n');
  await run('mount', ['--bind', elsewhere, join(src, 'mnt/bound')]);
  mounted.push(join(src, 'mnt/bound'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(src, 'mnt/with space')]);
  mounted.push(join(src, 'mnt/with space'));
  await writeFile(join(src, 'mnt/with space/file'), 'y\n');
});

afterAll(async () => {
  for (const m of mounted.reverse()) await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
  await removeDir(work);
});

describe('capture stays on the source filesystem', () => {
  it('finds the outermost mount points below the source', async () => {
    expect(await wim.otherFilesystems(src)).toEqual(['/mnt/bound', '/mnt/with space', '/run']);
  });

  it.each([
    ['capture', async (w: string) => wim.capture(src, w, { compression: 'xpress' })],
    ['append', async (w: string) => {
      await wim.capture(join(src, 'etc'), w, { name: 'etc', compression: 'xpress' });
      return wim.append(src, w, { name: 'src' });
    }],
  ])('%s keeps each mount point as an empty directory, says which, and applies back without them', async (name, make) => {
    const w = join(work, `${name}.wim`);
    const r = await make(w);
    expect(r.skippedMounts).toEqual(['/mnt/bound', '/mnt/with space', '/run']);
    const listed = (await wim.dir(w, r.image.index)) as string[];
    expect(listed.sort()).toEqual(['/', '/etc', '/etc/hostname', '/mnt', '/mnt/bound', '/mnt/with space', '/run'].sort());
    const out = join(work, `${name}-applied`);
    await wim.apply(w, r.image.index, out);
    expect(await readFile(join(out, 'etc/hostname'), 'utf8')).toBe('ref\n');
    for (const d of ['run', 'mnt/bound', 'mnt/with space']) expect(await (await import('node:fs/promises')).readdir(join(out, d))).toEqual([]);
    // The 4 MiB in the tmpfs is not in the image.
    expect(r.image.totalBytes).toBeLessThan(1024);
  });

  it('takes the other filesystems in with crossFilesystems', async () => {
    const w = join(work, 'cross.wim');
    const r = await wim.capture(src, w, { compression: 'xpress', crossFilesystems: true });
    expect(r.skippedMounts).toEqual([]);
    const out = join(work, 'cross-applied');
    await wim.apply(w, 1, out);
    expect(await readFile(join(out, 'mnt/bound/deep/secret'), 'utf8')).toBe('not part of the source\n');
    expect(await readFile(join(out, 'run/.hidden-pid'), 'utf8')).toBe('1234\n');
    expect(await readFile(join(out, 'run/inner/x'), 'utf8')).toBe('x\n');
    expect(await readFile(join(out, 'mnt/with space/file'), 'utf8')).toBe('y\n');
  });
});
