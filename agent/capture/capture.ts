import { mkdir, mkdtemp, open, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ImagepeError, formatBytes, mountsOf, pathKind, removeQuietly, run, temporarySibling, type ImagepeEvent, type RunOptions } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import * as partition from '../../partition/index.js';
import { waitForPartitions } from '../../partition/apply.js';
import { attachImageFile, detachLoop } from '../deploy/loop.js';
import { StepReporter } from '../deploy/reporter.js';
import { makeCaptureEvent, type CaptureEvent, type CaptureEventBody, type CaptureEventSink, type CaptureStep } from '../deploy/events.js';
import { logName } from '../deploy/log.js';
import type { CapturePlan } from '../plan/index.js';
import { mapShare, type MappedShare } from '../share/index.js';
import { chooseSource, describeCandidate, holdsOperatingSystem, readOnlyProbeOptions, type SourceCandidate } from './find-root.js';
import { LAYOUT_PROPERTY, recordLayout, type RecordedLayout } from './record-layout.js';

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

/**
 * Captures a reference machine's partition into a WIM on a share: chooses the disk and the
 * partition, makes sure the destination can be written, generalizes a Linux root, captures it
 * (a Linux tree with UNIX data, or an NTFS volume) with the disk's layout recorded in the image,
 * and reads the result back. Nothing is written to the reference disk before the share has
 * proved writable; a new WIM appears under its name only after wimlib has verified it.
 */
