import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { placeUnattend, specializeLinux } from '../../specialize/index.js';
import type { MappedShare } from '../../share/index.js';
import { defineStep, need, skipped } from '../../steps/index.js';
import { partitionNamed, treePartitionAt, type DeployContext } from '../context.js';

/** This machine's identity on the copy: host name, a new machine-id, the plan's files; unattend.xml for Windows. */
export const specializeStep = defineStep({
  name: 'specialize',
  title: 'Specialized',
  writesDisk: true,
  async run(ctx: DeployContext, io) {
    const { plan, hostname } = ctx;
    const did: string[] = [];
    if (linuxApplied(ctx)) {
      const spec = await specializeLinux(join(need(ctx.targetRoot, 'the target tree'), '/'), {
        ...(hostname ? { hostname } : {}),
        machineId: plan.specialize.machineId,
        removeSshHostKeys: plan.specialize.removeSshHostKeys,
        files: plan.specialize.files,
      });
      ctx.machineId = spec.machineId;
      if (hostname) did.push(`hostname ${hostname}`);
      if (ctx.machineId) did.push('new machine-id');
      const keys = spec.removed.filter((r) => r.startsWith('/etc/ssh/'));
      if (keys.length) did.push(`${keys.length} SSH host keys removed`);
      if (plan.specialize.files.length) did.push(`${plan.specialize.files.length} files written`);
    }
    if (plan.specialize.unattend) {
      const unattend = plan.specialize.unattend;
      const xml = 'xml' in unattend ? unattend.xml : await readFile(unattendPath(unattend.file, ctx.share), 'utf8');
      const ntfsEntry = plan.apply.find((a) => partitionNamed(ctx, a.partition).fsType === 'ntfs')!;
      did.push(await placeUnattend(partitionNamed(ctx, ntfsEntry.partition).node, xml, io.signal));
    }
    return did.length ? did.join(', ') : skipped('nothing to specialize');
  },
});

/** A Linux tree was applied to a root filesystem: the image is a Linux system to specialize. */
export function linuxApplied(ctx: DeployContext): boolean {
  return treePartitionAt(ctx, '/') !== undefined && ctx.plan.apply.some((a) => partitionNamed(ctx, a.partition).fsType !== 'ntfs');
}

function unattendPath(file: string, share: MappedShare | undefined): string {
  // A relative answer file lives on the share, next to the image.
  if (file.startsWith('/') || !share?.root) return file;
  return join(share.root, file);
}
