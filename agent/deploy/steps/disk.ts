import { ImagepeError } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { FROM_IMAGE, isRawSource, planLayout } from '../../plan/index.js';
import { defineStep, openDisk } from '../../steps/index.js';
import { confirmDisk, resolveTargetLayout, type DeployContext } from '../context.js';
import { recognizeDeploy } from '../markers.js';

/**
 * The target disk: chosen (never the boot medium or the running system's disk), attached when
 * it is an image file, read, and refused when it is in use or holds anything the plan does not
 * say to wipe. Nothing is written. A layout from the image is resolved later, at check.
 */
export const diskStep = defineStep({
  name: 'disk',
  title: 'Disk chosen',
  writesDisk: false,
  async run(ctx: DeployContext, io) {
    const { plan, options } = ctx;
    const chosen = await partition.chooseDisk({
      purpose: 'deployed to',
      path: options.disk,
      target: plan.target.disk,
      bootMedia: [options.bootMedium],
      missingHint: 'Give target.disk in the plan, or pass --disk.',
      signal: io.signal,
    });
    ctx.diskShown = chosen.path;
    ({ device: ctx.device, disk: ctx.disk } = await openDisk(io, chosen, { sectorSize: options.sectorSize }));
    // A layout from the image, or one that takes the image's identities, is resolved at check, once the image is read.
    const planned = planLayout(plan);
    if (planned !== FROM_IMAGE && plan.target.identities !== 'keep') ctx.layout = resolveTargetLayout(ctx, planned);
    await partition.assertDiskFree(ctx.device, ctx.diskShown);
    ctx.holds = await partition.describeContents(ctx.device, io.runOpts, recognizeDeploy);
    if (ctx.holds.length > 0 && !(ctx.layout?.wipe ?? plan.target.wipe)) {
      throw new ImagepeError('REFUSED', `${ctx.diskShown} is not blank: it holds ${ctx.holds.join('; ')}`, { hint: 'Set target.wipe: true in the plan to erase it, or choose another disk.' });
    }
    if (ctx.layout) await confirmDisk(ctx, ctx.layout);
    return `${ctx.diskShown}${ctx.device !== ctx.diskShown ? ` (${ctx.device})` : ''}, ${ctx.layout?.table ?? (isRawSource(plan.source) ? 'the image brings its table' : planned === FROM_IMAGE ? 'layout from the image' : 'layout resolved once the image is read')}, ${ctx.holds.length ? `wiping: ${ctx.holds.join('; ')}` : 'blank'}`;
  },
});
