import type * as imaging from '../../imaging/index.js';
import type * as partition from '../../partition/index.js';
import type { CaptureEventSink } from '../events/index.js';
import type { CapturePlan } from '../plan/index.js';
import type { MappedShare } from '../share/index.js';
import type { Resource } from '../steps/index.js';
import type { SourceCandidate } from './find-root.js';
import type { RecordedLayout, RecordVolumeGroup } from './record-layout.js';
import type { SystemMount } from './system-tree.js';

export interface CaptureRunOptions {
  /** The reference disk: a block device or a disk image file; overrides source.disk of the plan. */
  disk?: string;
  events?: CaptureEventSink;
  signal?: AbortSignal;
  /** The device the PE booted from: never captured from. */
  bootMedium?: string;
  /** The boot medium's device as the deploy knows it (media: sources); never captured from either. */
  mediaDevice?: string;
  /** The plan's file name, for the log. */
  planFile?: string;
  /** Sector size to attach a disk image file with (default 512). */
  sectorSize?: number;
}

export interface CaptureRunResult {
  /** The WIM file, relative to destination.url. */
  wim: string;
  index: number;
  name: string;
  /** The WIM file's size. */
  sizeBytes: number;
  /** The captured image's own size: the bytes of its files. */
  imageBytes: number;
  durationMs: number;
  /** The reference disk's layout, recorded in the image; undefined for a disk without a partition table. */
  layout: RecordedLayout | undefined;
  logFile: string | undefined;
}

/** What the capture's steps know, filled in as they go; each field names the step that sets it. */
export interface CaptureContext {
  readonly plan: CapturePlan;
  readonly options: CaptureRunOptions;
  /** The reference disk as named; disk sets it when it was picked. */
  diskShown: string;
  /** disk: the block device read (the loop device of an image file), its size, its table (none: a filesystem on the whole disk). */
  device?: string;
  disk?: partition.Disk;
  table?: partition.SfdiskTable | undefined;
  /** source: the partition captured, and the layout recorded for deploys with layout: from-image. */
  source?: SourceCandidate;
  /** source: the system's other filesystems on this disk, mounted into its tree to generalize and capture. */
  systemMounts: SystemMount[];
  recorded?: RecordedLayout | undefined;
  /** source: the LVM volume groups on the disk, activated for the run (their logical volumes keyed from LV_KEY_BASE). */
  volumeGroups: RecordVolumeGroup[];
  /** share: the WIM as a local path; the WIM as it was when it is appended to. */
  share?: MappedShare;
  wimPath?: string;
  before?: imaging.WimInfo | undefined;
  /** capture: a new WIM is written under a temporary name until it is verified. */
  tempWim?: Resource | undefined;
  index?: number;
  /** verify */
  image?: imaging.WimImage;
  sizeBytes?: number;
}
