import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { formatBytes, ImagepeError, parseSize, pathKind } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import * as partition from '../../../partition/index.js';
import { LAYOUT_PROPERTY, parseRecordedLayout } from '../../capture/index.js';
import { keepIdentities, type RecordedImage } from '../identities.js';
import { FROM_IMAGE, formatPath, layoutProblems, planLayout, PlanError, type DeployPlan } from '../../plan/index.js';
import { defineStep, need, type StepIO } from '../../steps/index.js';
import { confirmDisk, resolveTargetLayout, type DeployContext } from '../context.js';
import { assertSha256, download, sha256File } from '../hash.js';
import { findMulticastOffer } from '../multicast-offer.js';
import { capacityProblems, partitionNeeds, replanLayout } from '../replan.js';

/**
 * The image is what the plan names, before the disk is touched: downloaded (http) or found on
 * the share, its sha256 compared with the plan's or its integrity table checked, and the images
 * the plan applies found in it. A layout recorded in the image (layout: from-image) is re-planned
 * for this disk (replan.ts), resolved and confirmed here; any layout is refused when a partition
 * is too small for the files the reference had on it (measured at capture).
 */
export const checkStep = defineStep({
  name: 'check',
  title: 'Image checked',
  writesDisk: false,
  describe: (ctx: DeployContext) => ctx.plan.source.image,
  async run(ctx: DeployContext, io) {
    const { source } = ctx.plan;
    const share = need(ctx.share, 'the share');
    const signalOpt = io.signal ? { signal: io.signal } : {};
    let how: string;
    const remote = share.imageUrl ? await streamable(ctx, share.imageUrl, io) : undefined;
    if (remote) {
      ctx.remote = remote;
      if (source.multicast === 'auto') ctx.multicast = await findMulticastOffer(remote.url, signalOpt);
      const arrival = ctx.multicast ? `received by multicast from ${ctx.multicast.server} (port ${ctx.multicast.portbase}) into apply` : 'streamed into apply';
      how = `${arrival} (pipable WIM, ${formatBytes(remote.sizeBytes)}): every file's SHA-1 checked as it arrives${source.sha256 ? ', the sha256 at the end' : ''}`;
    } else if (share.imageUrl) {
      const url = share.imageUrl;
      if (/\.swm$/i.test(source.image)) throw splitOverHttp(url.href);
      const dest = join(ctx.options.scratchDir ?? tmpdir(), `imagepe-${process.pid}-${basename(source.image)}`);
      io.cleanup.add(`remove ${dest}`, () => rm(dest, { force: true }));
      const got = await download(url, dest, { onProgress: io.progress, ...signalOpt });
      ctx.wimPath = dest;
      if (source.sha256) assertSha256(got.sha256, source.sha256, url.href);
      how = source.sha256 ? 'sha256 matches' : 'downloaded';
    } else {
      ctx.wimPath = need(share.imagePath, 'the image path');
      if ((await pathKind(ctx.wimPath)) !== 'file') throw new ImagepeError('NOT_FOUND', `the image ${source.image} is not on the share (${source.url})`);
      if (source.sha256) {
        assertSha256(await sha256File(ctx.wimPath, { onProgress: io.progress, ...signalOpt }), source.sha256, source.image);
        how = 'sha256 matches';
      } else how = '';
    }
    let wim = remote ? remote.info : await imaging.info(need(ctx.wimPath, 'the image'), signalOpt);
    let splitNote = '';
    if (wim.totalParts > 1) {
      if (share.imageUrl) throw splitOverHttp(share.imageUrl.href);
      // Every part before the disk is touched: apply reads them all (beside the first, as split names them).
      const local = need(ctx.wimPath, 'the image');
      const parts = await imaging.splitParts(local).catch((e: unknown) => {
        // Name the parts as the plan names the image, not by the share's mount point in the PE.
        if (e instanceof ImagepeError) throw new ImagepeError(e.code, e.message.split(dirname(local)).join(dirname(`${source.url.replace(/\/$/, '')}/${source.image}`)), { cause: e, ...(e.hint ? { hint: e.hint.split(dirname(local)).join(source.url) } : {}) });
        throw e;
      });
      splitNote = `; split WIM, all ${parts.length} parts found${source.sha256 ? ' (the sha256 is the first part\'s)' : ''}`;
    }
    if (!source.sha256 && !remote) {
      if (wim.hasIntegrityTable) {
        wim = await imaging.info(need(ctx.wimPath, 'the image'), { check: true, ...signalOpt });
        how = 'integrity table verified';
      } else {
        how = 'not verified: no sha256 in the plan and no integrity table in the WIM';
        io.warn(`${source.image} was not verified: give source.sha256 in the plan, or capture with an integrity table (--check)`);
      }
    }
    how += splitNote;
    // Messages name the image as the plan does, not by the share's mount point in the PE.
    const shownWim = { ...wim, path: share.imageUrl ? share.imageUrl.href : `${source.url.replace(/\/$/, '')}/${source.image}` };
    const image = imaging.selectImage(shownWim, source.index);
    const where = `image ${image.index} "${image.name}" of ${source.image}`;
    const recordedText = remote ? remote.property(image.index, LAYOUT_PROPERTY) : await imaging.imageProperty(need(ctx.wimPath, 'the image'), image.index, LAYOUT_PROPERTY, signalOpt);
    const recorded = recordedText === undefined ? undefined : parseRecordedLayout(recordedText, where);
    if (recorded) {
      ctx.recordedVolumes = recorded.volumes;
      for (const p of partition.layoutVolumes(recorded.layout)) if (p.mount) ctx.recordedMounts.set(p.name, p.mount);
    }
    let replannedNotes: string[] = [];
    if (!ctx.layout) {
      let layout: partition.Layout;
      const planned = planLayout(ctx.plan);
      if (planned === FROM_IMAGE) {
        const resolved = layoutFromImage(ctx.plan, recorded, where);
        ctx.plan = resolved.plan;
        const { grow = recorded!.imagePartition, minSwap } = ctx.plan.target;
        const growable = partition.layoutVolumes(resolved.layout).filter((p) => p.format !== 'lvm');
        if (!growable.some((p) => p.name === grow)) {
          throw new PlanError([`target.grow: expected the name of a partition or logical volume (VG/LV) of the layout recorded in ${where} (${growable.map((p) => p.name).join(', ')})`], 'the plan');
        }
        const replanned = replanLayout(resolved.layout, need(ctx.disk, 'the disk'), { grow, volumes: ctx.recordedVolumes, recordedMounts: ctx.recordedMounts, minSwapBytes: minSwap === undefined ? undefined : parseSize(minSwap), rebuild: ctx.plan.bootloader.initramfs === 'rebuild' });
        for (const n of replanned.notes) io.info(`re-planned: ${n}`);
        replannedNotes = replanned.notes;
        layout = replanned.layout;
      } else layout = planned;
      if (ctx.plan.target.identities === 'keep') {
        // A streamed image has its identities recorded (streamable() made sure): fstab is only the fallback.
        const fstab = ctx.remote ? undefined : await imaging.readImageFile(need(ctx.wimPath, 'the image'), rootImageIndex(ctx.plan, layout) ?? image.index, '/etc/fstab', signalOpt);
        const kept = keepIdentities(layout, recorded, fstab);
        for (const n of kept.notes) io.warn(n);
        layout = kept.layout;
      }
      ctx.layout = resolveTargetLayout(ctx, layout);
      assertRoomForData(ctx, where);
      await confirmDisk(ctx, ctx.layout);
    } else assertRoomForData(ctx, where);
    // Before the first write: a layout with volume groups on a machine where LVM cannot run.
    if (ctx.layout.volumeGroups.length > 0) await partition.assertLvmReady(io.runOpts);
    const plan = ctx.plan;
    ctx.images = plan.apply.map((a) => imaging.selectImage(shownWim, a.index ?? plan.source.index));
    return `${how}; image${ctx.images.length > 1 ? 's' : ''} ${ctx.images.map((i) => `${i.index} "${i.name}"`).join(', ')}${replannedNotes.length ? `; layout re-planned: ${replannedNotes.join('; ')}` : ''}`;
  },
});

