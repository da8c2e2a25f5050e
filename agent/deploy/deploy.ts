import { lstat, mkdir, mkdtemp, open, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { ImagepeError, formatBytes, pathKind, run, type ImagepeEvent, type RunOptions } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import * as partition from '../../partition/index.js';
import { fatFileExists, installGrub, MTOOLS_ENV, type GrubResult } from '../bootloader/index.js';
import { LAYOUT_PROPERTY, parseRecordedLayout } from '../capture/record-layout.js';
import { expandHostname, formatPath, FROM_IMAGE, layoutProblems, PlanError, readMachineFacts, type DeployPlan, type MachineFacts } from '../plan/index.js';
import { mapShare, type MappedShare } from '../share/index.js';
import { placeUnattend, specializeLinux } from '../specialize/index.js';
import { assertSha256, download, sha256File } from './check.js';
import { makeDeployEvent, type DeployEvent, type DeployEventBody, type DeployEventSink, type DeployStep } from './events.js';
import { attachImageFile, detachLoop } from './loop.js';
import { StepReporter } from './reporter.js';

export { stderrTailOf } from './reporter.js';

export interface DiskSummary {
  /** The disk as named: a block device or an image file. */
  disk: string;
  device: string;
  sizeBytes: number;
  /** What the disk holds now, in words; empty when blank. */
  holds: string[];
  plan: partition.Plan;
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
  /** The device the PE booted from: a disk rule never picks it. */
  bootMedium?: string;
  /** Sector size to attach a disk image file with (default 512). */
  sectorSize?: number;
  /** The plan's file name, for the log. */
  planFile?: string;
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

const MARKER = '/var/lib/imagepe/deployed.json';
const IN_PROGRESS_MARKER = '/var/lib/imagepe/deploying.json';
const FILE_SAMPLE = 400;

/**
 * Deploys a plan: chooses the disk, maps the share, checks the image before the disk is touched,
 * partitions and formats, applies, specializes, installs the bootloader and verifies. Each step
 * is announced; any failure is announced as `failed` with the step and rethrown, and `deployed`
 * comes only when every step passed. The bootloader goes on last, so a disk left half-done
 * by a failure or a power cut has no boot code pointing at a broken system.
 */
export async function deploy(plan: DeployPlan, options: DeployOptions = {}): Promise<DeployResult> {
  const started = Date.now();
  const reporter = new StepReporter<DeployStep, DeployEventBody, DeployEvent>(makeDeployEvent, options.events ?? (() => {}), 'plan');
  const { log, emit, begin, end, skip, warn, progress } = reporter;
  const signal = options.signal;
  const runOpts = (what: string, timeoutMs = 60_000): RunOptions => ({ what, timeoutMs, ...(signal ? { signal } : {}) });

  let share: MappedShare | undefined;
  let loop: string | undefined;
  let downloaded: string | undefined;
  let targetRoot: string | undefined;
  const mounted: string[] = [];
  let hostname: string | undefined;
  let diskShown = options.disk ?? (plan.target.disk && 'path' in plan.target.disk ? plan.target.disk.path : '');

  // Cleanup runs after a cancel too, so it never takes the signal.
  const cleanupOpts = (what: string, timeoutMs = 60_000): RunOptions => ({ what, timeoutMs });
  const releaseTarget = async (strict: boolean) => {
    while (mounted.length > 0) {
      const dir = mounted[mounted.length - 1]!;
      try {
        await run('umount', [dir], cleanupOpts(`unmounting ${dir}`, 300_000));
      } catch (e) {
        if (strict) throw e;
        await run('umount', ['-l', dir], cleanupOpts(`unmounting ${dir}`)).catch(() => undefined);
        warn(`could not unmount ${dir} cleanly`);
      }
      mounted.pop();
    }
    if (targetRoot) {
      // Never rm -r: if an unmount failed, that would delete the deployed system through the mount.
      if (!(await removeEmptyDirs(targetRoot))) warn(`${targetRoot} is not empty and was left in place`);
      targetRoot = undefined;
    }
    if (loop) {
      await detachLoop(loop).catch((e) => {
        if (strict) throw e;
        warn(`could not detach ${loop}; detach it with losetup -d ${loop}`);
      });
      loop = undefined;
    }
  };

  try {
    // plan
    begin('plan', options.planFile);
    if (plan.specialize.hostname) hostname = expandHostname(plan.specialize.hostname, options.facts ?? (await readMachineFacts()));
    const imageCount = Math.max(1, plan.apply.length);
    end('plan', `${imageCount} image${imageCount > 1 ? 's' : ''} from ${plan.source.url}${plan.target.layout === FROM_IMAGE ? ', layout from the image' : ''}${hostname ? `, hostname ${hostname}` : ''}`);

    // disk: chosen and checked, nothing written
    begin('disk');
    const target = await chooseDisk(plan, options);
    diskShown = target.shown;
    let device: string;
    if (target.kind === 'file') {
      loop = await attachImageFile(target.path, { ...(options.sectorSize ? { sectorSize: options.sectorSize } : {}) }, runOpts);
      device = loop;
    } else {
      device = await realpath(target.path);
    }
    const disk = await partition.describeDisk(device, signal ? { signal } : {});
    const planLayout = (l: partition.Layout) => {
      try {
        return partition.plan({ ...l, wipe: plan.target.wipe || l.wipe, ...(plan.bootloader.type === 'grub' ? { firmware: plan.bootloader.firmware } : {}) }, disk);
      } catch (e) {
        // The planner names the device it was given; for an image file that is a loop device the user never named.
        if (e instanceof partition.LayoutError && device !== diskShown) throw new partition.LayoutError(e.problems, `the layout on ${diskShown} (${device}, ${formatBytes(disk.sizeBytes)}, ${disk.sectorSize}-byte sectors)`);
        throw e;
      }
    };
    // A from-image layout is planned at check, once the WIM is read; still before anything is written.
    let partPlan = plan.target.layout === FROM_IMAGE ? undefined : planLayout(plan.target.layout);
    const holds = await whatItHolds(device, runOpts);
    if (holds.length > 0 && !(partPlan?.wipe ?? plan.target.wipe)) {
      throw new ImagepeError('REFUSED', `${diskShown} is not blank: it holds ${holds.join('; ')}`, { hint: 'Set target.wipe: true in the plan to erase it, or choose another disk.' });
    }
    const confirmDisk = async (p: partition.Plan) => {
      if (options.yes) return;
      const ok = options.confirm ? await options.confirm({ disk: diskShown, device, sizeBytes: disk.sizeBytes, holds, plan: p }) : false;
      if (!ok) throw new ImagepeError('REFUSED', `not deploying to ${diskShown} without confirmation`, { hint: 'Pass --yes to deploy without asking.' });
    };
    if (partPlan) await confirmDisk(partPlan);
    end('disk', `${diskShown}${device !== diskShown ? ` (${device})` : ''}, ${partPlan?.table ?? 'layout from the image'}, ${holds.length ? `wiping: ${holds.join('; ')}` : 'blank'}`);

    // share
    begin('share', plan.source.url);
    share = await mapShare(plan.source, {
      writable: plan.logs,
      ...(signal ? { signal } : {}),
      ...(options.mediaRoot ? { mediaRoot: options.mediaRoot } : {}),
      ...(options.mediaDevice ? { mediaDevice: options.mediaDevice } : {}),
    });
    end('share', share.root ?? share.imageUrl?.href);

    // check: the image is what the plan names, before the disk is touched
    begin('check', plan.source.image);
    let wimPath: string;
    let how: string;
    if (share.imageUrl) {
      downloaded = join(options.scratchDir ?? tmpdir(), `imagepe-${process.pid}-${basename(plan.source.image)}`);
      const got = await download(share.imageUrl, downloaded, { onProgress: (p) => progress('check', p), ...(signal ? { signal } : {}) });
      wimPath = downloaded;
      if (plan.source.sha256) assertSha256(got.sha256, plan.source.sha256, share.imageUrl.href);
      how = plan.source.sha256 ? 'sha256 matches' : 'downloaded';
    } else {
      wimPath = share.imagePath!;
      if ((await pathKind(wimPath)) !== 'file') throw new ImagepeError('NOT_FOUND', `the image ${plan.source.image} is not on the share (${plan.source.url})`);
      if (plan.source.sha256) {
        assertSha256(await sha256File(wimPath, { onProgress: (p) => progress('check', p), ...(signal ? { signal } : {}) }), plan.source.sha256, plan.source.image);
        how = 'sha256 matches';
      } else how = '';
    }
    let wim = await imaging.info(wimPath, signal ? { signal } : {});
    if (!plan.source.sha256) {
      if (wim.hasIntegrityTable) {
        wim = await imaging.info(wimPath, { check: true, ...(signal ? { signal } : {}) });
        how = 'integrity table verified';
      } else {
        how = 'not verified: no sha256 in the plan and no integrity table in the WIM';
        warn(`${plan.source.image} was not verified: give source.sha256 in the plan, or capture with an integrity table (--check)`);
      }
    }
    // Messages name the image as the plan does, not by the share's mount point in the PE.
    const shownWim = { ...wim, path: share.imageUrl ? share.imageUrl.href : `${plan.source.url.replace(/\/$/, '')}/${plan.source.image}` };
    if (!partPlan) {
      const resolved = await layoutFromImage(plan, wimPath, imaging.selectImage(shownWim, plan.source.index), signal);
      plan = resolved.plan;
      partPlan = planLayout(resolved.layout);
      await confirmDisk(partPlan);
    }
    const images = plan.apply.map((a) => imaging.selectImage(shownWim, a.index ?? plan.source.index));
    end('check', `${how}; image${images.length > 1 ? 's' : ''} ${images.map((i) => `${i.index} "${i.name}"`).join(', ')}`);

    // partition, then format: partition.apply does both and reports its own steps
    const tableSummary = `${partPlan.table}: ${partPlan.partitions.map((p) => `${p.name} ${formatBytes(p.sizeBytes)}`).join(', ')}`;
    begin('partition', `${partPlan.table}, ${partPlan.partitions.length} partitions`);
    let formatting = false;
    const onPartitionEvent = (e: ImagepeEvent) => {
      if (e.type === 'step' && e.status === 'started' && (e.step === 'wipe' || e.step === 'write-table')) reporter.touched = true;
      if (e.type === 'step' && e.status === 'started' && e.step.startsWith('format ') && !formatting) {
        formatting = true;
        end('partition', tableSummary);
        begin('format');
      }
      if (e.type === 'progress') progress('format', e);
      if (e.type === 'message' && e.level === 'warning') warn(e.text);
    };
    const applied = await partition.apply(partPlan, { events: onPartitionEvent, ...(signal ? { signal } : {}) });
    targetRoot = await mkdtemp(join(tmpdir(), 'imagepe-target-'));
    const treeParts = applied.partitions
      .filter((p) => p.mount?.startsWith('/') && (p.fsType === 'ext4' || p.fsType === 'xfs'))
      .sort((a, b) => depth(a.mount!) - depth(b.mount!));
    // From here until verify replaces it with deployed.json, this file says the disk holds a
    // deploy that has not finished: a rerun names it (and the bootloader is not installed yet,
    // so nothing boots it). It is written on a mount of its own that is then unmounted, which
    // puts it in the filesystem proper rather than only in the journal: the rerun's probe does
    // not replay a journal (that would write), so after a power cut it sees only what was
    // checkpointed.
    const rootTree = treeParts.find((p) => p.mount === '/');
    if (rootTree) {
      await run('mount', ['-t', rootTree.fsType!, rootTree.node, targetRoot], runOpts(`mounting ${rootTree.name} (${rootTree.node})`));
      try {
        await writeJson(join(targetRoot, IN_PROGRESS_MARKER), { source: plan.source.url, image: plan.source.image, startedAt: new Date().toISOString() });
      } finally {
        await run('umount', [targetRoot], runOpts(`unmounting ${rootTree.name}`));
      }
    }
    if (formatting) end('format', applied.partitions.filter((p) => p.fsType).map((p) => `${p.name}: ${p.fsType}`).join(', '));
    else {
      end('partition', tableSummary);
      skip('format', 'no partition has a filesystem');
    }
    const byName = (name: string) => applied.partitions.find((p) => p.name === name)!;

    // apply
    begin('apply');
    for (const p of treeParts) {
      const dir = join(targetRoot, p.mount!);
      await mkdir(dir, { recursive: true });
      await run('mount', ['-t', p.fsType!, p.node, dir], runOpts(`mounting ${p.name} (${p.node}) on ${p.mount}`));
      mounted.push(dir);
    }
    for (const [i, entry] of plan.apply.entries()) {
      const part = byName(entry.partition);
      const image = images[i]!;
      const ntfs = entry.mode === 'ntfs' || (entry.mode === 'auto' && part.fsType === 'ntfs');
      const where = ntfs ? part.node : join(targetRoot, part.mount!);
      emit({ type: 'log', level: 'info', text: `applying image ${image.index} "${image.name}" to ${part.name} (${ntfs ? 'NTFS mode' : 'Linux tree with UNIX metadata'})` });
      await imaging.apply(wimPath, image.index, where, {
        unixData: !ntfs,
        allowNonEmpty: !ntfs,
        events: (e) => {
          if (e.type === 'progress') progress('apply', e);
          else if (e.type === 'message' && e.level === 'warning') warn(e.text);
        },
        ...(signal ? { signal } : {}),
      });
    }
    // An image with files under the ESP's mount point (/boot/efi) gets them onto the ESP itself.
    const esp = partPlan.partitions.find((p) => p.type === 'esp' && p.format === 'vfat');
    if (esp?.mount?.startsWith('/')) await moveTreeToFat(join(targetRoot, esp.mount), byName(esp.name).node, runOpts);
    end('apply', images.map((img, i) => `${img.index} "${img.name}" -> ${plan.apply[i]!.partition}`).join(', '));

    // specialize
    begin('specialize');
    const rootPart = applied.partitions.find((p) => p.mount === '/' && (p.fsType === 'ext4' || p.fsType === 'xfs'));
    const linuxApplied = rootPart !== undefined && plan.apply.some((a) => byName(a.partition).fsType !== 'ntfs');
    let machineId: string | undefined;
    const did: string[] = [];
    if (linuxApplied) {
      const spec = await specializeLinux(join(targetRoot, '/'), {
        ...(hostname ? { hostname } : {}),
        machineId: plan.specialize.machineId,
        removeSshHostKeys: plan.specialize.removeSshHostKeys,
        files: plan.specialize.files,
      });
      machineId = spec.machineId;
      if (hostname) did.push(`hostname ${hostname}`);
      if (machineId) did.push('new machine-id');
      if (spec.removed.some((r) => r.startsWith('/etc/ssh/'))) did.push(`${spec.removed.filter((r) => r.startsWith('/etc/ssh/')).length} SSH host keys removed`);
      if (plan.specialize.files.length) did.push(`${plan.specialize.files.length} files written`);
    }
    if (plan.specialize.unattend) {
      const xml = 'xml' in plan.specialize.unattend ? plan.specialize.unattend.xml : await readFile(await unattendPath(plan.specialize.unattend.file, share), 'utf8');
      const ntfsEntry = plan.apply.find((a) => byName(a.partition).fsType === 'ntfs')!;
      did.push(await placeUnattend(byName(ntfsEntry.partition).node, xml, signal));
    }
    if (did.length) end('specialize', did.join(', '));
    else skip('specialize', 'nothing to specialize');

    // bootloader
    let grub: GrubResult | undefined;
    if (plan.bootloader.type === 'none') skip('bootloader', 'the plan asks for none');
    else {
      begin('bootloader', plan.bootloader.firmware);
      if (!rootPart?.uuid) throw new ImagepeError('INVALID_INPUT', 'GRUB needs an ext4 or xfs root partition (mount: /)');
      const bootPart = applied.partitions.find((p) => p.mount === '/boot' && (p.fsType === 'ext4' || p.fsType === 'xfs')) ?? rootPart;
      grub = await installGrub({
        firmware: plan.bootloader.firmware,
        device,
        ...(esp ? { espNode: byName(esp.name).node } : {}),
        bootMount: join(targetRoot, bootPart.mount!),
        bootPrefix: bootPart === rootPart ? '/boot' : '',
        bootUuid: bootPart.uuid!,
        bootFsType: bootPart.fsType!,
        rootUuid: rootPart.uuid,
        rootPartuuid: rootPart.partuuid,
        rootMount: join(targetRoot, '/'),
        kernelArgs: plan.bootloader.kernelArgs,
        title: hostname ? `imagepe: ${hostname}` : `imagepe: ${images[0]!.name}`,
        ...(signal ? { signal } : {}),
      });
      end('bootloader', [grub.bios ? 'BIOS' : '', grub.efiBinary ? `UEFI ${grub.efiBinary}` : '', `kernel ${grub.kernel}`].filter(Boolean).join(', '));
    }

    // verify: read it all back
    begin('verify');
    const checks: string[] = [];
    const table = (JSON.parse((await run('sfdisk', ['--json', device], runOpts(`reading the partition table of ${device}`))).stdout) as partition.SfdiskJson).partitiontable;
    const filesystems = new Map<number, Record<string, string>>();
    for (const p of applied.partitions) filesystems.set(p.number, await partition.probeFilesystem(p.node, runOpts));
    const diffs = partition.compareWithPlan(partPlan, table, filesystems, new Map(applied.partitions.map((p) => [p.number, p.node]))).differences;
    if (diffs.length) throw new ImagepeError('VERIFY_FAILED', `${diskShown} no longer matches the layout:\n${diffs.map((d) => `  - ${d}`).join('\n')}`);
    checks.push('table');
    for (const [i, entry] of plan.apply.entries()) {
      const part = byName(entry.partition);
      if (part.fsType === 'ntfs') {
        const r = await run('ntfsls', ['--force', part.node], runOpts(`listing ${part.node}`));
        if (!r.stdout.trim()) throw new ImagepeError('VERIFY_FAILED', `${part.name} holds no files after apply`);
        continue;
      }
      const missing = await missingFiles(wimPath, images[i]!.index, join(targetRoot, part.mount!), part.mount!, plan, partPlan, signal);
      if (missing.checked === 0) throw new ImagepeError('VERIFY_FAILED', `image ${images[i]!.index} lists no files to check on ${part.name}`);
      if (missing.paths.length) {
        throw new ImagepeError('VERIFY_FAILED', `${missing.paths.length} of ${missing.checked} sampled files of image ${images[i]!.index} are missing on ${part.name}: ${missing.paths.slice(0, 5).join(', ')}`);
      }
      checks.push(`${missing.checked} files on ${part.name}`);
    }
    if (grub) {
      const bootPart = applied.partitions.find((p) => p.mount === '/boot' && (p.fsType === 'ext4' || p.fsType === 'xfs')) ?? rootPart!;
      const cfg = await readFile(join(targetRoot, bootPart.mount!, grub.grubCfg), 'utf8').catch(() => '');
      if (!cfg.includes(`root=${grub.root} `) || !cfg.includes(`--set=root ${bootPart.uuid}`)) throw new ImagepeError('VERIFY_FAILED', `grub.cfg is missing or does not name root=${grub.root}`);
      if (grub.efiBinary && !(await fatFileExists(byName(esp!.name).node, grub.efiBinary, signal))) throw new ImagepeError('VERIFY_FAILED', `${grub.efiBinary} is not on the ESP`);
      if (grub.bios) {
        const mbr = await readBytes(device, 0, 440);
        if (mbr.every((b) => b === 0)) throw new ImagepeError('VERIFY_FAILED', `the MBR of ${diskShown} holds no boot code`);
        const biosBoot = partPlan.partitions.find((p) => p.type === 'bios-boot');
        if (biosBoot && (await readBytes(device, biosBoot.start * partPlan.sectorSize, 512)).every((b) => b === 0)) {
          throw new ImagepeError('VERIFY_FAILED', 'the bios-boot partition holds no GRUB core image');
        }
      }
      checks.push('bootloader');
    }
    if (linuxApplied) {
      // Written last: a disk with this file went through every step.
      await rm(join(targetRoot, IN_PROGRESS_MARKER), { force: true });
      await writeJson(join(targetRoot, MARKER), { source: plan.source.url, image: plan.source.image, images: images.map((i) => ({ index: i.index, name: i.name })), sha256: plan.source.sha256 ?? null, hostname: hostname ?? null, machineId: machineId ?? null, deployedAt: new Date().toISOString() });
      checks.push(MARKER);
    }
    await releaseTarget(true);
    end('verify', checks.join(', '));

    const result: DeployResult = { disk: diskShown, device, hostname, machineId, partitions: applied.partitions, bootloader: grub, logFile: undefined, durationMs: Date.now() - started };
    emit({
      type: 'deployed',
      disk: diskShown,
      hostname: hostname ?? null,
      machineId: machineId ?? null,
      partitions: applied.partitions.map((p) => ({ number: p.number, name: p.name, fsType: p.fsType ?? null, uuid: p.uuid ?? null, mount: p.mount ?? null })),
      durationMs: result.durationMs,
      after: plan.after,
    });
    result.logFile = await writeLog();
    return result;
  } catch (e) {
    reporter.fail(e);
    await releaseTarget(false);
    await writeLog();
    throw e;
  } finally {
    await releaseTarget(false);
    if (downloaded) await rm(downloaded, { force: true }).catch(() => undefined);
    if (share) await share.release().catch(() => warn(`could not release the share ${plan.source.url}`));
  }

  async function writeLog(): Promise<string | undefined> {
    if (!plan.logs || !share?.root || share.location.kind === 'media' || share.location.kind === 'http') return undefined;
    try {
      return await log.writeTo(share.root, hostname ?? basename(diskShown || 'deploy'));
    } catch (e) {
      // A read-only share is normal; the events went to the console anyway.
      warn(`the log could not be written to ${plan.source.url}/logs: ${(e as Error).message}`);
      return undefined;
    }
  }
}

/**
 * The layout imagepe's capture mode recorded in the image, checked against the plan as the schema
 * checks an explicit one; without apply entries, the image goes to the partition it came from.
 */
async function layoutFromImage(plan: DeployPlan, wimPath: string, image: imaging.WimImage, signal: AbortSignal | undefined): Promise<{ plan: DeployPlan; layout: partition.Layout }> {
  const where = `image ${image.index} "${image.name}" of ${plan.source.image}`;
  const text = await imaging.imageProperty(wimPath, image.index, LAYOUT_PROPERTY, signal ? { signal } : {});
  if (text === undefined) {
    throw new ImagepeError('NOT_FOUND', `${where} records no disk layout (${LAYOUT_PROPERTY}): it was captured without imagepe capture mode; give target.layout`, {
      hint: 'Write the layout into the plan (target.layout), or capture the reference with imagepe.mode=capture, which records it.',
    });
  }
  const recorded = parseRecordedLayout(text, where);
  const apply = plan.apply.length > 0 ? plan.apply : [{ partition: recorded.imagePartition, mode: 'auto' as const }];
  const problems = layoutProblems(recorded.layout, { ...plan, apply }, `the layout recorded in ${where}`);
  if (problems.length > 0) throw new PlanError(problems.map((p) => `${formatPath(p.path)}: ${p.message}`), `the plan with the layout of ${where}`);
  return { plan: { ...plan, apply, target: { ...plan.target, layout: recorded.layout } }, layout: recorded.layout };
}

async function chooseDisk(plan: DeployPlan, options: DeployOptions): Promise<{ path: string; shown: string; kind: 'file' | 'block-device' }> {
  let path = options.disk;
  if (!path) {
    const t = plan.target.disk;
    if (!t) throw new ImagepeError('INVALID_INPUT', 'the plan names no disk', { hint: 'Give target.disk in the plan, or pass --disk.' });
    if ('path' in t) path = t.path;
    else {
      const chosen = partition.selectDisk(t, await partition.listDisks(options.signal), options.bootMedium ? { bootDisk: options.bootMedium } : {});
      path = chosen.path;
    }
  }
  const kind = await pathKind(path);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `disk ${path} does not exist`, { hint: 'Create an image file with truncate -s 2G FILE, or name a block device.' });
  if (kind !== 'file' && kind !== 'block-device') throw new ImagepeError('INVALID_INPUT', `${path} is neither a block device nor a disk image file`);
  // A rule never picks the boot medium (selectDisk); a disk named by path must not be it either.
  if (options.bootMedium && (await realpath(path)) === (await realpath(options.bootMedium).catch(() => options.bootMedium))) {
    throw new ImagepeError('REFUSED', `${path} is the boot medium (${options.bootMedium}): it holds the environment this deploy runs from`, { hint: 'Name another disk; imagepe never deploys over the medium it booted from.' });
  }
  return { path, shown: path, kind };
}

/** What a disk holds, in words, read without writing: signatures on the disk and its partitions. */
async function whatItHolds(device: string, runOpts: (what: string) => RunOptions): Promise<string[]> {
  await run('partx', ['--update', device], { ...runOpts(`reading the partitions of ${device}`), okExitCodes: [0, 1] });
  const out: string[] = [];
  const sigs = async (node: string) => {
    const r = await run('wipefs', ['--json', node], runOpts(`reading signatures on ${node}`));
    if (!r.stdout.trim()) return [] as string[];
    return [...new Set(((JSON.parse(r.stdout) as { signatures?: { type?: string }[] }).signatures ?? []).map((s) => s.type ?? '?'))];
  };
  for (const s of await sigs(device)) out.push(s === 'gpt' || s === 'PMBR' ? 'a GPT partition table' : s === 'dos' ? 'an MBR partition table' : `${s} on the whole disk`);
  const name = basename(device);
  for (const e of await readdir(`/sys/block/${name}`).catch(() => [] as string[])) {
    if (!e.startsWith(name) || (await pathKind(`/sys/block/${name}/${e}/partition`)) === 'missing') continue;
    if ((await pathKind(`/dev/${e}`)) !== 'block-device') continue;
    for (const s of await sigs(`/dev/${e}`)) {
      out.push(`${s} on /dev/${e}`);
      if (s === 'ext4' || s === 'xfs') {
        const found = await imagepeMarker(`/dev/${e}`, s, runOpts);
        if (found) out.push(`${found} on /dev/${e}`);
      }
    }
  }
  return [...new Set(out)];
}

/**
 * What imagepe left on a Linux filesystem: an unfinished deploy (power cut, share gone) or a
 * finished one. The filesystem is mounted read-only without journal replay, so nothing is written.
 */
async function imagepeMarker(node: string, fsType: 'ext4' | 'xfs', runOpts: (what: string) => RunOptions): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-probe-'));
  try {
    await run('mount', ['-t', fsType, '-o', fsType === 'ext4' ? 'ro,noload' : 'ro,norecovery', node, dir], runOpts(`looking into ${node}`));
  } catch {
    await rmdir(dir).catch(() => undefined);
    return undefined;
  }
  try {
    type Marker = { image?: string; startedAt?: string; deployedAt?: string };
    // A marker that exists but does not parse (cut off mid-write) still counts.
    const read = async (marker: string): Promise<Marker | null> => {
      const text = await readFile(join(dir, marker), 'utf8').catch(() => undefined);
      if (text === undefined) return null;
      try {
        return JSON.parse(text) as Marker;
      } catch {
        return {};
      }
    };
    const unfinished = await read(IN_PROGRESS_MARKER);
    if (unfinished) return `an unfinished imagepe deploy of ${unfinished.image ?? 'an image'}${unfinished.startedAt ? ` started ${unfinished.startedAt}` : ''}`;
    const done = await read(MARKER);
    if (done) return `a system imagepe deployed from ${done.image ?? 'an image'}${done.deployedAt ? ` at ${done.deployedAt}` : ''}`;
    return undefined;
  } finally {
    await run('umount', [dir], runOpts(`unmounting ${dir}`)).catch(() => run('umount', ['-l', dir], runOpts(`unmounting ${dir}`)).catch(() => undefined));
    await rmdir(dir).catch(() => undefined);
  }
}


