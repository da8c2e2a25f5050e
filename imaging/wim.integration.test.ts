import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImagepeEvent, ProgressEvent } from '../core/index.js';
import { run } from '../core/index.js';
import { allocatedBytes, makeRichTree, removeDir, snapshotTree, sparseFile, tempDir } from '../test-support/tree.js';
import * as wim from './index.js';

let work: string;
let source: string;
let baseWim: string;

beforeAll(async () => {
  work = await tempDir('wim');
  source = join(work, 'reference');
  await makeRichTree(source);
  baseWim = join(work, 'base.wim');
  await wim.capture(source, baseWim, { name: 'Reference', description: 'rich fixture', compression: 'xpress', check: true });
});

afterAll(async () => {
  await removeDir(work);
});

describe('capture and apply', () => {
  it('round-trips content and metadata: owners, modes, links, xattrs, ACLs, devices, FIFOs, sparse files, empty dirs, non-ASCII names', async () => {
    const target = join(work, 'applied');
    const r = await wim.apply(baseWim, 1, target);
    expect(r.targetKind).toBe('directory');
    const before = await snapshotTree(source);
    const after = await snapshotTree(target);
    expect(after).toEqual(before);
    // Spot checks, so a snapshot that missed a kind of metadata cannot pass silently.
    expect(after['usr/bin/tool']).toMatchObject({ mode: 0o4755, gid: 50, hardLinks: ['usr/bin/tool-hardlink'] });
    expect(after['dev/null']).toMatchObject({ type: 'char', rdev: expect.any(Number) });
    expect(after['dev/initctl']!.type).toBe('fifo');
    expect(after['etc/hostname']!.xattrs).toMatchObject({ 'user.origin': '0x7265666572656e6365', 'trusted.imagepe': '0x00ff10' });
    expect(after['etc/ssh/sshd_config']!.xattrs['system.posix_acl_access']).toBeDefined();
    expect(after['home/ünïcødé ✓/naïve résumé.txt']).toMatchObject({ uid: 1000, mode: 0o600 });
    expect(after['var/empty/deeper']!.type).toBe('dir');
    expect(after['etc/dangling.link']!.target).toBe('does-not-exist');
    expect(after['etc/hostname']!.mtimeMs).toBe(Date.parse('2024-02-29T12:34:56.789Z'));
    expect(await allocatedBytes(join(target, 'var/sparse.img'))).toBeLessThan(1024 * 1024);
  });

  it('reports the image in info with name, description, counts and an integrity table', async () => {
    const info = await wim.info(baseWim);
    expect(info).toMatchObject({ imageCount: 1, compression: 'xpress', hasIntegrityTable: true });
    expect(info.images[0]).toMatchObject({ index: 1, name: 'Reference', description: 'rich fixture' });
    expect(info.images[0]!.fileCount).toBeGreaterThanOrEqual(14);
    expect(info.images[0]!.totalBytes).toBeGreaterThan(64 * 1024 * 1024);
  });

  it('stores duplicate files once', async () => {
    const info = await wim.info(baseWim);
    // Two copies of 3 MiB of poorly compressible data, plus 64 MiB of holes that compress away.
    expect(info.sizeBytes).toBeLessThan(5 * 1024 * 1024);
  });

  it('emits typed progress events that end at the total', async () => {
    const events: ImagepeEvent[] = [];
    await wim.apply(baseWim, 'Reference', join(work, 'applied-progress'), { events: (e) => events.push(e) });
    const progress = events.filter((e): e is ProgressEvent => e.type === 'progress' && e.phase === 'Extracting file data');
    expect(progress.length).toBeGreaterThan(2);
    const last = progress[progress.length - 1]!;
    expect(last.done).toBe(last.total);
    expect(last.operation).toBe('apply');
  });

  it.each(['none', 'lzx', 'lzms'] as const)('captures and applies with %s compression', async (compression) => {
    const file = join(work, `c-${compression}.wim`);
    await wim.capture(join(source, 'etc'), file, { compression });
    expect((await wim.info(file)).compression).toBe(compression);
    const out = join(work, `a-${compression}`);
    await wim.apply(file, 1, out);
    expect(await readFile(join(out, 'hostname'), 'utf8')).toBe('reference\n');
  });

  it('leaves out excluded paths, like wimscript.ini [ExclusionList]', async () => {
    const file = join(work, 'excluded.wim');
    await wim.capture(source, file, { compression: 'xpress', exclude: ['/var', '*.link'] });
    const paths = (await wim.dir(file, 1)) as string[];
    expect(paths).toContain('/etc/hostname');
    expect(paths.some((p) => p.startsWith('/var'))).toBe(false);
    expect(paths.some((p) => p.endsWith('.link'))).toBe(false);
  });

  it('lists files with their stored UNIX data', async () => {
    const entries = (await wim.dir(baseWim, 1, { detailed: true })) as wim.WimDirEntry[];
    const tool = entries.find((e) => e.path === '/usr/bin/tool');
    expect(tool).toMatchObject({ linkCount: 2, unix: { uid: 0, gid: 50, mode: 0o104755 } });
    expect(entries.find((e) => e.path === '/home/ünïcødé ✓/naïve résumé.txt')).toBeDefined();
  });
});