/**
 * The HTTP image as a pipable WIM to stream into apply, or undefined to download it first as
 * before: the image is not pipable, the server ignores range requests (its header and XML could
 * not be read without the whole file), or the plan keeps the reference's identities, which needs
 * the image's /etc/fstab before the disk is partitioned. Each reason is said in the log.
 */
async function streamable(ctx: DeployContext, url: URL, io: StepIO): Promise<imaging.RemoteWim | undefined> {
  let remote: imaging.RemoteWim;
  try {
    remote = await imaging.readRemoteWim(url, io.signal ? { signal: io.signal } : {});
  } catch (e) {
    if (e instanceof ImagepeError && e.code === 'UNSUPPORTED') {
      io.info(`${url.href} is downloaded before it is applied: ${e.message}`);
      return undefined;
    }
    throw e;
  }
  if (!remote.pipable) {
    io.info(`${url.href} is downloaded before it is applied (it needs room in memory for the whole file): it is not a pipable WIM; capture with --pipable, or imagepe export SRC all DEST --pipable, to stream it`);
    return undefined;
  }
  // Keeping identities needs the reference's: imagepe's capture mode records them in the XML,
  // which the range requests read; an image captured otherwise has only its /etc/fstab to say.
  if (ctx.plan.target.identities === 'keep' && remote.property(imaging.selectImage(remote.info, ctx.plan.source.index).index, LAYOUT_PROPERTY) === undefined) {
    io.info(`${url.href} is downloaded before it is applied: identities: keep reads the image's /etc/fstab before the disk is partitioned (it records no layout)`);
    return undefined;
  }
  return remote;
}

