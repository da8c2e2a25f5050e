import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as partition from '../../../partition/index.js';
import { holdsOperatingSystem, sourceCandidate, type SourceCandidate } from '../../capture/find-root.js';
import { partitionIdentities } from '../../capture/record-layout.js';
import { mountSystemTree, readFstab, systemMounts } from '../../capture/system-tree.js';
import { answersTo, parseReference, readTable as readFsTable } from '../../system/references.js';
import { defineStep, need, skipped } from '../../steps/index.js';
import type { DeployContext } from '../context.js';
import { IN_PROGRESS_MARKER, writeMarker } from '../markers.js';

/**
 * The system the raw image holds, mounted as it mounts itself: the one partition holding a
 * Linux root (etc/os-release, sbin/init), with the filesystems its own fstab mounts from this
 * disk inside it, read-write, for specialize. An image with no Linux root (a data disk, another
 * operating system) is written and grown only: the step says so and specialize has nothing to do.
 */
export const rawSystemStep = defineStep({
  name: 'system',
  title: 'System found',
  writesDisk: true,
  async run(ctx: DeployContext, io) {
    const device = need(ctx.device, 'the disk device');
    const table = await partition.readTable(device, io.runOpts);
    if (!table) return skipped('the image has no partition table');
    ctx.rawTable = table;
    const sectorSize = table.sectorsize ?? need(ctx.disk, 'the disk').sectorSize;
    const numbers = (table.partitions ?? []).map((p) => partition.partitionNumber(p.node));
    const nodes = await partition.waitForPartitions(device, numbers, 15_000, io.runOpts);
    const filesystems = new Map<number, Record<string, string>>();
    const candidates: SourceCandidate[] = [];
    for (const p of table.partitions ?? []) {
      const number = partition.partitionNumber(p.node);
      const fs = await partition.probeFilesystem(nodes.get(number)!, io.runOpts);
      filesystems.set(number, fs);
      candidates.push(sourceCandidate(number, nodes.get(number)!, p.size * sectorSize, p.name, fs));
    }
    const applied: partition.AppliedPartition[] = (table.partitions ?? []).map((p) => {
      const number = partition.partitionNumber(p.node);
      const fs = filesystems.get(number) ?? {};
      return {
        number,
        name: p.name?.trim() || `p${number}`,
        node: nodes.get(number)!,
        start: p.start,
        size: p.size,
        typeCode: p.type,
        ...(table.label === 'gpt' && p.uuid ? { partuuid: p.uuid } : {}),
        bootable: p.bootable === true,
        ...(fs.TYPE ? { fsType: fs.TYPE } : {}),
        ...(fs.LABEL ? { label: fs.LABEL } : {}),
        ...(fs.UUID ? { uuid: fs.UUID } : {}),
      };
    });
    ctx.applied = applied;
    const roots: SourceCandidate[] = [];
    for (const c of candidates) if (c.fsType && ['ext4', 'ext3', 'ext2', 'xfs', 'btrfs'].includes(c.fsType) && (await holdsOperatingSystem(c, io.runOpts))) roots.push(c);
    if (roots.length !== 1) return skipped(roots.length === 0 ? 'no partition holds a Linux system: nothing to specialize' : `${roots.length} partitions hold a Linux system: not choosing one to specialize`);
    const root = roots[0]!;
    const rootApplied = applied.find((p) => p.number === root.number)!;
    rootApplied.mount = '/';
    if (root.subvolume) rootApplied.subvolumes = [{ name: root.subvolume, mount: '/' }];
    const first = await mountSystemTree(io, root, [], { readOnly: true, why: 'to read its fstab' });
    const fstab = await readFstab(first.dir);
    await first.release();
    const identities = partitionIdentities(table, filesystems);
    const found = systemMounts(fstab, candidates, identities, root);
    for (const n of found.notes) io.info(n);
    for (const m of found.mounts) {
      const p = applied.find((a) => a.number === m.candidate.number)!;
      if (m.subvolume) p.subvolumes = [...(p.subvolumes ?? []), { name: m.subvolume, mount: m.mount }];
      else p.mount = m.mount;
    }
    // What the tree does not mount (the ESP, swap) gets its mount point from its fstab line, for boot readiness.
    for (const e of readFsTable(fstab ?? '')) {
      const [spec, mount, type] = e.fields;
      const reference = spec ? parseReference(spec) : undefined;
      if (!reference || !mount) continue;
      const p = applied.find((a) => !a.mount && !a.subvolumes && answersTo(identities.get(a.number) ?? { partition: '' }, reference));
      if (p) p.mount = type === 'swap' ? 'swap' : mount;
    }
    const tree = await mountSystemTree(io, root, found.mounts, { readOnly: false, why: 'to specialize it' });
    ctx.targetRoot = tree.dir;
    // Until verify replaces it, the disk says it holds an unfinished deploy (as a WIM deploy's does).
    await rm(join(tree.dir, IN_PROGRESS_MARKER), { force: true });
    await writeMarker(tree.dir, IN_PROGRESS_MARKER, { source: ctx.plan.source.url, image: ctx.plan.source.image, startedAt: new Date().toISOString() });
    return `${root.node}${root.subvolume ? ` (subvolume ${root.subvolume})` : ''} holds the system${found.mounts.length ? `; its fstab mounts ${found.mounts.map((m) => m.mount).join(', ')} from this disk` : ''}`;
  },
});
