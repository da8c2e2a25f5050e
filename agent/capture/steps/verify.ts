import { stat } from 'node:fs/promises';
import { ImagepeError, formatBytes } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import { defineStep, need } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';
import { LAYOUT_PROPERTY } from '../record-layout.js';

/** What a deploy will read, read back: the image by its index and name, and the recorded layout. */
export const verifyStep = defineStep({
  name: 'verify',
  title: 'Verified',
  writesDisk: false,
  releasesResources: true,
  async run(ctx: CaptureContext, io) {
    const dest = ctx.plan.destination;
    const wimPath = need(ctx.wimPath, 'the WIM path');
    const index = need(ctx.index, 'the image index');
    const signalOpt = io.signal ? { signal: io.signal } : {};
    const info = await imaging.info(wimPath, signalOpt);
    const image = info.images.find((i) => i.index === index);
    if (!image || image.name !== dest.name) throw new ImagepeError('VERIFY_FAILED', `${dest.file} has no image ${index} named "${dest.name}" after the capture`);
    if (ctx.recorded) {
      const text = await imaging.imageProperty(wimPath, index, LAYOUT_PROPERTY, signalOpt);
      if (text !== JSON.stringify(ctx.recorded)) throw new ImagepeError('VERIFY_FAILED', `image ${index} of ${dest.file} does not hold the recorded layout (${LAYOUT_PROPERTY})`);
    }
    ctx.image = image;
    ctx.sizeBytes = (await stat(wimPath)).size;
    const r = ctx.recorded;
    return `image ${index} "${image.name}": ${image.fileCount} files, ${formatBytes(image.totalBytes)}${r ? `; layout recorded (${r.layout.partitions.length} partitions, image from ${r.imagePartition})` : ''}`;
  },
});
