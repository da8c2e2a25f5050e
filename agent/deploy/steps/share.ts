import { mapShare } from '../../share/index.js';
import { defineStep, holdShare } from '../../steps/index.js';
import type { DeployContext } from '../context.js';

/** The image's share, mapped as a local folder (read-write when the log goes there); released after the log is written. */
export const shareStep = defineStep({
  name: 'share',
  title: 'Share mapped',
  writesDisk: false,
  describe: (ctx: DeployContext) => ctx.plan.source.url,
  async run(ctx: DeployContext, io) {
    const { plan, options } = ctx;
    const share = await mapShare(plan.source, {
      writable: plan.logs,
      ...(io.signal ? { signal: io.signal } : {}),
      ...(options.mediaRoot ? { mediaRoot: options.mediaRoot } : {}),
      ...(options.mediaDevice ? { mediaDevice: options.mediaDevice } : {}),
    });
    ctx.share = share;
    holdShare(io, share, plan.source.url);
    return share.root ?? share.imageUrl?.href;
  },
});
