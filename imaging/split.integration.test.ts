import { jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../test-support/tree.js';
import * as wim from './index.js';

// Jest takes testTimeout from the root config only, not from the integration project.
jest.setTimeout(120_000);

// The instance: a 5 MB tree captured with --compress none, split at 1 MiB. Every verb
// that reads a WIM takes the first part and finds the others beside it; every verb that would
// write into a split WIM refuses it by name; a missing part is named before anything is written.

let work: string;
let source: string;
let parts: string[];
const files = new Map<string, string>();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) out.set(name, sha(await readFile(join(dir, name))));
  return out;
}

beforeAll(async () => {
  work = await tempDir('split');
  source = join(work, 'src');
  await mkdir(source);
  for (let i = 1; i <= 5; i++) {
    const data = randomBytes(1024 * 1024);
    await writeFile(join(source, `f${i}`), data);
    files.set(`f${i}`, sha(data));
  }
  await wim.capture(source, join(work, 'x.wim'), { name: 'five', compression: 'none' });
  parts = await wim.split(join(work, 'x.wim'), join(work, 'parts/x.swm'), 1);
});
afterAll(async () => removeDir(work));

describe('a split WIM', () => {
  it('is written as x.swm, x2.swm, ... and found again from the first part, in order', async () => {
    expect(parts.map((p) => p.slice(work.length + 7))).toEqual(['x.swm', 'x2.swm', 'x3.swm', 'x4.swm', 'x5.swm', 'x6.swm']);
    expect(await wim.splitParts(parts[0]!)).toEqual(parts);
    expect(await wim.info(parts[0]!)).toMatchObject({ partNumber: 1, totalParts: 6 });
  });

  it('applies from its first part (the issue: exit 8, "part of a split WIM"), every byte back', async () => {
    const out = join(work, 'applied');
    await wim.apply(parts[0]!, 1, out);
    expect(await readTree(out)).toEqual(files);
  });

  // Every verb that reads a WIM, each checked by what it gives back.
  const readers: [string, (first: string, n: number) => Promise<void>][] = [
    ['apply', async (first, n) => expect(await readTree((await wim.apply(first, 1, join(work, `apply-${n}`))).target)).toEqual(files)],
    ['verify', async (first) => expect(await wim.verify(first)).toBeUndefined()],
    ['dir', async (first) => expect(await wim.dir(first, 1)).toEqual(['/', '/f1', '/f2', '/f3', '/f4', '/f5'])],
    ['readImageFile', async (first) => expect(await wim.readImageFile(first, 1, '/f5')).toBe((await readFile(join(source, 'f5'))).toString('utf8'))],
    [
      'export (joins the parts)',
      async (first, n) => {
        const joined = join(work, `joined-${n}.wim`);
        expect(await wim.exportImage(first, 'all', joined)).toMatchObject({ totalParts: 1, imageCount: 1 });
        expect(await readTree((await wim.apply(joined, 1, join(work, `joined-applied-${n}`))).target)).toEqual(files);
      },
    ],
    [
      'mount',
      async (first, n) => {
        const dir = join(work, `mnt-${n}`);
        await mkdir(dir);
        await wim.mount(first, 1, dir);
        try {
          expect(await readTree(dir)).toEqual(files);
        } finally {
          await wim.unmount(dir);
        }
      },
    ],
  ];
  it.each(readers.map(([name, f], n) => [name, f, n] as const))('%s reads every part', async (_, f, n) => {
    await f(parts[0]!, n);
  });

  it.each([
    ['append', (first: string) => wim.append(source, first, { name: 'again' })],
    ['delete', (first: string) => wim.remove(first, 1)],
    ['optimize', (first: string) => wim.optimize(first)],
    ['mountrw', async (first: string) => {
      await mkdir(join(work, 'mntrw'), { recursive: true });
      return wim.mountrw(first, 1, join(work, 'mntrw'));
    }],
    ['split', (first: string) => wim.split(first, join(work, 'again/y.swm'), 1)],
    ['export into it', (first: string) => wim.exportImage(join(work, 'x.wim'), 1, first, { destName: 'other' })],
  ])('%s, which would write into it, is refused by name and leaves every part as it was', async (_, f) => {
    const before = await Promise.all(parts.map(async (p) => sha(await readFile(p))));
    await expect(f(parts[0]!)).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('split WIM') });
    expect(await Promise.all(parts.map(async (p) => sha(await readFile(p))))).toEqual(before);
  });

  it('cannot be streamed: applyStream says so before anything is written', async () => {
    const pip = join(work, 'pip.wim');
    await wim.capture(source, pip, { pipable: true, compression: 'none' });
    const pipParts = await wim.split(pip, join(work, 'pip-parts/p.swm'), 1);
    const target = join(work, 'streamed');
    await expect(wim.applyStream(createReadStream(pipParts[0]!), 1, target)).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('cannot be applied from a stream') });
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
    // The same parts apply as files.
    expect(await readTree((await wim.apply(pipParts[0]!, 1, join(work, 'pip-applied'))).target)).toEqual(files);
  });

  describe('with a part missing', () => {
    const missing = () => parts[2]!;
    beforeAll(async () => rename(missing(), `${missing()}.away`));
    afterAll(async () => rename(`${missing()}.away`, missing()));

    it.each([
      ['apply', (first: string) => wim.apply(first, 1, join(work, 'never'))],
      ['verify', (first: string) => wim.verify(first)],
      ['dir', (first: string) => wim.dir(first, 1)],
      ['readImageFile', (first: string) => wim.readImageFile(first, 1, '/f1')],
      ['export', (first: string) => wim.exportImage(first, 'all', join(work, 'never.wim'))],
      ['mount', async (first: string) => {
        await mkdir(join(work, 'never-mnt'), { recursive: true });
        return wim.mount(first, 1, join(work, 'never-mnt'));
      }],
    ])('%s names the missing part (NOT_FOUND) and writes nothing', async (_, f) => {
      await expect(f(parts[0]!)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(`${missing()} is missing`) });
      await expect(stat(join(work, 'never'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(join(work, 'never.wim'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readdir(join(work, 'never-mnt')).catch(() => [])).toEqual([]);
    });

    it('asks for the first part when given a later one', async () => {
      await expect(wim.apply(parts[1]!, 1, join(work, 'never'))).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('name its first part') });
    });
  });

  it('refuses a part of another split in a part’s place', async () => {
    const other = await wim.split(join(work, 'x.wim'), join(work, 'other/x.swm'), 2);
    const mixed = join(work, 'mixed');
    await mkdir(mixed);
    await writeFile(join(mixed, 'x.swm'), await readFile(parts[0]!));
    for (let i = 2; i <= 6; i++) await writeFile(join(mixed, `x${i}.swm`), await readFile(i <= other.length ? other[i - 1]! : parts[i - 1]!));
    await expect(wim.verify(join(mixed, 'x.swm'))).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('is not part 2 of') });
    await rm(mixed, { recursive: true });
  });
});

