import { formatBytes, run } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, openDisk } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';

/**
 * The reference disk: named, picked by the plan's rule, or the only disk that could be meant;
 * never the boot medium. An image file is attached read-only unless generalize is to write.
 */
export const diskStep = defineStep({
  name: 'disk',
  title: 'Disk chosen',
  writesDisk: false,
  async run(ctx: CaptureContext, io) {
    const { plan, options } = ctx;
    const chosen = await partition.chooseDisk({
      purpose: 'captured from',
      path: options.disk,
      target: plan.source.disk,
      onlyCandidate: true,
      bootMedia: [options.bootMedium, options.mediaDevice],
      signal: io.signal,
    });
    ctx.diskShown = chosen.path;
    // Without generalize nothing may write to the reference, and a read-only loop device makes sure.
    ({ device: ctx.device, disk: ctx.disk } = await openDisk(io, chosen, { readOnly: !plan.generalize, sectorSize: options.sectorSize }));
    await run('partx', ['--update', ctx.device], { ...io.runOpts(`reading the partitions of ${ctx.device}`), okExitCodes: [0, 1] });
    ctx.table = await partition.readTable(ctx.device, io.runOpts);
    const t = ctx.table;
    return `${ctx.diskShown}${ctx.device !== ctx.diskShown ? ` (${ctx.device})` : ''}, ${formatBytes(ctx.disk.sizeBytes)}, ${t ? `${t.label === 'dos' ? 'MBR' : t.label.toUpperCase()} with ${(t.partitions ?? []).length} partitions` : 'no partition table'}`;
  },
});