describe('append, export, delete, optimize, split', () => {
  let multi: string;

  beforeAll(async () => {
    multi = join(work, 'multi.wim');
    await copyFile(baseWim, multi);
    await writeFile(join(source, 'etc/motd'), 'second image\n');
    await wim.append(source, multi, { name: 'Customized', description: 'with motd' });
  });

  it('appends a second image without touching the first', async () => {
    const info = await wim.info(multi);
    expect(info.images.map((i) => i.name)).toEqual(['Reference', 'Customized']);
    expect(info.hasIntegrityTable).toBe(true);
    expect((await wim.dir(multi, 1)) as string[]).not.toContain('/etc/motd');
    expect((await wim.dir(multi, 'Customized')) as string[]).toContain('/etc/motd');
  });

  it('refuses to append an image whose name is taken', async () => {
    await expect(wim.append(source, multi, { name: 'Reference' })).rejects.toMatchObject({ code: 'REFUSED' });
  });

  it('exports one image into a new WIM', async () => {
    const dest = join(work, 'exported.wim');
    const info = await wim.exportImage(multi, 'Customized', dest, { compression: 'lzx' });
    expect(info.images.map((i) => i.name)).toEqual(['Customized']);
    expect(info.compression).toBe('lzx');
    const out = join(work, 'from-export');
    await wim.apply(dest, 1, out);
    expect(await readFile(join(out, 'etc/motd'), 'utf8')).toBe('second image\n');
  });

  it('deletes an image, and optimize then reclaims the space it held', async () => {
    const file = join(work, 'shrink.wim');
    await wim.capture(join(source, 'usr'), file, { name: 'usr', compression: 'none' });
    await wim.append(join(source, 'etc'), file, { name: 'etc' });
    const after = await wim.remove(file, 'usr', { soft: true });
    expect(after.images.map((i) => i.name)).toEqual(['etc']);
    const { before, after: optimized } = await wim.optimize(file);
    expect(optimized).toBeLessThan(before / 2);
  });

  it('splits a WIM into SWM parts that each fit the part size', async () => {
    // Parts hold whole resources, so the tree is many files smaller than a part.
    const tree = join(work, 'many-files');
    await mkdir(tree);
    for (let i = 0; i < 10; i++) {
      const data = Buffer.alloc(300 * 1024);
      for (let j = 0; j < data.length; j += 4) data.writeUInt32LE(Math.imul(j + 1, 2654435761 + i * 40503) >>> 0, j);
      await writeFile(join(tree, `file${i}.bin`), data);
    }
    const big = join(work, 'tosplit.wim');
    await wim.capture(tree, big, { compression: 'none' });
    const parts = await wim.split(big, join(work, 'split/install.swm'), 1);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts[0]).toMatch(/install\.swm$/);
    expect(parts[1]).toMatch(/install2\.swm$/);
    for (const p of parts) expect((await stat(p)).size).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024);
    const first = await wim.info(parts[0]!);
    expect(first.totalParts).toBe(parts.length);
    expect((await readdir(join(work, 'split'))).sort()).toEqual(parts.map((p) => p.split('/').pop()).sort());
  });
});

