import { ImagepeError, formatBytes } from '../../core/index.js';
import type * as imaging from '../../imaging/index.js';
import type * as raw from '../../imaging/raw/index.js';
import * as partition from '../../partition/index.js';
import type { GrubResult } from '../bootloader/index.js';
import type { DeployEventSink } from '../events/index.js';
import type { DeployPlan, MachineFacts } from '../plan/index.js';
import type { RecordedVolume } from '../capture/index.js';
import type { MappedShare } from '../share/index.js';
import type { MulticastOffer } from './multicast-offer.js';
import { enterChroot, type Chroot } from '../system/chroot.js';
import type { VolumeIdentity } from '../system/references.js';
import { need, type StepIO } from '../steps/index.js';

/** What deploy asks a confirm callback about, once the disk is chosen and read and before anything is written. */
export interface DiskSummary {
  /** The disk as named: a block device or an image file. */
  disk: string;
  device: string;
  sizeBytes: number;
  /** What the disk holds now, in words; empty when blank. */
  holds: string[];
  /** The layout resolved against this disk: what will be written (a WIM deploy). */
  layout?: partition.ResolvedLayout | undefined;
  /** A raw image, written whole instead of a layout: its name, format and size (undefined when the stream does not say). */
  rawImage?: { image: string; format: string; imageBytes: number | undefined } | undefined;
}

export interface DeployOptions {
  /** A block device or disk image file; overrides target.disk of the plan. */
  disk?: string;
  events?: DeployEventSink;
  signal?: AbortSignal;
  /** The user has agreed to overwrite the disk. Without it, confirm is asked; without both, deploy refuses. */
  yes?: boolean;
  confirm?: (summary: DiskSummary) => Promise<boolean>;
  /** Machine facts for hostname tokens (default: read from sysfs). */
  facts?: MachineFacts;
  /** Where the boot medium is mounted, or its device, for media: sources. */
  mediaRoot?: string;
  mediaDevice?: string;
  /** Where an http(s) image is downloaded to (default: the system temp dir). */
  scratchDir?: string;
  /** The device the PE booted from: never deployed to, not even when named. */
  bootMedium?: string;
  /** Sector size to attach a disk image file with (default 512). */
  sectorSize?: number;
  /** The plan's file name, for the log. */
  planFile?: string;
  /**
   * Where the deployed system reports its first boot (the deployment server's /report/<mac>):
   * specialize installs a unit that posts there once the system is up, then removes itself.
   */
  report?: URL;
}

export interface DeployResult {
  disk: string;
  device: string;
  hostname: string | undefined;
  machineId: string | undefined;
  partitions: partition.AppliedPartition[];
  bootloader: GrubResult | undefined;
  /** Where the log was written on the share, if it was. */
  logFile: string | undefined;
  durationMs: number;
}

/**
 * What the deploy's steps know, filled in as they go (mkosi's context over its stages): each
 * field names the step that sets it. Later steps read earlier ones through need(), which fails
 * loudly if the step list was put in the wrong order.
 */