/** A split WIM's parts are separate files that apply reads side by side; over HTTP only one file is fetched. */
function splitOverHttp(href: string): ImagepeError {
  return new ImagepeError('UNSUPPORTED', `${href} is (part of) a split WIM, which cannot be deployed from an http:// URL: only the first part would be fetched`, {
    hint: 'Join the parts into one WIM on the server (imagepe export FIRST.swm all WHOLE.wim, --pipable to stream it), or deploy the .swm parts from an SMB/NFS share.',
  });
}

/** Refuses, before any write, a layout with a partition too small for what the reference had on the filesystems that land on it. */
function assertRoomForData(ctx: DeployContext, where: string): void {
  const layout = need(ctx.layout, 'the layout');
  const problems = capacityProblems(layout, partitionNeeds(layout.layout, ctx.recordedVolumes, ctx.recordedMounts, { rebuild: ctx.plan.bootloader.initramfs === 'rebuild' }));
  if (problems.length > 0) throw new partition.LayoutError(problems, `${where} on ${ctx.diskShown} (${formatBytes(layout.disk.sizeBytes)})`);
}

/**
 * The layout imagepe's capture mode recorded in the image, checked against the plan as the schema
 * checks an explicit one; without apply entries, the image goes to the partition it came from.
 */
function layoutFromImage(plan: DeployPlan, recorded: RecordedImage | undefined, where: string): { plan: DeployPlan; layout: partition.Layout } {
  if (recorded === undefined) {
    throw new ImagepeError('NOT_FOUND', `${where} records no disk layout (${LAYOUT_PROPERTY}): it was captured without imagepe capture mode; give target.layout`, {
      hint: 'Write the layout into the plan (target.layout), or capture the reference with imagepe.mode=capture, which records it.',
    });
  }
  const apply = plan.apply.length > 0 ? plan.apply : [{ partition: recorded.imagePartition, mode: 'auto' as const }];
  const problems = layoutProblems(recorded.layout, { ...plan, apply }, `the layout recorded in ${where}`);
  if (problems.length > 0) throw new PlanError(problems.map((p) => `${formatPath(p.path)}: ${p.message}`), `the plan with the layout of ${where}`);
  return { plan: { ...plan, apply, target: { ...plan.target, layout: recorded.layout } }, layout: recorded.layout };
}

/** The image applied to the partition mounted at /: the one whose /etc/fstab describes the system. */
function rootImageIndex(plan: DeployPlan, layout: partition.Layout): number | string | undefined {
  const root = partition.layoutVolumes(layout).find((p) => p.mount === '/');
  const entry = plan.apply.find((a) => a.partition === root?.name);
  return entry ? (entry.index ?? plan.source.index) : undefined;
}