// The whole kind: what each producing verb or option makes, every reading verb consumes (or,
// where wimlib cannot, imagepe refuses it by name with what to do instead).
describe('what every verb and option produces, every verb reads', () => {
  const producers: [string, (dir: string) => Promise<string>][] = [
    ['capture lzx', async (d) => (await wim.capture(source, join(d, 'w.wim'), {})).wimPath],
    ['capture --solid', async (d) => (await wim.capture(source, join(d, 'w.wim'), { solid: true, compression: 'lzms' })).wimPath],
    ['capture --pipable', async (d) => (await wim.capture(source, join(d, 'w.wim'), { pipable: true })).wimPath],
    ['capture --check', async (d) => (await wim.capture(source, join(d, 'w.wim'), { check: true, compression: 'xpress' })).wimPath],
    ['capture then append', async (d) => {
      await wim.capture(source, join(d, 'w.wim'), { name: 'first' });
      return (await wim.append(source, join(d, 'w.wim'), { name: 'second' })).wimPath;
    }],
    ['export --pipable', async (d) => {
      await wim.exportImage(join(work, 'x.wim'), 'all', join(d, 'w.wim'), { pipable: true });
      return join(d, 'w.wim');
    }],
    ['optimize --solid', async (d) => {
      await wim.exportImage(join(work, 'x.wim'), 'all', join(d, 'w.wim'));
      await wim.optimize(join(d, 'w.wim'), { solid: true, compression: 'lzms' });
      return join(d, 'w.wim');
    }],
    ['optimize --recompress', async (d) => {
      await wim.exportImage(join(work, 'x.wim'), 'all', join(d, 'w.wim'));
      await wim.optimize(join(d, 'w.wim'), { recompress: true, compression: 'xpress' });
      return join(d, 'w.wim');
    }],
    ['split', async (d) => (await wim.split(join(work, 'x.wim'), join(d, 'w.swm'), 2))[0]!],
  ];
  it.each(producers.map(([name, make], n) => [name, make, n] as const))('%s: info, dir, verify, apply, export, mount and a further split', async (_, make, n) => {
    const d = join(work, `kind-${n}`);
    await mkdir(d);
    const w = await make(d);
    const info = await wim.info(w);
    expect(info.images.length).toBeGreaterThanOrEqual(1);
    expect(await wim.dir(w, 1)).toContain('/f3');
    await wim.verify(w);
    expect(await readTree((await wim.apply(w, 1, join(d, 'applied'))).target)).toEqual(files);
    await wim.exportImage(w, 1, join(d, 'exported.wim'));
    expect(await readTree((await wim.apply(join(d, 'exported.wim'), 1, join(d, 'exported-applied'))).target)).toEqual(files);
    const mnt = join(d, 'mnt');
    await mkdir(mnt);
    await wim.mount(w, 1, mnt);
    try {
      expect(await readTree(mnt)).toEqual(files);
    } finally {
      await wim.unmount(mnt);
    }
    const splitting = wim.split(w, join(d, 'resplit/r.swm'), 2);
    if (info.totalParts > 1) await expect(splitting).rejects.toMatchObject({ code: 'UNSUPPORTED', hint: expect.stringContaining('imagepe export') });
    else if (info.version === 3584) await expect(splitting).rejects.toMatchObject({ code: 'UNSUPPORTED', hint: expect.stringContaining('without --solid') });
    else expect(await readTree((await wim.apply((await splitting)[0]!, 1, join(d, 'resplit-applied'))).target)).toEqual(files);
    if (info.pipable) expect((await wim.applyStream(createReadStream(w), 1, join(d, 'streamed'))).bytes).toBe((await stat(w)).size);
  });
});