describe('bad input gets a clear error and nothing is lost', () => {
  it('refuses a target directory that is not empty, unless forced', async () => {
    const target = join(work, 'not-empty');
    await mkdir(target);
    await writeFile(join(target, 'precious'), 'keep me');
    await expect(wim.apply(baseWim, 1, target)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    expect(await readdir(target)).toEqual(['precious']);
    await wim.apply(baseWim, 1, target, { allowNonEmpty: true });
    expect(await readFile(join(target, 'precious'), 'utf8')).toBe('keep me');
    expect(existsSync(join(target, 'etc/hostname'))).toBe(true);
  });

  it('names the images that exist when the index or name is unknown', async () => {
    await expect(wim.apply(baseWim, 7, join(work, 'x7'))).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', message: expect.stringContaining('1 "Reference"') });
    await expect(wim.apply(baseWim, 'Nope', join(work, 'x8'))).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });

  it('says a file that is not a WIM is not a WIM', async () => {
    const bogus = join(work, 'bogus.wim');
    await writeFile(bogus, 'this is a text file\n');
    await expect(wim.info(bogus)).rejects.toMatchObject({ code: 'WIM_CORRUPT', message: expect.stringContaining('not a WIM file') });
    await expect(wim.info(join(work, 'missing.wim'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reports a truncated WIM as damaged', async () => {
    const cut = join(work, 'truncated.wim');
    await copyFile(baseWim, cut);
    await truncate(cut, Math.floor((await stat(cut)).size / 2));
    await expect(wim.info(cut)).rejects.toMatchObject({ code: 'WIM_CORRUPT' });
  });

  it('finds a corrupted resource, and a failed apply leaves the target as empty as it was', async () => {
    const bad = join(work, 'corrupt.wim');
    await wim.capture(join(source, 'usr'), bad, { compression: 'none' });
    const fh = await open(bad, 'r+');
    await fh.write(Buffer.alloc(64, 0xa5), 0, 64, 1024 * 1024);
    await fh.close();
    await expect(wim.verify(bad)).rejects.toMatchObject({ code: 'WIM_CORRUPT' });
    const target = join(work, 'from-corrupt');
    await expect(wim.apply(bad, 1, target)).rejects.toMatchObject({ code: 'WIM_CORRUPT' });
    expect(await readdir(target)).toEqual([]);
  });

  it('verifies an intact WIM', async () => {
    await expect(wim.verify(baseWim)).resolves.toBeUndefined();
  });

  it('refuses to capture over an existing file', async () => {
    await expect(wim.capture(source, baseWim)).rejects.toMatchObject({ code: 'REFUSED' });
  });

  it('leaves nothing under the final name when a capture is cancelled halfway', async () => {
    const dest = join(work, 'cancelled', 'never.wim');
    const ac = new AbortController();
    const pending = wim.capture(source, dest, {
      compression: 'lzms',
      signal: ac.signal,
      events: (e) => {
        if (e.type === 'progress' && e.phase === 'Archiving file data') ac.abort();
      },
    });
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await readdir(join(work, 'cancelled'))).toEqual([]);
  });

  it('checks free space before it starts', async () => {
    const small = join(work, 'small');
    await mkdir(small);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
    try {
      await expect(wim.capture(source, join(small, 'out.wim'), { compression: 'none' })).rejects.toMatchObject({ code: 'NO_SPACE', message: expect.stringContaining('needed') });
      expect(await readdir(small)).toEqual([]);
      await expect(wim.apply(baseWim, 1, join(small, 'root'))).rejects.toMatchObject({ code: 'NO_SPACE' });
    } finally {
      await run('umount', [small]);
    }
  });
});

describe('mount, mountrw and unmount', () => {
  let rwWim: string;
  let mnt: string;

  beforeAll(async () => {
    rwWim = join(work, 'rw.wim');
    await wim.capture(join(source, 'etc'), rwWim, { name: 'etc', compression: 'xpress' });
    mnt = join(work, 'mnt');
    await mkdir(mnt);
  });

  afterEach(() => {
    // A failed test must not leave a FUSE mount behind.
    try {
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
  });

  it('mounts read-only and shows the files', async () => {
    await wim.mount(rwWim, 1, mnt);
    expect(await readFile(join(mnt, 'hostname'), 'utf8')).toBe('reference\n');
    await expect(writeFile(join(mnt, 'new'), 'x')).rejects.toThrow();
    await wim.unmount(mnt);
    expect(existsSync(join(mnt, 'hostname'))).toBe(false);
  });

  it('discards the changes of a read-write mount unless committed', async () => {
    await wim.mountrw(rwWim, 'etc', mnt);
    await writeFile(join(mnt, 'discarded'), 'gone\n');
    await wim.unmount(mnt);
    expect((await wim.dir(rwWim, 1)) as string[]).not.toContain('/discarded');
  });

  it('writes the changes of a read-write mount into the WIM with commit', async () => {
    await wim.mountrw(rwWim, 1, mnt);
    await writeFile(join(mnt, 'added'), 'kept\n');
    await writeFile(join(mnt, 'hostname'), 'changed\n');
    await wim.unmount(mnt, { commit: true });
    const out = join(work, 'after-commit');
    await wim.apply(rwWim, 1, out);
    expect(await readFile(join(out, 'added'), 'utf8')).toBe('kept\n');
    expect(await readFile(join(out, 'hostname'), 'utf8')).toBe('changed\n');
  });

  it('says so when asked to unmount a directory that holds no WIM mount', async () => {
    await expect(wim.unmount(join(work, 'applied'))).rejects.toMatchObject({ code: 'NOT_MOUNTED' });
  });
});

describe('NTFS volumes', () => {
  let volume: string;

  beforeAll(async () => {
    volume = await sparseFile(join(work, 'ntfs.img'), 64 * 1024 * 1024);
    await run('mkfs.ntfs', ['--force', '--quick', '--label', 'Windows', volume]);
  });

  it('applies an image straight to an unmounted NTFS volume and captures it back', async () => {
    const small = join(work, 'win-src.wim');
    await wim.capture(join(source, 'home'), small, { name: 'home', compression: 'xpress' });
    const r = await wim.apply(small, 1, volume);
    expect(r.targetKind).toBe('ntfs-volume');
    const listing = await run('ntfsls', ['--force', join(volume)], {});
    expect(listing.stdout).toContain('ünïcødé ✓');
    const cat = await run('ntfscat', ['--force', volume, '/ünïcødé ✓/naïve résumé.txt']);
    expect(cat.stdout).toBe('Grüße, 世界\n');

    const back = join(work, 'from-ntfs.wim');
    await wim.capture(volume, back, { name: 'ntfs' });
    expect((await wim.dir(back, 1)) as string[]).toContain('/ünïcødé ✓/naïve résumé.txt');
  });

  it('refuses an NTFS volume that already holds files, unless forced', async () => {
    await expect(wim.apply(baseWim, 1, volume)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY', message: expect.stringContaining('ünïcødé') });
  });
});
