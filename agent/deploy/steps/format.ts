import { formatBytes } from '../../../core/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, holdVolumeGroups, mountScratch, need } from '../../steps/index.js';
import { treeMountAt, treeMountOptions, type DeployContext } from '../context.js';
import { IN_PROGRESS_MARKER, writeMarker } from '../markers.js';
import { hasFilesystems } from './partition.js';

/**
 * The layout's filesystems made (mkfs, with the layout's labels and UUIDs), then the table and
 * filesystems read back and compared with the layout. Ends by writing the unfinished-deploy
 * marker on the root filesystem.
 */
export const formatStep = defineStep({
  name: 'format',
  title: 'Formatted',
  writesDisk: true,
  skipIf: (ctx: DeployContext) => (hasFilesystems(need(ctx.layout, 'the layout')) ? undefined : 'no partition has a filesystem'),
  async run(ctx: DeployContext, io) {
    const layout = need(ctx.layout, 'the layout');
    const device = need(ctx.device, 'the disk device');
    const nodes = need(ctx.nodes, 'the partition nodes');
    const libraryOpts = { events: io.events, ...(io.signal ? { signal: io.signal } : {}) };
    await partition.formatPartitions(layout, nodes, libraryOpts);
    if (layout.volumeGroups.length > 0) {
      // Registered before anything is mounted on them, so unwound after those mounts.
      holdVolumeGroups(io, layout.volumeGroups.map((g) => g.name), [...nodes.values()]);
      await partition.makeVolumeGroups(layout, nodes, libraryOpts);
    }
    ctx.applied = (await partition.readBack(layout, ctx.diskShown, device, nodes, io.runOpts)).partitions;
    // From here until verify replaces it with deployed.json, this file says the disk holds a
    // deploy that has not finished: a rerun names it (and the bootloader is not installed yet,
    // so nothing boots it). It is written on a mount of its own that is then unmounted, which
    // puts it in the filesystem proper rather than only in the journal: the rerun's probe does
    // not replay a journal (that would write), so after a power cut it sees only what was
    // checkpointed.
    const root = treeMountAt(ctx, '/');
    if (root) {
      const { plan } = ctx;
      const mounted = await mountScratch(io, root.partition.node, { prefix: 'target', fsType: root.partition.fsType!, options: treeMountOptions(root), what: `mounting ${root.partition.name} (${root.partition.node})` });
      await writeMarker(mounted.dir, IN_PROGRESS_MARKER, { source: plan.source.url, image: plan.source.image, startedAt: new Date().toISOString() });
      await mounted.resource.release();
    }
    const groups = layout.volumeGroups.map((g) => `; volume group ${g.name}: ${g.logicalVolumes.map((lv) => `${lv.lvName} ${formatBytes(lv.sizeBytes)}`).join(', ')}`).join('');
    return `${ctx.applied.filter((p) => p.fsType).map((p) => `${p.name}: ${p.fsType}`).join(', ')}${groups}`;
  },
});
