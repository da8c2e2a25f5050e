import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { remapReferences } from '../../system/remap.js';
import { defineStep, need } from '../../steps/index.js';
import { deployedVolumes, type DeployContext } from '../context.js';
import { mapVolumes } from '../identities.js';
import { linuxApplied } from './specialize.js';

/**
 * Every reference the system makes to the reference machine's storage rewritten to name the new
 * disk's: fstab, crypttab, the resume device, GRUB's and the initramfs tools' configuration, the
 * kernel command line, systemd mount and swap units. Each rewrite is in the log.
 */
export const remapStep = defineStep({
  name: 'remap',
  title: 'Storage references remapped',
  writesDisk: true,
  skipIf: (ctx: DeployContext) => (linuxApplied(ctx) ? undefined : 'no Linux system was applied'),
  async run(ctx: DeployContext, io) {
    const root = need(ctx.targetRoot, 'the target tree');
    const fstab = await readFile(join(root, 'etc/fstab'), 'utf8').catch(() => undefined);
    const map = mapVolumes(deployedVolumes(ctx), ctx.recordedVolumes, ctx.recordedMounts, fstab);
    const changes = await remapReferences(root, map);
    for (const c of changes) {
      io.info(`remap: ${c.file}${c.line ? `:${c.line}` : ''}: ${c.from} -> ${c.to}`);
      // A renamed unit's old name is gone on purpose.
      if (c.renamedFrom) ctx.changedPaths.add(c.renamedFrom);
    }
    if (changes.length === 0) return ctx.plan.target.identities === 'keep' ? 'nothing to rewrite: the filesystems keep the reference\'s identities' : 'no references to the reference\'s storage found';
    const files = [...new Set(changes.map((c) => c.file))];
    return `${changes.length} reference${changes.length === 1 ? '' : 's'} in ${files.join(', ')}`;
  },
});
