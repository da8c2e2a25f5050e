import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_IN_USE_MS, pruneCache } from './build.js';

describe('pruneCache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagepe-cache-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function entry(name: string, usedAt: number): Promise<void> {
    await mkdir(join(dir, name));
    await utimes(join(dir, name), usedAt / 1000, usedAt / 1000);
  }

  it('keeps the most recently used entries and removes the rest', async () => {
    const now = Date.UTC(2026, 10, 29, 12);
    const hour = 3_600_000;
    for (const [name, age] of [['a', 5], ['b', 4], ['c', 3], ['d', 2], ['e', 1]] as const) await entry(name, now - age * hour);
    expect((await pruneCache(dir, 3, { now })).sort()).toEqual(['a', 'b']);
    expect((await readdir(dir)).sort()).toEqual(['c', 'd', 'e']);
  });

  it('never removes an entry used within the last half hour, however many there are', async () => {
    // Five builds started at once by the tests: each may still be copying its outputs.
    const now = Date.UTC(2026, 10, 29, 12);
    for (const [i, name] of ['a', 'b', 'c', 'd', 'e'].entries()) await entry(name, now - (i + 1) * 60_000);
    await entry('old', now - CACHE_IN_USE_MS - 1);
    expect(await pruneCache(dir, 3, { now })).toEqual(['old']);
    expect((await readdir(dir)).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});
