import { rename } from 'node:fs/promises';
import { ImagepeError, pathKind, removeQuietly, temporarySibling } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import { defineStep, need } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';
import { describeCandidate } from '../find-root.js';
import { mountSystemTree } from '../system-tree.js';
import { LAYOUT_PROPERTY } from '../record-layout.js';

/**
 * The image made: a Linux tree with its UNIX data (the root mounted read-only) or an NTFS volume,
 * with the recorded layout in the image's XML. A new WIM is written and verified under a
 * temporary name and takes its own name only then; an append is verified in place and its
 * index removed again if that fails.
 */
export const captureStep = defineStep({
  name: 'capture',
  title: 'Captured',
  writesDisk: false,
  describe: (ctx: CaptureContext) => `${describeCandidate(ctx.source!)}${ctx.source!.fsType === 'ntfs' ? ', NTFS volume' : `, Linux tree with UNIX data${ctx.systemMounts.length ? ` and ${ctx.systemMounts.map((m) => m.mount).join(', ')}` : ''}`}`,
  async run(ctx: CaptureContext, io) {
    const dest = ctx.plan.destination;
    const src = need(ctx.source, 'the source');
    const wimPath = need(ctx.wimPath, 'the WIM path');
    const ntfs = src.fsType === 'ntfs';
    const signalOpt = io.signal ? { signal: io.signal } : {};
    // Journals are left alone: the reference has just been unmounted cleanly, or was not to be written at all.
    // One image of the assembled tree: the files go where the system has them, whatever layout a deploy gives them.
    const tree = ntfs ? undefined : await mountSystemTree(io, src, ctx.systemMounts, { readOnly: true, why: 'to capture it' });
    const options: imaging.CaptureOptions = {
      name: dest.name,
      ...(dest.description ? { description: dest.description } : {}),
      check: dest.integrity,
      unixData: !ntfs,
      // The tree is the reference's filesystems that its fstab names, mounted here for this capture
      // on purpose; its /proc, /sys and /dev hold nothing, as nothing is mounted on them here.
      crossFilesystems: true,
      ...(ctx.recorded ? { properties: { [LAYOUT_PROPERTY]: JSON.stringify(ctx.recorded) } } : {}),
      events: io.events,
      ...signalOpt,
    };
    const source = tree?.dir ?? src.node;
    if (!ctx.before) {
      const temp = temporarySibling(wimPath);
      const tempResource = io.cleanup.add(`remove ${temp}`, () => removeQuietly(temp));
      await imaging.capture(source, temp, { ...options, compression: dest.compression, ...(dest.pipable ? { pipable: true } : {}) });
      await imaging.verify(temp, { events: io.events, ...signalOpt });
      if ((await pathKind(wimPath)) !== 'missing') throw new ImagepeError('REFUSED', `${dest.file} appeared on ${dest.url} while the capture ran`, { hint: 'Another capture may write the same file; choose another destination.file.' });
      await rename(temp, wimPath);
      tempResource.forget();
      ctx.index = 1;
    } else {
      // wimlib appends in place and writes the header last, so a failed append leaves the WIM as it was.
      const r = await imaging.append(source, wimPath, options);
      const index = r.image.index;
      try {
        await imaging.verify(wimPath, { events: io.events, ...signalOpt });
      } catch (e) {
        await imaging.remove(wimPath, index).catch((removeError: Error) => io.warn(`image ${index} failed verification and could not be removed again: ${removeError.message}`));
        throw e;
      }
      ctx.index = index;
    }
    await tree?.release();
    return `image ${ctx.index} "${dest.name}" in ${dest.file}`;
  },
});