export async function capture(plan: CapturePlan, options: CaptureRunOptions = {}): Promise<CaptureRunResult> {
  const started = Date.now();
  const reporter = new StepReporter<CaptureStep, CaptureEventBody, CaptureEvent>(makeCaptureEvent, options.events ?? (() => {}), 'plan');
  const { log, emit, begin, end, skip, warn, progress } = reporter;
  const signal = options.signal;
  const runOpts = (what: string, timeoutMs = 60_000): RunOptions => ({ what, timeoutMs, ...(signal ? { signal } : {}) });
  const onImagingEvent = (step: CaptureStep) => (e: ImagepeEvent) => {
    if (e.type === 'message' && e.level === 'warning') warn(e.text);
    else if (e.type === 'progress') progress(step, e);
  };

  const dest = plan.destination;
  let share: MappedShare | undefined;
  let wimPath: string | undefined;
  let tempWim: string | undefined;
  let loop: string | undefined;
  const mounted: string[] = [];
  const scratch: string[] = [];
  let diskShown = options.disk ?? (plan.source.disk && 'path' in plan.source.disk ? plan.source.disk.path : '');

  // Cleanup runs after a cancel too, so it never takes the signal.
  const release = async (strict: boolean) => {
    while (mounted.length > 0) {
      const dir = mounted[mounted.length - 1]!;
      try {
        await run('umount', [dir], { what: `unmounting ${dir}`, timeoutMs: 300_000 });
      } catch (e) {
        if (strict) throw e;
        await run('umount', ['-l', dir], { what: `unmounting ${dir}`, timeoutMs: 60_000 }).catch(() => undefined);
        warn(`could not unmount ${dir} cleanly`);
      }
      mounted.pop();
    }
    // Mount points only, never rm -r: a failed unmount would expose the reference system.
    while (scratch.length > 0) await rmdir(scratch.pop()!).catch(() => undefined);
    if (loop) {
      const ok = await detachLoop(loop).then(
        () => true,
        () => false,
      );
      if (!ok) {
        if (strict) throw new ImagepeError('COMMAND_FAILED', `could not detach ${loop}`, { hint: `Detach it with losetup -d ${loop}.` });
        warn(`could not detach ${loop}; detach it with losetup -d ${loop}`);
      }
      loop = undefined;
    }
  };
  const mountAt = async (node: string, fsType: string, mountOptions: string | undefined, why: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'imagepe-reference-'));
    scratch.push(dir);
    await run('mount', ['-t', fsType, ...(mountOptions ? ['-o', mountOptions] : []), node, dir], runOpts(`mounting ${node} ${why}`));
    mounted.push(dir);
    return dir;
  };
  const unmountLast = async () => {
    const dir = mounted.pop()!;
    await run('umount', [dir], { what: `unmounting ${dir}`, timeoutMs: 300_000 });
    await rmdir(dir).catch(() => undefined);
    scratch.splice(scratch.indexOf(dir), 1);
  };

  try {
    // plan
    begin('plan', options.planFile);
    end('plan', `"${dest.name}" to ${dest.url} ${dest.file}${dest.append ? ' (append)' : ''}${plan.generalize ? '; generalize first' : ''}`);

    // disk: chosen and read, nothing written
    begin('disk');
    const chosen = await chooseReferenceDisk(plan, options);
    diskShown = chosen.path;
    let device: string;
    if (chosen.kind === 'file') {
      // Without generalize nothing may write to the reference, and a read-only loop device makes sure.
      loop = await attachImageFile(chosen.path, { readOnly: !plan.generalize, ...(options.sectorSize ? { sectorSize: options.sectorSize } : {}) }, runOpts);
      device = loop;
    } else {
      device = await realpath(chosen.path);
    }
    const disk = await partition.describeDisk(device, signal ? { signal } : {});
    await run('partx', ['--update', device], { ...runOpts(`reading the partitions of ${device}`), okExitCodes: [0, 1] });
    const table = await readTable(device, runOpts);
    end('disk', `${diskShown}${device !== diskShown ? ` (${device})` : ''}, ${formatBytes(disk.sizeBytes)}, ${table ? `${table.label === 'dos' ? 'MBR' : table.label.toUpperCase()} with ${(table.partitions ?? []).length} partitions` : 'no partition table'}`);

    // source: the partition to capture, found by looking, read-only
    begin('source', typeof plan.source.partition === 'string' ? 'the partition holding an operating system' : 'label' in plan.source.partition ? `label ${plan.source.partition.label}` : `partition ${plan.source.partition.number}`);
    const filesystems = new Map<number, Record<string, string>>();
    const candidates: SourceCandidate[] = [];
    if (table) {
      const numbers = (table.partitions ?? []).map((p) => partitionNumber(p.node));
      const nodes = await waitForPartitions(device, numbers, 15_000, runOpts);
      for (const p of table.partitions ?? []) {
        const number = partitionNumber(p.node);
        const node = nodes.get(number)!;
        const fs = await partition.probeFilesystem(node, runOpts);
        filesystems.set(number, fs);
        candidates.push(candidate(number, node, p.size * (table.sectorsize ?? disk.sectorSize), p.name, fs));
      }
    } else {
      // A filesystem on the whole disk: captured as it is, with no layout to record.
      candidates.push(candidate(1, device, disk.sizeBytes, undefined, await partition.probeFilesystem(device, runOpts)));
    }
    const src = await chooseSource(candidates, plan.source.partition, diskShown, (c) => holdsOperatingSystem(c, runOpts));
    const mounts = await mountsOf(src.node);
    if (mounts.length > 0) {
      throw new ImagepeError('DISK_IN_USE', `${describeCandidate(src)} is mounted on ${mounts.map((m) => m.mountPoint).join(', ')}`, {
        hint: 'Capture a reference that is not running: boot it into the PE (imagepe.mode=capture), or unmount the partition.',
      });
    }
    let recorded: RecordedLayout | undefined;
    if (table) {
      const r = recordLayout({ table, filesystems, imagePartition: src.number });
      recorded = r.recorded;
      for (const n of r.notes) warn(`layout: ${n}`);
      try {
        // The recorded layout must at least fit the disk it was read from.
        partition.plan(partition.parseLayout(recorded.layout, 'the recorded layout'), disk);
      } catch (e) {
        warn(`the recorded layout does not plan on the reference disk itself, so deploys with layout: from-image may fail: ${(e as Error).message}`);
      }
    } else warn(`${diskShown} has no partition table: no layout is recorded, so deploy plans for this image need target.layout`);
    end('source', describeCandidate(src));

    // share: writable, and the file as the plan expects it, before the reference is touched
    begin('share', dest.url);
    share = await mapShare({ url: dest.url, image: dest.file, credentials: dest.credentials }, { writable: true, ...(signal ? { signal } : {}) });
    wimPath = share.imagePath!;
    await assertWritable(dirname(wimPath), `${dest.url}/${dirname(dest.file) === '.' ? '' : dirname(dest.file)}`);
    const exists = (await pathKind(wimPath)) !== 'missing';
    let before: imaging.WimInfo | undefined;
    if (exists) {
      if (!dest.append) {
        throw new ImagepeError('REFUSED', `${dest.file} already exists on ${dest.url}`, { hint: 'Set destination.append: true to add the image to it, or choose another destination.file.' });
      }
      before = await imaging.info(wimPath, signal ? { signal } : {});
      if (before.images.some((i) => i.name === dest.name)) {
        throw new ImagepeError('REFUSED', `${dest.file} already holds an image named "${dest.name}"`, { hint: 'Image names in a WIM are unique: choose another destination.name.' });
      }
    }
    end('share', `${share.display}: ${before ? `appending to ${dest.file} (${before.imageCount} image${before.imageCount === 1 ? '' : 's'}, ${before.compression})` : `new ${dest.file}`}`);

    // generalize: the first write to the reference disk
    const ntfs = src.fsType === 'ntfs';
    if (!plan.generalize) skip('generalize', 'the plan says generalize: false');
    else if (ntfs) skip('generalize', 'NTFS: generalize Windows with sysprep before the capture');
    else {
      begin('generalize', src.node);
      reporter.touched = true;
      const root = await mountAt(src.node, src.fsType!, undefined, 'read-write to generalize it');
      const g = await imaging.generalize(root);
      await unmountLast();
      end('generalize', generalizeSummary(g.items));
    }

    // capture
    begin('capture', `${describeCandidate(src)}${ntfs ? ', NTFS volume' : ', Linux tree with UNIX data'}`);
    // Journals are left alone: the reference has just been unmounted cleanly, or was not to be written at all.
    const source = ntfs ? src.node : await mountAt(src.node, src.fsType!, readOnlyProbeOptions(src.fsType!), 'read-only to capture it');
    const captureOptions: imaging.CaptureOptions = {
      name: dest.name,
      ...(dest.description ? { description: dest.description } : {}),
      check: dest.integrity,
      unixData: !ntfs,
      ...(recorded ? { properties: { [LAYOUT_PROPERTY]: JSON.stringify(recorded) } } : {}),
      events: onImagingEvent('capture'),
      ...(signal ? { signal } : {}),
    };
    let index: number;
    if (!before) {
      // Verified under a temporary name: the final name only ever holds a complete, checked WIM.
      tempWim = temporarySibling(wimPath);
      await imaging.capture(source, tempWim, { ...captureOptions, compression: dest.compression });
      await imaging.verify(tempWim, { events: onImagingEvent('capture'), ...(signal ? { signal } : {}) });
      if ((await pathKind(wimPath)) !== 'missing') throw new ImagepeError('REFUSED', `${dest.file} appeared on ${dest.url} while the capture ran`, { hint: 'Another capture may write the same file; choose another destination.file.' });
      await rename(tempWim, wimPath);
      tempWim = undefined;
      index = 1;
    } else {
      // wimlib appends in place and writes the header last, so a failed append leaves the WIM as it was.
      const r = await imaging.append(source, wimPath, captureOptions);
      index = r.image.index;
      try {
        await imaging.verify(wimPath, { events: onImagingEvent('capture'), ...(signal ? { signal } : {}) });
      } catch (e) {
        await imaging.remove(wimPath, index).catch((removeError: Error) => warn(`image ${index} failed verification and could not be removed again: ${removeError.message}`));
        throw e;
      }
    }
    if (!ntfs) await unmountLast();
    end('capture', `image ${index} "${dest.name}" in ${dest.file}`);

    // verify: what a deploy will read
    begin('verify');
    const info = await imaging.info(wimPath, signal ? { signal } : {});
    const image = info.images.find((i) => i.index === index);
    if (!image || image.name !== dest.name) throw new ImagepeError('VERIFY_FAILED', `${dest.file} has no image ${index} named "${dest.name}" after the capture`);
    if (recorded) {
      const text = await imaging.imageProperty(wimPath, index, LAYOUT_PROPERTY, signal ? { signal } : {});
      if (text !== JSON.stringify(recorded)) throw new ImagepeError('VERIFY_FAILED', `image ${index} of ${dest.file} does not hold the recorded layout (${LAYOUT_PROPERTY})`);
    }
    const sizeBytes = (await stat(wimPath)).size;
    await release(true);
    end('verify', `image ${index} "${image.name}": ${image.fileCount} files, ${formatBytes(image.totalBytes)}${recorded ? `; layout recorded (${recorded.layout.partitions.length} partitions, image from ${recorded.imagePartition})` : ''}`);

    const result: CaptureRunResult = { wim: dest.file, index, name: dest.name, sizeBytes, imageBytes: image.totalBytes, durationMs: Date.now() - started, layout: recorded, logFile: undefined };
    emit({ type: 'captured', wim: dest.file, index, name: dest.name, sizeBytes, durationMs: result.durationMs, after: plan.after });
    result.logFile = await writeLog();
    return result;
  } catch (e) {
    reporter.fail(e);
    await release(false);
    if (tempWim) await removeQuietly(tempWim);
    await writeLog();
    throw e;
  } finally {
    await release(false);
    if (tempWim) await removeQuietly(tempWim);
    if (share) await share.release().catch(() => warn(`could not release the share ${dest.url}`));
  }

  async function writeLog(): Promise<string | undefined> {
    if (!plan.logs || !wimPath) return undefined;
    try {
      return await log.writeTo(dirname(wimPath), `capture-${logName(dest.name)}`);
    } catch (e) {
      warn(`the log could not be written beside ${dest.file}: ${(e as Error).message}`);
      return undefined;
    }
  }
}

