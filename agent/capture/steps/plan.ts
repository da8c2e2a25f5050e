import { defineStep } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';

export const planStep = defineStep({
  name: 'plan',
  title: 'Plan loaded',
  writesDisk: false,
  describe: (ctx: CaptureContext) => ctx.options.planFile,
  async run(ctx: CaptureContext) {
    const dest = ctx.plan.destination;
    return `"${dest.name}" to ${dest.url} ${dest.file}${dest.append ? ' (append)' : ''}${ctx.plan.generalize ? '; generalize first' : ''}`;
  },
});