export interface DeployContext {
  /** The answer file; check replaces it when the layout comes from the image. */
  plan: DeployPlan;
  readonly options: DeployOptions;
  /** plan: the host name with its tokens filled in. */
  hostname?: string | undefined;
  /** The disk as the user named it; disk sets it from the rule when none was named. */
  diskShown: string;
  /** disk: the block device written (the loop device of an image file). */
  device?: string;
  disk?: partition.Disk;
  /** disk: what the disk held, in words. */
  holds: string[];
  /** disk (or check, for layout: from-image): the layout resolved against the disk. */
  layout?: partition.ResolvedLayout | undefined;
  /** share */
  share?: MappedShare;
  /** check: the WIM as a local file, and the images the plan's apply entries name. */
  wimPath?: string;
  /**
   * check: a pipable WIM over HTTP that apply streams instead of a local file (wimPath is then
   * unset): its header and XML were read with range requests.
   */
  remote?: imaging.RemoteWim;
  /** check: the multicast session the server runs for the streamed image, which apply joins. */
  multicast?: MulticastOffer;
  images?: imaging.WimImage[];
  /** check: every name the reference's partitions answered to, when the image records them (imagepe capture mode). */
  recordedVolumes: RecordedVolume[];
  /** check: where the reference mounted each recorded partition, by partition name. */
  recordedMounts: Map<string, string>;
  /** partition: the partition nodes; format (or partition, with nothing to format): the read-back result. */
  nodes?: Map<number, string>;
  applied?: partition.AppliedPartition[];
  /** apply: where the target's filesystems are mounted as one tree. */
  targetRoot?: string;
  /** remap, specialize: paths of the image that were renamed or removed on purpose (verify does not miss them). */
  changedPaths: Set<string>;
  /** remap (first to need it): the deployed system with /dev, /proc and /sys, to run its own tools in. */
  chroot?: Chroot;
  /** check (raw image): where the image is, what it is, and the sha256 it must have (the plan's or its .sha256 file's). */
  raw?: { source: raw.RawSource; probe: raw.RawProbe; sha256: string | undefined; sha256From: string | undefined };
  /** write (raw image): what was written and verified. */
  rawWritten?: raw.WriteRawResult;
  /** grow (raw image): the partition grown to the disk's end. */
  grown?: partition.GrowResult;
  /** system (raw image): the partition table written with the image, as the kernel reads it back. */
  rawTable?: partition.SfdiskTable;
  /** specialize */
  machineId?: string | undefined;
  /** bootloader */
  grub?: GrubResult | undefined;
}

/** Resolves a layout against the context's disk, with the plan's wipe and firmware; messages name the disk as the user did. */
export function resolveTargetLayout(ctx: DeployContext, layout: partition.Layout): partition.ResolvedLayout {
  const { plan } = ctx;
  const disk = need(ctx.disk, 'the disk');
  const device = need(ctx.device, 'the disk device');
  try {
    return partition.resolveLayout({ ...layout, wipe: plan.target.wipe || layout.wipe, ...(plan.bootloader.type === 'grub' ? { firmware: plan.bootloader.firmware } : {}) }, disk);
  } catch (e) {
    // The resolver names the device it was given; for an image file that is a loop device the user never named.
    if (e instanceof partition.LayoutError && device !== ctx.diskShown) throw new partition.LayoutError(e.problems, `the layout on ${ctx.diskShown} (${device}, ${formatBytes(disk.sizeBytes)}, ${disk.sectorSize}-byte sectors)`);
    throw e;
  }
}

/** Asks the confirm callback unless the user said yes already; refuses without either. */
export async function confirmDisk(ctx: DeployContext, what: partition.ResolvedLayout | { rawImage: NonNullable<DiskSummary['rawImage']> }): Promise<void> {
  const { options } = ctx;
  if (options.yes) return;
  const disk = need(ctx.disk, 'the disk');
  const written = 'rawImage' in what ? { rawImage: what.rawImage } : { layout: what };
  const ok = options.confirm ? await options.confirm({ disk: ctx.diskShown, device: need(ctx.device, 'the disk device'), sizeBytes: disk.sizeBytes, holds: ctx.holds, ...written }) : false;
  if (!ok) throw new ImagepeError('REFUSED', `not deploying to ${ctx.diskShown} without confirmation`, { hint: 'Pass --yes to deploy without asking.' });
}

/** The applied partition the layout calls `name`. */
export function partitionNamed(ctx: DeployContext, name: string): partition.AppliedPartition {
  const p = need(ctx.applied, 'the partitions').find((a) => a.name === name);
  if (!p) throw new Error(`no partition named ${name} was made`);
  return p;
}

/** One mount of the target's tree: a partition's filesystem, or one of its btrfs subvolumes. */
export interface TreeMount {
  partition: partition.AppliedPartition;
  mount: string;
  /** btrfs: the subvolume mounted there. */
  subvolume?: string | undefined;
}

/** The mount options a tree mount needs: subvol=NAME for a btrfs subvolume, else none. */
export function treeMountOptions(m: TreeMount): string | undefined {
  return m.subvolume ? `subvol=${m.subvolume}` : undefined;
}

