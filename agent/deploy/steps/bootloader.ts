import { join } from 'node:path';
import { ImagepeError } from '../../../core/index.js';
import { installGrub } from '../../bootloader/index.js';
import { defineStep, need } from '../../steps/index.js';
import { bootPartition, espOf, partitionNamed, treePartitionAt, type DeployContext } from '../context.js';

/**
 * GRUB for the plan's firmware, installed last of the writes: a disk left half-done by a failure
 * or a power cut has no boot code pointing at a broken system.
 */
export const bootloaderStep = defineStep({
  name: 'bootloader',
  title: 'Bootloader',
  writesDisk: true,
  skipIf: (ctx: DeployContext) => (ctx.plan.bootloader.type === 'none' ? 'the plan asks for none' : undefined),
  describe: (ctx: DeployContext) => (ctx.plan.bootloader.type === 'grub' ? ctx.plan.bootloader.firmware : undefined),
  async run(ctx: DeployContext, io) {
    const { plan, hostname } = ctx;
    if (plan.bootloader.type !== 'grub') throw new Error('only GRUB is installed');
    const rootPart = treePartitionAt(ctx, '/');
    if (!rootPart?.uuid) throw new ImagepeError('INVALID_INPUT', 'GRUB needs an ext4 or xfs root partition (mount: /)');
    const bootPart = bootPartition(ctx);
    const targetRoot = need(ctx.targetRoot, 'the target tree');
    const esp = espOf(ctx);
    const grub = await installGrub({
      firmware: plan.bootloader.firmware,
      device: need(ctx.device, 'the disk device'),
      ...(esp ? { espNode: partitionNamed(ctx, esp.name).node } : {}),
      bootMount: join(targetRoot, bootPart.mount!),
      bootPrefix: bootPart === rootPart ? '/boot' : '',
      bootUuid: bootPart.uuid!,
      bootFsType: bootPart.fsType!,
      rootUuid: rootPart.uuid,
      rootPartuuid: rootPart.partuuid,
      rootMount: join(targetRoot, '/'),
      kernelArgs: plan.bootloader.kernelArgs,
      title: hostname ? `imagepe: ${hostname}` : `imagepe: ${need(ctx.images, 'the images')[0]!.name}`,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    ctx.grub = grub;
    return [grub.bios ? 'BIOS' : '', grub.efiBinary ? `UEFI ${grub.efiBinary}` : '', `kernel ${grub.kernel}`].filter(Boolean).join(', ');
  },
});