function candidate(number: number, node: string, sizeBytes: number, name: string | undefined, fs: Record<string, string>): SourceCandidate {
  const c: SourceCandidate = { number, node, sizeBytes };
  if (name) c.name = name;
  if (fs.TYPE) c.fsType = fs.TYPE;
  if (fs.LABEL) c.label = fs.LABEL;
  return c;
}

/**
 * The reference disk: --disk, the plan's source.disk, or else the only disk that is not the boot
 * medium, removable, or the running system's. The boot medium is refused even when named.
 */
async function chooseReferenceDisk(plan: CapturePlan, options: CaptureRunOptions): Promise<{ path: string; kind: 'file' | 'block-device' }> {
  const refused = new Set<string>();
  for (const d of [options.bootMedium, options.mediaDevice]) if (d) refused.add(await realpath(d).catch(() => d));
  let path = options.disk;
  const rule = plan.source.disk;
  if (!path && rule) {
    if ('path' in rule) path = rule.path;
    else path = partition.selectDisk(rule, await partition.listDisks(options.signal), options.bootMedium ? { bootDisk: options.bootMedium } : {}).path;
  }
  if (!path) {
    const disks = await partition.listDisks(options.signal);
    const fits = disks.filter((d) => d.type === 'disk' && d.sizeBytes > 0 && !/^(zram|ram)\d/.test(d.name) && !refused.has(d.path) && !d.removable && !d.holdsSystem);
    if (fits.length !== 1) {
      const listed = disks.filter((d) => d.type === 'disk').map((d) => `\n  - ${d.path} ${formatBytes(d.sizeBytes)}${refused.has(d.path) ? ' (the boot medium)' : d.removable ? ' (removable)' : d.holdsSystem ? ' (the running system)' : ''}`).join('');
      throw new ImagepeError(fits.length === 0 ? 'NOT_FOUND' : 'INVALID_INPUT', `${fits.length === 0 ? 'no disk' : `${fits.length} disks`} could be the reference disk:${listed || ' no disks found'}`, {
        hint: 'Name the reference disk: source.disk in the plan, or --disk (imagepe.disk= in the PE).',
      });
    }
    path = fits[0]!.path;
  }
  const kind = await pathKind(path);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `disk ${path} does not exist`);
  if (kind !== 'file' && kind !== 'block-device') throw new ImagepeError('INVALID_INPUT', `${path} is neither a block device nor a disk image file`);
  if (kind === 'block-device' && refused.has(await realpath(path))) {
    throw new ImagepeError('REFUSED', `${path} is the boot medium the PE started from; it is never captured from`, { hint: 'Name the reference disk: source.disk in the plan, or --disk.' });
  }
  return { path, kind };
}

