import { expandHostname, FROM_IMAGE, isRawSource, readMachineFacts } from '../../plan/index.js';
import { defineStep } from '../../steps/index.js';
import type { DeployContext } from '../context.js';

/** The plan as this machine reads it: the host name's tokens filled in from the firmware's facts. */
export const planStep = defineStep({
  name: 'plan',
  title: 'Plan loaded',
  writesDisk: false,
  describe: (ctx: DeployContext) => ctx.options.planFile,
  async run(ctx: DeployContext) {
    const { plan } = ctx;
    if (plan.specialize.hostname) ctx.hostname = expandHostname(plan.specialize.hostname, ctx.options.facts ?? (await readMachineFacts()));
    const count = Math.max(1, plan.apply.length);
    const what = isRawSource(plan.source) ? `raw disk image ${plan.source.image}` : `${count} image${count > 1 ? 's' : ''}`;
    const layout = isRawSource(plan.source) ? ', written whole' : plan.target.layout === FROM_IMAGE ? ', layout from the image' : '';
    return `${what} from ${plan.source.url}${layout}${ctx.hostname ? `, hostname ${ctx.hostname}` : ''}`;
  },
});