/**
 * Samples the image's listing and checks each path exists in the deployed tree. Paths that
 * specialize removes on purpose, and those under other partitions' mount points (the ESP is
 * written with mtools, not mounted) are left out.
 */
async function missingFiles(wimPath: string, index: number, dir: string, mount: string, plan: DeployPlan, partPlan: partition.Plan, signal: AbortSignal | undefined): Promise<{ checked: number; paths: string[] }> {
  const listing = (await imaging.dir(wimPath, index, signal ? { signal } : {})) as string[];
  const otherMounts = partPlan.partitions.map((p) => p.mount).filter((m): m is string => !!m && m.startsWith('/') && m !== mount && (mount === '/' || m.startsWith(`${mount}/`)));
  const skipped = (p: string) =>
    otherMounts.some((m) => p.startsWith(`${posix.join(mount, m.slice(mount.length))}/`) || p === m) ||
    (plan.specialize.removeSshHostKeys && /^\/etc\/ssh\/ssh_host_/.test(p)) ||
    p === '/var/lib/dbus/machine-id' ||
    // The bootloader step installs GRUB afresh; grub-install replaces what an image captured
    // from a deployed system carries there (its locale files, say).
    (plan.bootloader.type === 'grub' && p.startsWith('/boot/grub/')) ||
    p === '/';
  const candidates = listing.filter((p) => !skipped(mount === '/' ? p : posix.join(mount, p)));
  const step = Math.max(1, Math.ceil(candidates.length / FILE_SAMPLE));
  const sample = candidates.filter((_, i) => i % step === 0);
  const paths: string[] = [];
  for (const p of sample) {
    if (!(await lstat(join(dir, p)).then(() => true, () => false))) paths.push(p);
  }
  return { checked: sample.length, paths };
}

async function moveTreeToFat(dir: string, node: string, runOpts: (what: string) => RunOptions): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) {
    await run('mcopy', ['-s', '-o', '-i', node, join(dir, e), '::/'], { ...runOpts(`copying ${e} to the ESP`), env: MTOOLS_ENV });
    await rm(join(dir, e), { recursive: true, force: true });
  }
}

async function unattendPath(file: string, share: MappedShare | undefined): Promise<string> {
  // A relative answer file lives on the share, next to the image.
  if (file.startsWith('/') || !share?.root) return file;
  return join(share.root, file);
}

async function writeJson(path: string, data: Record<string, unknown>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o644 });
}

async function readBytes(device: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Removes a tree of empty directories (mount points), bottom up; anything with a file in it stays. */
async function removeEmptyDirs(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return true;
  let empty = true;
  for (const e of entries) {
    if (e.isDirectory() && !e.isSymbolicLink()) empty = (await removeEmptyDirs(join(dir, e.name))) && empty;
    else empty = false;
  }
  if (!empty) return false;
  return rmdir(dir).then(
    () => true,
    () => false,
  );
}

function depth(mount: string): number {
  return mount === '/' ? 0 : mount.split('/').filter(Boolean).length;
}