/** Linux filesystems (and btrfs subvolumes) of laid-out partitions by mount point, parents first: mounted together to apply into. */
export function treeMountsOf(partitions: readonly partition.AppliedPartition[]): TreeMount[] {
  return partitions
    .filter((p) => isTreeFs(p.fsType))
    .flatMap((p): TreeMount[] =>
      p.subvolumes?.length
        ? p.subvolumes.flatMap((v) => (v.mount?.startsWith('/') ? [{ partition: p, mount: v.mount, subvolume: v.name }] : []))
        : p.mount?.startsWith('/')
          ? [{ partition: p, mount: p.mount }]
          : [],
    )
    .sort((a, b) => depth(a.mount) - depth(b.mount));
}

/** The target's tree mounts (treeMountsOf its partitions). */
export function treeMounts(ctx: DeployContext): TreeMount[] {
  return treeMountsOf(need(ctx.applied, 'the partitions'));
}

/** What is mounted at `mount` in the target's tree (a Linux filesystem or a btrfs subvolume), if anything. */
export function treeMountAt(ctx: DeployContext, mount: string): TreeMount | undefined {
  return treeMounts(ctx).find((m) => m.mount === mount);
}

/** The partition mounted at `mount` holding a Linux filesystem, if any. */
export function treePartitionAt(ctx: DeployContext, mount: string): partition.AppliedPartition | undefined {
  return treeMountAt(ctx, mount)?.partition;
}

/** Where /boot lives: its own filesystem, or the root's; `mount` is where it is mounted in the tree. */
export function bootPartition(ctx: DeployContext): partition.AppliedPartition & { mount: string } {
  const m = treeMountAt(ctx, '/boot') ?? need(treeMountAt(ctx, '/'), 'the root partition');
  return { ...m.partition, mount: m.mount };
}

/** The layout's ESP, when it has one formatted FAT. */
export function espOf(ctx: DeployContext): partition.ResolvedPartition | undefined {
  return need(ctx.layout, 'the layout').partitions.find((p) => p.type === 'esp' && p.format === 'vfat');
}

/** The volumes on the deployed disk with every name they answer to, for mapping and checking references. */
export function deployedVolumes(ctx: DeployContext): VolumeIdentity[] {
  const gpt = ctx.rawTable ? ctx.rawTable.label === 'gpt' : need(ctx.layout, 'the layout').table === 'gpt';
  return need(ctx.applied, 'the partitions').map((p) => ({
    partition: p.name,
    // A logical volume answers to /dev/VG/LV and /dev/mapper/VG-LV, never to a partition's names.
    number: p.volumeGroup ? undefined : p.number,
    fsType: p.fsType,
    uuid: p.uuid,
    label: p.label,
    partuuid: p.partuuid,
    partlabel: gpt && !p.volumeGroup ? p.name : undefined,
    mount: p.mount ?? partition.mountPointsOf(p)[0] ?? (p.fsType === 'swap' ? 'swap' : undefined),
    mounts: partition.mountPointsOf(p),
    lv: p.volumeGroup ? p.name : undefined,
  }));
}

/**
 * The deployed system as a chroot (entered once, by the first step that runs the system's own
 * tools, and released with the run's other resources, before the tree is unmounted).
 */
export async function systemChroot(ctx: DeployContext, io: StepIO): Promise<Chroot> {
  if (ctx.chroot) return ctx.chroot;
  const chroot = await enterChroot(need(ctx.targetRoot, 'the target tree'), { signal: io.signal });
  io.cleanup.add(`leave the chroot ${chroot.root}`, ({ strict, warn }) => chroot.release(strict, warn));
  ctx.chroot = chroot;
  return chroot;
}

function isTreeFs(fsType: string | undefined): boolean {
  return fsType === 'ext4' || fsType === 'xfs' || fsType === 'btrfs';
}

function depth(mount: string): number {
  return mount === '/' ? 0 : mount.split('/').filter(Boolean).length;
}
