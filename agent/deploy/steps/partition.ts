import { formatBytes } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, need } from '../../steps/index.js';
import type { DeployContext } from '../context.js';

/**
 * The first write: what the disk held is wiped and the layout's partition table written, then
 * the kernel's partition nodes are waited for. With nothing to format, the table is read back
 * and compared here; otherwise format does that once the filesystems are made.
 */
export const partitionStep = defineStep({
  name: 'partition',
  title: 'Partitioned',
  writesDisk: true,
  describe: (ctx: DeployContext) => `${need(ctx.layout, 'the layout').table}, ${ctx.layout!.partitions.length} partitions`,
  async run(ctx: DeployContext, io) {
    const layout = need(ctx.layout, 'the layout');
    const device = need(ctx.device, 'the disk device');
    const libraryOpts = { events: io.events, ...(io.signal ? { signal: io.signal } : {}) };
    ctx.nodes = await partition.writeTable(layout, device, { ...libraryOpts, wipe: ctx.holds.length > 0 });
    if (!hasFilesystems(layout)) ctx.applied = (await partition.readBack(layout, ctx.diskShown, device, ctx.nodes, io.runOpts)).partitions;
    return `${layout.table}: ${layout.partitions.map((p) => `${p.name} ${formatBytes(p.sizeBytes)}`).join(', ')}`;
  },
});

export function hasFilesystems(layout: partition.ResolvedLayout): boolean {
  return layout.partitions.some((p) => p.format !== 'none');
}
