import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive, withFileLock } from './fs.js';

describe('withFileLock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagepe-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs one holder at a time and removes the lock after, also when the body throws', async () => {
    const lock = join(dir, 'x.lock');
    const order: string[] = [];
    const holder = (name: string) =>
      withFileLock(lock, async () => {
        order.push(`${name} in`);
        expect(await readFile(lock, 'utf8')).toBe(String(process.pid));
        await new Promise((r) => setTimeout(r, 50));
        order.push(`${name} out`);
        return name;
      });
    const first = holder('a');
    await new Promise((r) => setTimeout(r, 10));
    // The second waits (polling every 2 s) until the first has released the lock.
    expect(await Promise.all([first, holder('b')])).toEqual(['a', 'b']);
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out']);
    await expect(withFileLock(lock, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 15_000);

  it('takes over a lock whose process is gone at once, and gives up on a live one after waitMs', async () => {
    const lock = join(dir, 'y.lock');
    await writeFile(lock, '999999999');
    expect(processAlive(999999999)).toBe(false);
    expect(await withFileLock(lock, async () => 'taken', { waitMs: 1_000 })).toBe('taken');
    await writeFile(lock, String(process.pid));
    await expect(withFileLock(lock, async () => 'never', { waitMs: 100 })).rejects.toMatchObject({ code: 'COMMAND_TIMEOUT' });
  }, 15_000);
});
