import { ImagepeError, mountsOf } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, holdVolumeGroups, need } from '../../steps/index.js';
import type { CaptureContext } from '../context.js';
import { chooseSource, describeCandidate, holdsOperatingSystem, sourceCandidate, type SourceCandidate } from '../find-root.js';
import { LV_KEY_BASE, partitionIdentities, recordLayout, type RecordVolumeGroup } from '../record-layout.js';
import { mountSystemTree, readFstab, systemMounts, usedBytes as systemUsedBytes } from '../system-tree.js';

/**
 * The partition to capture, found by looking (read-only): by label, by number, or the one that
 * holds an operating system. A mounted one (a running system) is refused. The other filesystems
 * of this disk that the system's fstab mounts (a separate /boot, /home, /var) are found and
 * measured; the capture takes them into the same image. The disk's layout is recorded, with
 * those mount points and the bytes in use, for deploys with layout: from-image.
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
      const numbers = (table.partitions ?? []).map((p) => partition.partitionNumber(p.node));
      const nodes = await partition.waitForPartitions(device, numbers, 15_000, io.runOpts);
      for (const p of table.partitions ?? []) {
        const number = partition.partitionNumber(p.node);
        const node = nodes.get(number)!;
        const fs = await partition.probeFilesystem(node, io.runOpts);
        filesystems.set(number, fs);
        candidates.push(sourceCandidate(number, node, p.size * (table.sectorsize ?? disk.sectorSize), p.name, fs));
      }
      // LVM: each volume group on this disk's partitions activated (read-only unless the plan
      // generalizes, which writes), its logical volumes looked at like partitions.
      const pvNodes = candidates.filter((c) => c.fsType === 'LVM2_member').map((c) => c.node);
      const lvmReady = pvNodes.length > 0 && (await partition.assertLvmReady(io.runOpts).then(
        () => true,
        (e: Error) => {
          // The root may be on a partition: the capture goes on, saying what it cannot see.
          io.warn(`${pvNodes.join(', ')} hold${pvNodes.length === 1 ? 's' : ''} LVM physical volumes whose logical volumes are not looked at here: ${e.message}`);
          return false;
        },
      ));
      if (lvmReady) {
        const readOnly = !ctx.plan.generalize;
        const found = await partition.activateVolumeGroups(pvNodes, { readOnly }, io.runOpts);
        holdVolumeGroups(io, found.map((g) => g.name), pvNodes);
        let key = LV_KEY_BASE;
        for (const g of found) {
          const lvs: RecordVolumeGroup['logicalVolumes'] = [];
          for (const lv of g.logicalVolumes) {
            const fs = await partition.probeFilesystem(lv.node, io.runOpts);
            filesystems.set(key, fs);
            candidates.push({ ...sourceCandidate(key, lv.node, lv.sizeBytes, undefined, fs), lv: `${g.name}/${lv.name}` });
            lvs.push({ key, name: lv.name, sizeBytes: lv.sizeBytes });
            key++;
          }
          const numbers = g.physicalVolumes.map((node) => candidates.find((c) => c.node === node)?.number).filter((n): n is number => n !== undefined);
          ctx.volumeGroups.push({ name: g.name, extentBytes: g.extentBytes, physicalVolumes: numbers, logicalVolumes: lvs });
        }
      }
    } else {
      // A filesystem on the whole disk: captured as it is, with no layout to record.
      candidates.push(sourceCandidate(1, device, disk.sizeBytes, undefined, await partition.probeFilesystem(device, io.runOpts)));
    }
    const src = await chooseSource(candidates, ctx.plan.source.partition, ctx.diskShown, (c) => holdsOperatingSystem(c, io.runOpts));
    const mounts = await mountsOf(src.node);
    if (mounts.length > 0) {
      throw new ImagepeError('DISK_IN_USE', `${describeCandidate(src)} is mounted on ${mounts.map((m) => m.mountPoint).join(', ')}`, {
        hint: 'Capture a reference that is not running: boot it into the PE (imagepe.mode=capture), or unmount the partition.',
      });
    }
    ctx.source = src;
    ctx.systemMounts = [];
    const usedBytes = new Map<number, number>();
    const defaults = new Map<number, string>();
    if (src.fsType !== 'ntfs') {
      // The system's own fstab says which other filesystems of this disk belong to it.
      const tree = await mountSystemTree(io, src, [], { readOnly: true, why: 'to read its fstab' });
      const identities = table ? partitionIdentities(table, filesystems) : new Map();
      for (const c of candidates) if (c.lv) identities.set(c.number, { partition: c.lv, lv: c.lv, ...(c.fsType ? { fsType: c.fsType } : {}), ...(filesystems.get(c.number)?.UUID ? { uuid: filesystems.get(c.number)!.UUID } : {}), ...(c.label ? { label: c.label } : {}) });
      const found = table ? systemMounts(await readFstab(tree.dir), candidates, identities, src) : { mounts: [], notes: [] };
      await tree.release();
      for (const n of found.notes) io.warn(n);
      const whole = await mountSystemTree(io, src, found.mounts, { readOnly: true, why: 'to measure it' });
      // statfs of a btrfs subvolume counts its whole filesystem: one figure per partition either way.
      usedBytes.set(src.number, await systemUsedBytes(whole.dir));
      for (const m of found.mounts) usedBytes.set(m.candidate.number, await systemUsedBytes(`${whole.dir}${m.mount}`));
      const tolerant = (what: string) => ({ ...io.runOpts(what), okExitCodes: [0, 1] });
      if (src.fsType === 'btrfs') {
        const def = await partition.defaultSubvolume(whole.dir, src.node, tolerant);
        if (def) defaults.set(src.number, def);
      }
      for (const m of found.mounts) {
        if (m.candidate.fsType !== 'btrfs' || defaults.has(m.candidate.number)) continue;
        const def = await partition.defaultSubvolume(`${whole.dir}${m.mount}`, m.candidate.node, tolerant);
        if (def) defaults.set(m.candidate.number, def);
      }
      await whole.release();
      ctx.systemMounts = found.mounts;
    }
    if (table) {
      const mounts = new Map<number, string>();
      const subvolumes = new Map<number, { name: string; mount: string }[]>();
      if (src.subvolume) subvolumes.set(src.number, [{ name: src.subvolume, mount: '/' }]);
      for (const m of ctx.systemMounts) {
        if (m.subvolume) subvolumes.set(m.candidate.number, [...(subvolumes.get(m.candidate.number) ?? []), { name: m.subvolume, mount: m.mount }]);
        if (m.candidate.number !== src.number && !mounts.has(m.candidate.number)) mounts.set(m.candidate.number, m.mount);
      }
      const r = recordLayout({ table, filesystems, imagePartition: src.number, mounts, usedBytes, subvolumes, defaultSubvolumes: defaults, volumeGroups: ctx.volumeGroups });
      ctx.recorded = r.recorded;
      for (const n of r.notes) io.warn(`layout: ${n}`);
      try {
        // The recorded layout must at least fit the disk it was read from.
        partition.resolveLayout(partition.parseLayout(r.recorded.layout, 'the recorded layout'), disk);
      } catch (e) {
        io.warn(`the recorded layout does not fit the reference disk itself, so deploys with layout: from-image may fail: ${(e as Error).message}`);
      }
    } else io.warn(`${ctx.diskShown} has no partition table: no layout is recorded, so deploy plans for this image need target.layout`);
    const groups = ctx.volumeGroups.length ? `; LVM: ${ctx.volumeGroups.map((g) => `${g.name} (${g.logicalVolumes.map((lv) => lv.name).join(', ')})`).join(', ')}` : '';
    return `${describeCandidate(src)}${src.subvolume ? `, subvolume ${src.subvolume}` : ''}${ctx.systemMounts.length ? `, with ${ctx.systemMounts.map((m) => `${m.mount} (${m.candidate.node}${m.subvolume ? ` ${m.subvolume}` : ''})`).join(', ')}` : ''}${groups}`;
  },
});
