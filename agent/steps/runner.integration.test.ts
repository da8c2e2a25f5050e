import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError, pathKind, run } from '../../core/index.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import { attachDisk, defineStep, mountScratch, runSteps } from './index.js';

// The cleanup stack with real resources: a loop device and mounts on it, released on a failure
// and on a cancel whatever the step was doing.

interface Ctx {
  image: string;
  made: { loop?: string; dirs: string[] };
}

let dir: string;

beforeAll(async () => {
  dir = await tempDir('runner-resources');
});

afterAll(async () => {
  await removeDir(dir);
});

async function mounted(path: string): Promise<boolean> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === path);
}

async function attachedLoops(image: string): Promise<string> {
  return (await run('losetup', ['--associated', image, '--noheadings', '--output', 'NAME'])).stdout.trim();
}

/** Attaches the image, makes ext4 on it and mounts it twice (two scratch mount points). */
const mountTwice = defineStep({
  name: 'mount',
  title: 'Mounted',
  writesDisk: true,
  async run(ctx: Ctx, io) {
    const { device } = await attachDisk(io, ctx.image, {});
    ctx.made.loop = device;
    await run('mkfs.ext4', ['-q', '-F', device], io.runOpts('making ext4'));
    for (const prefix of ['first', 'second']) {
      const m = await mountScratch(io, device, { prefix, fsType: 'ext4', what: `mounting ${device}` });
      ctx.made.dirs.push(m.dir);
    }
  },
});

async function expectReleased(ctx: Ctx): Promise<void> {
  expect(ctx.made.loop).toMatch(/^\/dev\/loop\d+$/);
  expect(ctx.made.dirs).toHaveLength(2);
  for (const d of ctx.made.dirs) {
    expect(await mounted(d)).toBe(false);
    expect(await pathKind(d)).toBe('missing');
  }
  expect(await attachedLoops(ctx.image)).toBe('');
}

describe('the step runner with real resources', () => {
  it('leaves nothing mounted or attached when a step throws after mounting', async () => {
    const image = join(dir, 'fails.img');
    await sparseFile(image, 64 * 1024 * 1024);
    const ctx: Ctx = { image, made: { dirs: [] } };
    const boom = defineStep({
      name: 'boom',
      title: 'Boom',
      writesDisk: true,
      run: async () => {
        throw new ImagepeError('COMMAND_FAILED', 'the step failed after the mounts');
      },
    });
    const events: { type: string; step?: string; diskTouched?: boolean }[] = [];
    await expect(runSteps({ steps: [mountTwice, boom], context: ctx, events: (e) => events.push(e), finish: () => ({ type: 'done' }) })).rejects.toThrow('the step failed after the mounts');
    expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'boom', diskTouched: true });
    await expectReleased(ctx);
  });

  it('leaves nothing mounted or attached when cancelled while a command runs', async () => {
    const image = join(dir, 'cancelled.img');
    await sparseFile(image, 64 * 1024 * 1024);
    const ctx: Ctx = { image, made: { dirs: [] } };
    const controller = new AbortController();
    const slow = defineStep({
      name: 'slow',
      title: 'Slow',
      writesDisk: true,
      async run(_c: Ctx, io) {
        setTimeout(() => controller.abort(), 200);
        await run('sleep', ['30'], io.runOpts('waiting on purpose'));
      },
    });
    const started = Date.now();
    await expect(runSteps({ steps: [mountTwice, slow], context: ctx, signal: controller.signal, finish: () => ({ type: 'done' }) })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(Date.now() - started).toBeLessThan(20_000);
    await expectReleased(ctx);
  });
});
