import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDir, tempDir } from '../test-support/tree.js';
import * as wim from './index.js';

// Properties set at capture and append are read back from the WIM's own XML by real wimlib,
// and survive an export into another WIM.
let work: string;

beforeAll(async () => {
  work = await tempDir('props');
  await mkdir(join(work, 'src'), { recursive: true });
  await writeFile(join(work, 'src/a'), 'a\n');
});

afterAll(async () => {
  await removeDir(work);
});

describe('image properties', () => {
  it('round-trips through capture, append and export, with characters XML must escape', async () => {
    const file = join(work, 'p.wim');
    const layout = JSON.stringify({ version: 1, note: 'a <b> & "c" ünï 😀' });
    await wim.capture(join(work, 'src'), file, { name: 'one', compression: 'xpress', properties: { 'IMAGEPE/LAYOUT': layout } });
    await wim.append(join(work, 'src'), file, { name: 'two', properties: { 'IMAGEPE/LAYOUT': '{}', 'IMAGEPE/OTHER': 'x' } });
    expect(await wim.imageProperty(file, 1, 'IMAGEPE/LAYOUT')).toBe(layout);
    expect(await wim.imageProperty(file, 'two', 'IMAGEPE/OTHER')).toBe('x');
    expect(await wim.imageProperty(file, 1, 'IMAGEPE/OTHER')).toBeUndefined();
    expect((await wim.imageProperties(file, 2)).NAME).toBe('two');

    const exported = join(work, 'e.wim');
    await wim.exportImage(file, 1, exported);
    expect(await wim.imageProperty(exported, 1, 'IMAGEPE/LAYOUT')).toBe(layout);
  });

  it('refuses a property name that is no XML element path', async () => {
    await expect(wim.capture(join(work, 'src'), join(work, 'bad.wim'), { properties: { 'A B': 'x' } })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
