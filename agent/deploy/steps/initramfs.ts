import { findInitramfsTool, rebuildInitramfs } from '../../system/initramfs.js';
import { defineStep, need, skipped } from '../../steps/index.js';
import { systemChroot, type DeployContext } from '../context.js';
import { linuxApplied } from './specialize.js';

/**
 * Every initramfs of the system rebuilt by its own tool (update-initramfs or dracut), in a
 * chroot on this machine: the resume device remap wrote, and drivers for this hardware when the
 * system builds host-only images. Its errors fail the step with the tool's stderr tail.
 */
export const initramfsStep = defineStep({
  name: 'initramfs',
  title: 'Initramfs rebuilt',
  writesDisk: true,
  skipIf: (ctx: DeployContext) => {
    if (ctx.plan.bootloader.initramfs === 'keep') return "the plan keeps the image's initramfs";
    return linuxApplied(ctx) ? undefined : 'no Linux system was applied';
  },
  async run(ctx: DeployContext, io) {
    const root = need(ctx.targetRoot, 'the target tree');
    const tool = await findInitramfsTool(root);
    if (!tool) return skipped('the image has neither update-initramfs nor dracut');
    const kernels = await rebuildInitramfs(await systemChroot(ctx, io), tool, io.signal);
    return `${tool === 'initramfs-tools' ? 'update-initramfs' : 'dracut'} for ${kernels.join(', ') || 'every kernel'}`;
  },
});