/** `sfdisk --json`, or undefined when the disk has no partition table. */
async function readTable(device: string, runOpts: (what: string) => RunOptions): Promise<partition.SfdiskTable | undefined> {
  const r = await run('sfdisk', ['--json', device], { ...runOpts(`reading the partition table of ${device}`), okExitCodes: [0, 1] });
  if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
  return (JSON.parse(r.stdout) as partition.SfdiskJson).partitiontable;
}

/**
 * Proves the destination folder takes files, by making and removing one, so a read-only share
 * or a missing write permission stops the capture before generalize writes to the reference.
 */
async function assertWritable(dir: string, shown: string): Promise<void> {
  const probe = join(dir, `.imagepe-write-test-${process.pid}-${Date.now()}`);
  try {
    // One level at a time: a recursive mkdir reports ENOENT, not EROFS, on a read-only filesystem.
    const missing: string[] = [];
    for (let d = dir; (await pathKind(d)) === 'missing' && d !== dirname(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) await mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const fh = await open(probe, 'wx');
    await fh.write('imagepe\n');
    await fh.close();
    await rm(probe);
  } catch (e) {
    await rm(probe, { force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImagepeError('REFUSED', `the destination ${shown} cannot be written: ${code === 'EROFS' ? 'it is read-only' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message}`, {
      hint: 'Mount or export the share read-write and give the capture account write access; nothing was written to the reference disk.',
    });
  }
}

/** "12 items: machine id, 2 SSH host keys, 3 log files" */
function generalizeSummary(items: readonly imaging.GeneralizeItem[]): string {
  if (items.length === 0) return 'nothing machine-specific found';
  const counts = new Map<string, number>();
  for (const i of items) {
    const what = i.reason.replace(/\s*\(.*\)$/, '');
    counts.set(what, (counts.get(what) ?? 0) + 1);
  }
  return `${items.length} item${items.length === 1 ? '' : 's'}: ${[...counts].map(([what, n]) => (n > 1 ? `${n}x ${what}` : what)).join(', ')}`;
}

function partitionNumber(node: string): number {
  return Number(/(\d+)$/.exec(node)?.[1] ?? NaN);
}

