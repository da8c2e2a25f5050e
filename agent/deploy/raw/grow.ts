import { formatBytes, ImagepeError } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, need, skipped } from '../../steps/index.js';
import type { DeployContext } from '../context.js';

/**
 * The image made to fill the disk: the GPT's backup header moved to the disk's end, and one
 * partition (target.grow: a number or GPT name; by default the last one, with swap after it
 * moved to the end) grown with its filesystem, so a 2 GiB image fills a 16 GiB disk.
 */
export const growStep = defineStep({
  name: 'grow',
  title: 'Grown to the disk',
  writesDisk: true,
  async run(ctx: DeployContext, io) {
    const device = need(ctx.device, 'the disk device');
    const table = await partition.readTable(device, io.runOpts);
    if (!table) return skipped('the image has no partition table (a filesystem on the whole disk keeps its size)');
    const wanted = ctx.plan.target.grow;
    // grow: none still moves a GPT's backup header to the end: where the image left it, mid-disk, firmware and tools report the table damaged.
    const resize = wanted !== 'none';
    const number = wanted === undefined || !resize ? undefined : growTarget(table, wanted, ctx.plan.source.image);
    const r = await partition.growToDisk(device, { resize, ...(number !== undefined ? { partition: number } : {}), ...(io.signal ? { signal: io.signal } : {}) });
    ctx.grown = r;
    for (const n of r.notes) io.info(`grow: ${n}`);
    if (!resize) return r.backupHeaderMoved ? 'GPT backup header moved to the end; no partition grown (target.grow: none)' : skipped('target.grow: none');
    if (r.toBytes === r.fromBytes && !r.backupHeaderMoved) return skipped(`the image fills ${ctx.diskShown} already`);
    const moved = r.movedSwap.map((s) => `swap ${s.number} moved to the end`);
    return [
      r.backupHeaderMoved ? 'GPT backup header moved to the end' : undefined,
      `partition ${r.partition}${r.fsType ? ` (${r.fsType})` : ''} ${formatBytes(r.fromBytes)} -> ${formatBytes(r.toBytes)}${r.filesystemGrown ? ', filesystem grown' : r.fsType ? '' : ', no filesystem to grow'}`,
      ...moved,
    ]
      .filter(Boolean)
      .join(', ');
  },
});

/** target.grow as a partition number of the image's table: a number, or a GPT partition name. */
export function growTarget(table: partition.SfdiskTable, wanted: string, image: string): number {
  const numbers = (table.partitions ?? []).map((p) => ({ number: partition.partitionNumber(p.node), name: p.name }));
  const match = /^\d+$/.test(wanted) ? numbers.find((p) => p.number === Number(wanted)) : numbers.find((p) => p.name === wanted);
  if (!match) {
    throw new ImagepeError('NOT_FOUND', `target.grow: ${image} has no partition ${/^\d+$/.test(wanted) ? wanted : `named "${wanted}"`}; it has ${numbers.map((p) => `${p.number}${p.name ? ` "${p.name}"` : ''}`).join(', ') || 'none'}`, {
      hint: 'Name a partition of the image by number or GPT name, or leave target.grow out to grow the last one.',
    });
  }
  return match.number;
}
