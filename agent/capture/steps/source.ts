import { ImagepeError, mountsOf } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, need } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';
import { chooseSource, describeCandidate, holdsOperatingSystem, type SourceCandidate } from '../find-root.js';
import { recordLayout } from '../record-layout.js';

/**
 * The partition to capture, found by looking (read-only): by label, by number, or the one that
 * holds an operating system. A mounted one (a running system) is refused. The disk's layout is
 * recorded for deploys with layout: from-image.
 */
export const sourceStep = defineStep({
  name: 'source',
  title: 'Source found',
  writesDisk: false,
  describe: (ctx: CaptureContext) => {
    const p = ctx.plan.source.partition;
    return typeof p === 'string' ? 'the partition holding an operating system' : 'label' in p ? `label ${p.label}` : `partition ${p.number}`;
  },
  async run(ctx: CaptureContext, io) {
    const device = need(ctx.device, 'the disk device');
    const disk = need(ctx.disk, 'the disk');
    const table = ctx.table;
    const filesystems = new Map<number, Record<string, string>>();
    const candidates: SourceCandidate[] = [];
    if (table) {
      const numbers = (table.partitions ?? []).map((p) => partitionNumber(p.node));
      const nodes = await partition.waitForPartitions(device, numbers, 15_000, io.runOpts);
      for (const p of table.partitions ?? []) {
        const number = partitionNumber(p.node);
        const node = nodes.get(number)!;
        const fs = await partition.probeFilesystem(node, io.runOpts);
        filesystems.set(number, fs);
        candidates.push(candidate(number, node, p.size * (table.sectorsize ?? disk.sectorSize), p.name, fs));
      }
    } else {
      // A filesystem on the whole disk: captured as it is, with no layout to record.
      candidates.push(candidate(1, device, disk.sizeBytes, undefined, await partition.probeFilesystem(device, io.runOpts)));
    }
    const src = await chooseSource(candidates, ctx.plan.source.partition, ctx.diskShown, (c) => holdsOperatingSystem(c, io.runOpts));
    const mounts = await mountsOf(src.node);
    if (mounts.length > 0) {
      throw new ImagepeError('DISK_IN_USE', `${describeCandidate(src)} is mounted on ${mounts.map((m) => m.mountPoint).join(', ')}`, {
        hint: 'Capture a reference that is not running: boot it into the PE (imagepe.mode=capture), or unmount the partition.',
      });
    }
    ctx.source = src;
    if (table) {
      const r = recordLayout({ table, filesystems, imagePartition: src.number });
      ctx.recorded = r.recorded;
      for (const n of r.notes) io.warn(`layout: ${n}`);
      try {
        // The recorded layout must at least fit the disk it was read from.
        partition.resolveLayout(partition.parseLayout(r.recorded.layout, 'the recorded layout'), disk);
      } catch (e) {
        io.warn(`the recorded layout does not fit the reference disk itself, so deploys with layout: from-image may fail: ${(e as Error).message}`);
      }
    } else io.warn(`${ctx.diskShown} has no partition table: no layout is recorded, so deploy plans for this image need target.layout`);
    return describeCandidate(src);
  },
});

function candidate(number: number, node: string, sizeBytes: number, name: string | undefined, fs: Record<string, string>): SourceCandidate {
  const c: SourceCandidate = { number, node, sizeBytes };
  if (name) c.name = name;
  if (fs.TYPE) c.fsType = fs.TYPE;
  if (fs.LABEL) c.label = fs.LABEL;
  return c;
}

function partitionNumber(node: string): number {
  return Number(/(\d+)$/.exec(node)?.[1] ?? NaN);
}
