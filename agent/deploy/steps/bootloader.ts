import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError } from '../../../core/index.js';
import { installGrub } from '../../bootloader/index.js';
import { defineStep, need } from '../../steps/index.js';
import { findImageGrub, installImageGrub } from '../../system/grub.js';
import { readAssignments, valueText } from '../../system/shell.js';
import { bootPartition, espOf, partitionNamed, systemChroot, treeMountAt, treePartitionAt, type DeployContext } from '../context.js';
import { linuxApplied } from './specialize.js';

/**
 * GRUB for the plan's firmware, installed last of the writes: a disk left half-done by a failure
 * or a power cut has no boot code pointing at a broken system. A system with its own GRUB gets it
 * installed and configured by its own grub-install and update-grub, so its kernel and GRUB
 * updates keep working; others get the PE's GRUB with a generated grub.cfg.
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
    if (!rootPart?.uuid) throw new ImagepeError('INVALID_INPUT', 'GRUB needs an ext4, xfs or btrfs root partition (mount: /)');
    const bootPart = bootPartition(ctx);
    const targetRoot = need(ctx.targetRoot, 'the target tree');
    const esp = espOf(ctx);
    const imageGrub = linuxApplied(ctx) ? await findImageGrub(targetRoot) : undefined;
    if (imageGrub) {
      const grub = await installImageGrub({
        chroot: await systemChroot(ctx, io),
        grub: imageGrub,
        firmware: plan.bootloader.firmware,
        device: need(ctx.device, 'the disk device'),
        espNode: esp ? partitionNamed(ctx, esp.name).node : undefined,
        bootUuid: bootPart.uuid!,
        bootPrefix: bootPart.mount === '/' ? '/boot' : '',
        bootSubvolume: treeMountAt(ctx, bootPart.mount)?.subvolume,
        bootloaderId: await osId(targetRoot),
        kernelArgs: plan.bootloader.kernelArgs,
        secureBoot: plan.bootloader.secureBoot,
        diskNames: need(ctx.applied, 'the partitions').map((p) => ({ node: p.node, uuid: p.uuid, partuuid: p.partuuid, label: p.label, partlabel: need(ctx.layout, 'the layout').table === 'gpt' ? p.name : undefined })),
        signal: io.signal,
        warn: io.warn,
      });
      ctx.grub = grub;
      return [`the image's ${imageGrub.install}`, grub.bios ? 'BIOS' : '', grub.efiBinary ? `UEFI ${grub.efiBinary}${signedNote(grub.signedChain)}` : '', `grub.cfg by ${imageGrub.mkconfig.command}`, `kernel ${grub.kernel}`].filter(Boolean).join(', ');
    }
    const grub = await installGrub({
      firmware: plan.bootloader.firmware,
      device: need(ctx.device, 'the disk device'),
      ...(esp ? { espNode: partitionNamed(ctx, esp.name).node } : {}),
      bootMount: join(targetRoot, bootPart.mount!),
      bootPrefix: bootPart.mount === '/' ? '/boot' : '',
      bootUuid: bootPart.uuid!,
      bootFsType: bootPart.fsType!,
      rootUuid: rootPart.uuid,
      rootPartuuid: rootPart.partuuid,
      rootMount: join(targetRoot, '/'),
      kernelArgs: plan.bootloader.kernelArgs,
      secureBoot: plan.bootloader.secureBoot,
      bootloaderId: await osId(targetRoot),
      title: hostname ? `imagepe: ${hostname}` : `imagepe: ${need(ctx.images, 'the images')[0]!.name}`,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    ctx.grub = grub;
    return [grub.bios ? 'BIOS' : '', grub.efiBinary ? `UEFI ${grub.efiBinary}${signedNote(grub.signedChain)}` : '', `kernel ${grub.kernel}`].filter(Boolean).join(', ');
  },
});

function signedNote(chain: 'image' | 'pe' | undefined): string {
  return chain === undefined ? ' (unsigned)' : ` (shim and signed GRUB from the ${chain === 'image' ? "image's packages" : 'PE'})`;
}

/** The system's ID from os-release (debian, ubuntu, fedora): the folder its GRUB goes into on the ESP. */
async function osId(root: string): Promise<string> {
  for (const f of ['etc/os-release', 'usr/lib/os-release']) {
    const text = await readFile(join(root, f), 'utf8').catch(() => '');
    const id = readAssignments(text).find((a) => a.name === 'ID');
    const value = id ? valueText(id.parts) : undefined;
    if (value && /^[a-z0-9._-]+$/.test(value)) return value;
  }
  return 'linux';
}
