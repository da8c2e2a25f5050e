import { mkdir, open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ImagepeError, pathKind } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import { mapShare } from '../../share/index.js';
import { defineStep, holdShare, need } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';

/**
 * The destination, mapped read-write and proved writable, and the WIM as the plan expects it
 * (new, or appended to with a name it does not hold yet), all before the reference is touched.
 */
export const shareStep = defineStep({
  name: 'share',
  title: 'Share mapped',
  writesDisk: false,
  describe: (ctx: CaptureContext) => ctx.plan.destination.url,
  async run(ctx: CaptureContext, io) {
    const dest = ctx.plan.destination;
    const share = await mapShare({ url: dest.url, image: dest.file, credentials: dest.credentials }, { writable: true, ...(io.signal ? { signal: io.signal } : {}) });
    ctx.share = share;
    holdShare(io, share, dest.url);
    const wimPath = need(share.imagePath, 'the WIM path');
    ctx.wimPath = wimPath;
    await assertWritable(dirname(wimPath), `${dest.url}/${dirname(dest.file) === '.' ? '' : dirname(dest.file)}`);
    if ((await pathKind(wimPath)) !== 'missing') {
      if (!dest.append) {
        throw new ImagepeError('REFUSED', `${dest.file} already exists on ${dest.url}`, { hint: 'Set destination.append: true to add the image to it, or choose another destination.file.' });
      }
      const before = await imaging.info(wimPath, io.signal ? { signal: io.signal } : {});
      if (before.images.some((i) => i.name === dest.name)) {
        throw new ImagepeError('REFUSED', `${dest.file} already holds an image named "${dest.name}"`, { hint: 'Image names in a WIM are unique: choose another destination.name.' });
      }
      ctx.before = before;
    }
    const before = ctx.before;
    return `${share.display}: ${before ? `appending to ${dest.file} (${before.imageCount} image${before.imageCount === 1 ? '' : 's'}, ${before.compression})` : `new ${dest.file}`}`;
  },
});

/**
 * Proves the destination folder takes files, by making and removing one, so a read-only share
 * or a missing write permission stops the capture before generalize writes to the reference.
 */
async function assertWritable(dir: string, shown: string): Promise<void> {
  const probe = join(dir, `.imagepe-write-test-${process.pid}-${Date.now()}`);
  try {
    // One level at a time: a recursive mkdir reports ENOENT, not EROFS, on a read-only filesystem.
    const missing: string[] = [];
    for (let d = dir; (await pathKind(d)) === 'missing' && d !== dirname(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) {
      await mkdir(d).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    }
    const fh = await open(probe, 'wx');
    await fh.write('imagepe\n');
    await fh.close();
    await rm(probe);
  } catch (e) {
    await rm(probe, { force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImagepeError('REFUSED', `the destination ${shown} cannot be written: ${code === 'EROFS' ? 'it is read-only' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message}`, {
      hint: 'Mount or export the share read-write and give the capture account write access; nothing was written to the reference disk.',
    });
  }
}
