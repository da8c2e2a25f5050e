import { open, mkdir, rename, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { mkdtemp } from 'node:fs/promises';
import {
  ImagepeError,
  ensureFreeSpace,
  isEmptyDirectory,
  mountAt,
  mountsOf,
  pathKind,
  removeQuietly,
  run,
  temporarySibling,
  type EventSink,
} from '../core/index.js';
import { parseDirDetailed, parseDirPlain, type WimDirEntry } from './dir.js';
import { parseWimInfo, selectImage, type Compression, type WimImage, type WimInfo } from './info.js';
import { mountExclusions, otherFilesystems } from './other-filesystems.js';
import { imageProperties, type ImageProperties } from './properties.js';
import { measureTree } from './source-size.js';
import { refArgs, splitParts, splitWimUnsupported } from './split-parts.js';
import { wimlib } from './wimlib.js';

export type ImageSelector = number | string;

export interface JobOptions {
  events?: EventSink;
  signal?: AbortSignal;
  /** Total time limit for the wimlib call, in ms (default 24 h; hangs are caught by idleTimeoutMs). */
  timeoutMs?: number;
  /** Stop wimlib when it reports nothing for this long (default 10 min). */
  idleTimeoutMs?: number;
}

export interface CaptureOptions extends JobOptions {
  name?: string;
  description?: string;
  /** Default lzx, as ImageX and wimlib-imagex. */
  compression?: Compression;
  /** Solid compression (one compressed stream for all files): smaller, slower to apply one file from. */
  solid?: boolean;
  /** Write an integrity table so apply and verify can detect damage (ImageX /check). */
  check?: boolean;
  /** Paths or patterns to leave out, in wimlib's capture-config syntax, like ImageX's wimscript.ini. */
  exclude?: readonly string[];
  /** An existing capture configuration file (wimscript.ini format); merged after `exclude`. */
  configFile?: string;
  /** Keep owners, modes, special files and xattrs of a Linux source (default true for directories). */
  unixData?: boolean;
  /** Mark the new image bootable (WIMBoot/WinPE boot index). */
  bootable?: boolean;
  /** The image's FLAGS property (Windows edition id). */
  flags?: string;
  /**
   * Properties stored in the image's XML (wimlib's --image-property): "IMAGEPE/LAYOUT" becomes
   * <IMAGEPE><LAYOUT>value</LAYOUT></IMAGEPE>. They travel with the image through export and copy.
   */
  properties?: Record<string, string>;
  /**
   * Skip the free-space check. It estimates the output from the source's allocated blocks (half
   * of them when compressed; a sparse file's holes compress away), or from the files' full
   * lengths with compression none, which stores holes as zeros.
   */
  skipSpaceCheck?: boolean;
  /**
   * Directory sources: also capture the filesystems mounted below the source (a tmpfs, a bind
   * mount, another disk). By default the capture stays on the source's own filesystem: each
   * mount point below it is kept as an empty directory and listed in CaptureResult.skippedMounts.
   */
  crossFilesystems?: boolean;
  /**
   * Capture only: write wimlib's pipable format, which applyStream reads once from start to end
   * (an HTTP download applied as it arrives). Microsoft's tools cannot read it; not with solid.
   */
  pipable?: boolean;
}

export interface CaptureResult {
  wimPath: string;
  image: WimImage;
  durationMs: number;
  /** Mount points below the source whose filesystems were left out (kept as empty directories), as paths in the image ("/mnt/data"); [] when none or crossFilesystems. */
  skippedMounts: string[];
}

/**
 * The image property a directory capture records: the bytes the source's files took on disk
 * (allocated blocks, hard links once), so an apply can estimate its space the same way instead
 * of from the files' lengths, which count a sparse file's holes in full.
 */
export const ALLOCATED_BYTES_PROPERTY = 'IMAGEPE/ALLOCATEDBYTES';

/** Where a capture or apply reads or writes: a directory tree, or an NTFS volume (block device or image file). */
export type VolumeKind = 'directory' | 'ntfs-volume';

/**
 * The WIM's header and images as `wimlib-imagex info` prints them (a split WIM's first part
 * describes the whole; partNumber/totalParts say it is split). `check` also verifies the
 * integrity table. Throws NOT_FOUND, WIM_CORRUPT.
 */
export async function info(wimPath: string, options: { check?: boolean; signal?: AbortSignal } = {}): Promise<WimInfo> {
  await assertWimFile(wimPath);
  const args = ['info', wimPath];
  if (options.check) args.push('--check');
  const r = await wimlib(args, { operation: 'info', what: `reading ${wimPath}`, signal: options.signal, timeoutMs: options.check ? undefined : 120_000 });
  return parseWimInfo(r.stdout);
}

/**
 * Creates a new WIM from a directory or an NTFS volume. The file appears under its name only
 * once complete. A directory capture stays on the source's filesystem unless crossFilesystems
 * (see CaptureOptions). Throws REFUSED (the WIM exists), NOT_FOUND, NO_SPACE, INVALID_INPUT,
 * UNSUPPORTED (a mount point wimlib cannot name), and wimlib's failures.
 */
export async function capture(source: string, wimPath: string, options: CaptureOptions = {}): Promise<CaptureResult> {
  const started = Date.now();
  if ((await pathKind(wimPath)) !== 'missing') {
    throw new ImagepeError('REFUSED', `${wimPath} already exists`, { hint: 'Use append to add an image to an existing WIM, or choose a new file name.' });
  }
  if (options.pipable && options.solid) throw pipableSolid();
  const kind = await sourceKind(source);
  const skippedMounts = await mountsToSkip(source, kind, options);
  await mkdir(dirname(resolve(wimPath)), { recursive: true });
  const allocated = await checkCaptureSpace(source, kind, wimPath, options.compression ?? 'lzx', skippedMounts, options);
  const temp = temporarySibling(resolve(wimPath));
  try {
    await addImage('capture', source, kind, temp, options, skippedMounts, allocated);
    await rename(temp, wimPath);
  } finally {
    await removeQuietly(temp);
  }
  const result = await info(wimPath);
  return { wimPath, image: result.images[result.images.length - 1]!, durationMs: Date.now() - started, skippedMounts };
}

/**
 * Adds an image to an existing WIM. wimlib appends in place safely: new data goes after the
 * old, and the header that points at it is written last, so an interrupted append leaves the
 * WIM as it was. A pipable WIM cannot be appended to in place: wimlib writes the whole WIM anew
 * beside it (still pipable) and renames it over the old one, which needs room for both.
 */
export async function append(source: string, wimPath: string, options: CaptureOptions = {}): Promise<CaptureResult> {
  const started = Date.now();
  const before = await info(wimPath);
  if (before.totalParts > 1) throw splitWimUnsupported(wimPath, 'appended to');
  if (options.name && before.images.some((i) => i.name === options.name)) {
    throw new ImagepeError('REFUSED', `${wimPath} already holds an image named "${options.name}"`, { hint: 'Image names in a WIM are unique: choose another --name.' });
  }
  if (options.compression && options.compression !== before.compression) {
    throw new ImagepeError('INVALID_INPUT', `${wimPath} is compressed with ${before.compression}; an appended image uses the WIM's compression, not ${options.compression}`, {
      hint: 'Leave out --compress, or export the images to a new WIM with the compression you want.',
    });
  }
  if (options.pipable) {
    throw new ImagepeError('INVALID_INPUT', 'append keeps the format of the WIM it adds to; pipable is for capture and export', {
      hint: `Make a pipable copy with: imagepe export ${wimPath} all NEW.wim --pipable`,
    });
  }
  if (before.pipable && options.solid) throw pipableSolid();
  const kind = await sourceKind(source);
  const skippedMounts = await mountsToSkip(source, kind, options);
  const allocated = await checkCaptureSpace(source, kind, wimPath, before.compression, skippedMounts, options, before.pipable ? before.sizeBytes : 0);
  await addImage('append', source, kind, wimPath, { ...options, compression: undefined, check: options.check ?? before.hasIntegrityTable }, skippedMounts, allocated);
  const after = await info(wimPath);
  return { wimPath, image: after.images[after.images.length - 1]!, durationMs: Date.now() - started, skippedMounts };
}

/** The mount points below a directory source that the capture leaves out (none with crossFilesystems). */
async function mountsToSkip(source: string, kind: VolumeKind, options: CaptureOptions): Promise<string[]> {
  if (kind !== 'directory' || options.crossFilesystems) return [];
  const found = await otherFilesystems(source);
  mountExclusions(found);
  return found;
}

async function addImage(verb: 'capture' | 'append', source: string, kind: VolumeKind, wimPath: string, options: CaptureOptions, skippedMounts: readonly string[], allocatedBytes: number | undefined): Promise<void> {
  const args = [verb, source, wimPath];
  if (options.name !== undefined) args.push(options.name);
  if (options.description !== undefined) {
    if (options.name === undefined) args.push(basename(resolve(source)));
    args.push(options.description);
  }
  if (verb === 'capture') args.push(`--compress=${(options.compression ?? 'lzx').toUpperCase()}`);
  if (options.solid) args.push('--solid');
  if (options.pipable) args.push('--pipable');
  if (options.check) args.push('--check');
  if (options.bootable) args.push('--boot');
  if (options.flags) args.push(`--flags=${options.flags}`);
  for (const [name, value] of Object.entries(options.properties ?? {})) args.push('--image-property', `${checkPropertyName(name)}=${value}`);
  if (allocatedBytes !== undefined && options.properties?.[ALLOCATED_BYTES_PROPERTY] === undefined) args.push('--image-property', `${ALLOCATED_BYTES_PROPERTY}=${allocatedBytes}`);
  if (kind === 'directory' && options.unixData !== false) args.push('--unix-data');
  let configDir: string | undefined;
  try {
    const exclude = [...(options.exclude ?? []), ...mountExclusions(skippedMounts)];
    if (exclude.length > 0 || options.configFile) {
      configDir = await mkdtemp(join(tmpdir(), 'imagepe-config-'));
      const config = join(configDir, 'wimscript.ini');
      await writeFile(config, await captureConfig(exclude, options.configFile), 'utf8');
      args.push(`--config=${config}`);
    }
    await wimlib(args, { operation: verb, what: `capturing ${source} into ${wimPath}`, ...jobCall(options) });
  } finally {
    if (configDir) await rm(configDir, { recursive: true, force: true });
  }
}

function pipableSolid(): ImagepeError {
  return new ImagepeError('INVALID_INPUT', 'a pipable WIM cannot use solid compression (wimlib stores each file on its own so it can be read in one pass)', {
    hint: 'Leave out --solid, or --pipable.',
  });
}

// Each component becomes an XML element name; wimlib would reject anything else with a terser message.
const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*(\/[A-Za-z_][A-Za-z0-9_.-]*)*$/;

function checkPropertyName(name: string): string {
  if (!PROPERTY_NAME.test(name)) {
    throw new ImagepeError('INVALID_INPUT', `"${name}" cannot be an image property name`, { hint: 'Use XML element names separated by "/", such as IMAGEPE/LAYOUT.' });
  }
  return name;
}

/** wimlib reads ImageX's wimscript.ini format; the [ExclusionList] from `exclude` goes first. */
export async function captureConfig(exclude: readonly string[], configFile: string | undefined): Promise<string> {
  const parts: string[] = [];
  if (exclude.length > 0) parts.push('[ExclusionList]', ...exclude.map((p) => (p.startsWith('/') || p.includes('*') ? p : `/${p}`)), '');
  if (configFile) {
    const { readFile } = await import('node:fs/promises');
    parts.push(await readFile(configFile, 'utf8'));
  }
  return parts.join('\n');
}

export interface ApplyOptions extends JobOptions {
  /** Apply into a directory that already holds files (they may be overwritten). */
  allowNonEmpty?: boolean;
  /** Restore owners, modes, special files and xattrs stored from a Linux source (default true for directories). */
  unixData?: boolean;
  /** Check the WIM's integrity table before extracting, when it has one. */
  check?: boolean;
  skipSpaceCheck?: boolean;
}

export interface ApplyResult {
  image: WimImage;
  target: string;
  targetKind: VolumeKind;
  durationMs: number;
}

/**
 * Extracts one image to a directory, or to an unmounted NTFS volume (block device or image
 * file) in wimlib's NTFS mode, which restores security descriptors, streams and short names.
 */
export async function apply(wimPath: string, image: ImageSelector, target: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  const started = Date.now();
  const wim = await info(wimPath);
  const parts = await splitParts(wimPath);
  const chosen = selectImage(wim, image);
  const needed = options.skipSpaceCheck ? undefined : applyNeededBytes(chosen, await imageProperties(wimPath, chosen.index, options));
  const checked = await checkApplyTarget(target, chosen, wimPath, options, needed);
  const args = ['apply', wimPath, String(chosen.index), target, ...applyFlags(checked, options), ...refArgs(parts)];
  if (options.check) args.push('--check');
  await applyInto(checked, options, () => wimlib(args, { operation: 'apply', what: `applying image ${chosen.index} of ${wimPath} to ${target}`, ...jobCall(options) }));
  return { image: chosen, target, targetKind: checked.kind, durationMs: Date.now() - started };
}

/** An apply target that passed checkApplyTarget. */
export interface ApplyTarget {
  path: string;
  kind: VolumeKind;
  /** A directory that held nothing before, so a failed apply may empty it again. */
  startedEmpty: boolean;
}

/**
 * The bytes an image takes once applied to a directory: what its capture recorded as allocated
 * on disk (ALLOCATED_BYTES_PROPERTY in `properties`, the image's XML properties), else its
 * files' lengths less hard links, which counts a sparse file's holes in full. Pure.
 */
export function applyNeededBytes(image: WimImage, properties: ImageProperties | undefined): number {
  const recorded = Number(properties?.[ALLOCATED_BYTES_PROPERTY]);
  return Number.isSafeInteger(recorded) && recorded >= 0 ? recorded : image.totalBytes - image.hardLinkBytes;
}

/**
 * The checks every apply makes before wimlib writes anything: a directory target is created,
 * must be empty unless allowNonEmpty, and must have room for `neededBytes` (default: the image's
 * bytes less hard links; see applyNeededBytes; `from` names the WIM in that error); an NTFS
 * volume must be unmounted and, unless allowNonEmpty, empty.
 * Throws TARGET_NOT_EMPTY, NO_SPACE, DISK_IN_USE or INVALID_INPUT.
 */
export async function checkApplyTarget(target: string, image: WimImage, from: string, options: ApplyOptions, neededBytes?: number): Promise<ApplyTarget> {
  const kind = await targetKind(target);
  if (kind === 'ntfs-volume') {
    await assertUnmounted(target);
    if (!options.allowNonEmpty) await assertNtfsEmpty(target);
    return { path: target, kind, startedEmpty: false };
  }
  await mkdir(target, { recursive: true });
  const startedEmpty = await isEmptyDirectory(target);
  if (!options.allowNonEmpty && !startedEmpty) {
    throw new ImagepeError('TARGET_NOT_EMPTY', `${target} is not empty`, { hint: 'Apply into an empty directory, or pass --force to write over what is there.' });
  }
  if (!options.skipSpaceCheck) await ensureFreeSpace(target, neededBytes ?? applyNeededBytes(image, undefined), `image ${image.index} of ${from}`);
  return { path: target, kind, startedEmpty };
}

/** wimlib apply options that follow from the target: Linux metadata for a directory unless unixData is false. */
export function applyFlags(target: ApplyTarget, options: ApplyOptions): string[] {
  return target.kind === 'directory' && options.unixData !== false ? ['--unix-data'] : [];
}

/** Runs an apply; when it throws, a directory target that started empty is emptied again (with a warning event) before the error is rethrown. */
export async function applyInto<T>(target: ApplyTarget, options: ApplyOptions, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    // A half-applied tree looks like a deployed one; it was empty before, so make it empty again.
    if (target.startedEmpty) {
      await clearDirectory(target.path);
      options.events?.({ type: 'message', operation: 'apply', level: 'warning', text: `apply failed; the partial copy in ${target.path} was removed` });
    }
    throw e;
  }
}

export async function remove(wimPath: string, image: ImageSelector, options: JobOptions & { check?: boolean; soft?: boolean } = {}): Promise<WimInfo> {
  const wim = await info(wimPath);
  if (wim.totalParts > 1) throw splitWimUnsupported(wimPath, 'changed (delete)');
  const chosen = selectImage(wim, image);
  const args = ['delete', wimPath, String(chosen.index)];
  if (options.check) args.push('--check');
  if (options.soft) args.push('--soft');
  await wimlib(args, { operation: 'delete', what: `deleting image ${chosen.index} from ${wimPath}`, ...jobCall(options) });
  return info(wimPath);
}

export interface ExportOptions extends JobOptions {
  destName?: string;
  destDescription?: string;
  /** Only for a new destination WIM; an existing one keeps its compression. */
  compression?: Compression;
  solid?: boolean;
  check?: boolean;
  bootable?: boolean;
  /** Only for a new destination WIM: write it pipable (see CaptureOptions.pipable), e.g. `all` images of a normal WIM. */
  pipable?: boolean;
}

/** Copies an image (or "all") into another WIM, new or existing; a new destination appears only when complete. */
export async function exportImage(srcWim: string, image: ImageSelector | 'all', destWim: string, options: ExportOptions = {}): Promise<WimInfo> {
  const src = await info(srcWim);
  const parts = await splitParts(srcWim);
  const index = image === 'all' ? 'all' : String(selectImage(src, image).index);
  const destExists = (await pathKind(destWim)) !== 'missing';
  if (destExists && (await info(destWim)).totalParts > 1) throw splitWimUnsupported(destWim, 'exported into');
  const writeTo = destExists ? destWim : temporarySibling(resolve(destWim));
  const args = ['export', srcWim, index, writeTo];
  if (options.destName !== undefined) args.push(options.destName);
  if (options.destDescription !== undefined) args.push(options.destDescription);
  if (options.compression) {
    if (destExists) throw new ImagepeError('INVALID_INPUT', `${destWim} exists; images exported into it take its compression`, { hint: 'Leave out --compress, or export to a new file.' });
    args.push(`--compress=${options.compression.toUpperCase()}`);
  }
  if (options.pipable) {
    if (destExists) throw new ImagepeError('INVALID_INPUT', `${destWim} exists; images exported into it keep its format`, { hint: 'Export to a new file to make a pipable WIM.' });
    if (options.solid) throw pipableSolid();
    args.push('--pipable');
  }
  if (options.solid) args.push('--solid');
  if (options.check) args.push('--check');
  if (options.bootable) args.push('--boot');
  args.push(...refArgs(parts));
  try {
    await wimlib(args, { operation: 'export', what: `exporting image ${index} of ${srcWim} to ${destWim}`, ...jobCall(options) });
    if (!destExists) await rename(writeTo, destWim);
  } finally {
    if (!destExists) await removeQuietly(writeTo);
  }
  return info(destWim);
}

export async function dir(wimPath: string, image: ImageSelector, options: { path?: string; detailed?: boolean; signal?: AbortSignal } = {}): Promise<WimDirEntry[] | string[]> {
  const wim = await info(wimPath);
  const chosen = selectImage(wim, image);
  const args = ['dir', wimPath, String(chosen.index), ...refArgs(await splitParts(wimPath))];
  if (options.path) args.push(`--path=${options.path}`);
  if (options.detailed) args.push('--detailed');
  const r = await wimlib(args, { operation: 'dir', what: `listing image ${chosen.index} of ${wimPath}`, signal: options.signal, timeoutMs: 600_000 });
  return options.detailed ? parseDirDetailed(r.stdout) : parseDirPlain(r.stdout);
}

/**
 * One file of an image, read without extracting the image (`wimlib-imagex extract --to-stdout`),
 * as text; undefined when the image has no such path. Configuration files are what this is for:
 * the deploy reads the image's /etc/fstab before anything is written.
 */
export async function readImageFile(wimPath: string, image: ImageSelector, path: string, options: { signal?: AbortSignal } = {}): Promise<string | undefined> {
  const wim = await info(wimPath, options);
  const chosen = selectImage(wim, image);
  try {
    const r = await wimlib(['extract', wimPath, String(chosen.index), path, '--to-stdout', '--no-acls', ...refArgs(await splitParts(wimPath))], { operation: 'extract', what: `reading ${path} from image ${chosen.index} of ${wimPath}`, signal: options.signal, timeoutMs: 120_000 });
    return r.stdout;
  } catch (e) {
    // wimlib's "the path does not exist in the WIM image".
    if ((e as { exitCode?: number }).exitCode === PATH_NOT_IN_IMAGE || ((e as { cause?: { exitCode?: number } }).cause?.exitCode === PATH_NOT_IN_IMAGE)) return undefined;
    throw e;
  }
}

const PATH_NOT_IN_IMAGE = 49;

export interface MountOptions extends JobOptions {
  unixData?: boolean;
  check?: boolean;
  /** mountrw only: where wimlib keeps changed files until unmount (default: beside the WIM). */
  stagingDir?: string;
}

/** Mounts an image read-only (ImageX /mount) through FUSE. */
export async function mount(wimPath: string, image: ImageSelector, mountDir: string, options: MountOptions = {}): Promise<WimImage> {
  return mountImage('mount', wimPath, image, mountDir, options);
}

/** Mounts an image read-write (ImageX /mountrw); changes are kept only by unmount with commit. */
export async function mountrw(wimPath: string, image: ImageSelector, mountDir: string, options: MountOptions = {}): Promise<WimImage> {
  return mountImage('mountrw', wimPath, image, mountDir, options);
}

async function mountImage(verb: 'mount' | 'mountrw', wimPath: string, image: ImageSelector, mountDir: string, options: MountOptions): Promise<WimImage> {
  const wim = await info(wimPath);
  if (verb === 'mountrw' && wim.totalParts > 1) throw splitWimUnsupported(wimPath, 'mounted read-write');
  const parts = await splitParts(wimPath);
  const chosen = selectImage(wim, image);
  if ((await pathKind(mountDir)) !== 'directory') {
    throw new ImagepeError('NOT_FOUND', `mount point ${mountDir} is not a directory`, { hint: 'Create the directory first.' });
  }
  if (await isWimMount(mountDir)) {
    throw new ImagepeError('REFUSED', `a WIM image is already mounted on ${mountDir}`, { hint: 'Unmount it first: imagepe unmount DIR [--commit].' });
  }
  const args = [verb, wimPath, String(chosen.index), mountDir, ...refArgs(parts)];
  if (options.unixData !== false) args.push('--unix-data');
  if (options.check) args.push('--check');
  if (verb === 'mountrw' && options.stagingDir) args.push(`--staging-dir=${options.stagingDir}`);
  await wimlib(args, { operation: verb, what: `mounting image ${chosen.index} of ${wimPath} on ${mountDir}`, ...jobCall(options) });
  return chosen;
}

export interface UnmountOptions extends JobOptions {
  /** Write the changes of a read-write mount into the WIM (ImageX /commit); without it they are discarded. */
  commit?: boolean;
  check?: boolean;
  /** Rebuild the whole WIM on commit instead of appending, so space of replaced data is reclaimed. */
  rebuild?: boolean;
  /** Commit the changes as a new image instead of replacing the mounted one. */
  newImage?: boolean;
  /** Unmount even if files are still open in the mount. */
  force?: boolean;
}

export async function unmount(mountDir: string, options: UnmountOptions = {}): Promise<void> {
  if (!(await isWimMount(mountDir))) {
    throw new ImagepeError('NOT_MOUNTED', `no WIM image is mounted on ${mountDir}`, { hint: 'Name the directory given to imagepe mount or mountrw; findmnt -t fuse lists FUSE mounts.' });
  }
  const args = ['unmount', mountDir];
  if (options.commit) args.push('--commit');
  if (options.check) args.push('--check');
  if (options.rebuild) args.push('--rebuild');
  if (options.newImage) args.push('--new-image');
  if (options.force) args.push('--force');
  await wimlib(args, { operation: 'unmount', what: `unmounting ${mountDir}`, ...jobCall(options) });
}

async function isWimMount(dir: string): Promise<boolean> {
  const m = await mountAt(dir);
  return m !== undefined && m.fsType === 'fuse.wimfs';
}

export interface SplitOptions extends JobOptions {
  check?: boolean;
}

/**
 * Splits a WIM into SWM parts of at most `partSizeMiB` each (FAT32 sticks take files up to
 * 4 GiB - 1). A part holds whole resources, so one file larger than the part size (compressed)
 * makes a part that large. Parts are written to a scratch directory and moved into place together, so a
 * failed split leaves no partial set behind.
 */
export async function split(wimPath: string, swmPath: string, partSizeMiB: number, options: SplitOptions = {}): Promise<string[]> {
  const wim = await info(wimPath);
  if (wim.totalParts > 1) throw splitWimUnsupported(wimPath, 'split again');
  if (!Number.isInteger(partSizeMiB) || partSizeMiB < 1) throw new ImagepeError('INVALID_INPUT', `part size must be a whole number of MiB, not ${partSizeMiB}`);
  const destDir = dirname(resolve(swmPath));
  await mkdir(destDir, { recursive: true });
  const scratch = await mkdtemp(join(destDir, '.imagepe-split-'));
  try {
    const args = ['split', wimPath, join(scratch, basename(swmPath)), String(partSizeMiB)];
    if (options.check) args.push('--check');
    await wimlib(args, { operation: 'split', what: `splitting ${wimPath}`, ...jobCall(options) }).catch((e: unknown) => {
      // wimlib cannot split solid resources (a --solid capture, export or optimize).
      if (e instanceof ImagepeError && e.code === 'UNSUPPORTED') {
        throw new ImagepeError('UNSUPPORTED', `${wimPath} holds solid resources, which wimlib cannot split`, { cause: e, hint: `Export it without --solid first: imagepe export ${wimPath} all PLAIN.wim, then split PLAIN.wim.` });
      }
      throw e;
    });
    const parts = (await readdir(scratch)).sort(partOrder(basename(swmPath)));
    const finals = parts.map((p) => join(destDir, p));
    for (const f of finals) {
      if ((await pathKind(f)) !== 'missing') throw new ImagepeError('REFUSED', `${f} already exists`, { hint: 'Remove the old parts or choose another name.' });
    }
    for (const p of parts) await rename(join(scratch, p), join(destDir, p));
    return finals;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** foo.swm, foo2.swm, foo3.swm ... foo10.swm in part order. */
function partOrder(first: string): (a: string, b: string) => number {
  const ext = extname(first);
  const stem = first.slice(0, first.length - ext.length);
  const num = (n: string) => (n === first ? 1 : Number(n.slice(stem.length, n.length - ext.length)));
  return (a, b) => num(a) - num(b);
}

export interface OptimizeOptions extends JobOptions {
  check?: boolean;
  recompress?: boolean;
  compression?: Compression;
  solid?: boolean;
}

/** Rebuilds a WIM to drop the space of deleted images and replaced data; wimlib writes a new file and renames it. */
export async function optimize(wimPath: string, options: OptimizeOptions = {}): Promise<{ before: number; after: number }> {
  const wim = await info(wimPath);
  if (wim.totalParts > 1) throw splitWimUnsupported(wimPath, 'optimized');
  const before = wim.sizeBytes;
  await ensureFreeSpace(wimPath, before, `rebuilding ${wimPath}`);
  const args = ['optimize', wimPath];
  if (options.check) args.push('--check');
  if (options.recompress) args.push('--recompress');
  if (options.compression) args.push(`--compress=${options.compression.toUpperCase()}`);
  if (options.solid) args.push('--solid');
  await wimlib(args, { operation: 'optimize', what: `optimizing ${wimPath}`, ...jobCall(options) });
  return { before, after: (await stat(wimPath)).size };
}

/** Reads every resource and metadata of the WIM and checks its hashes (and the integrity table, if any). */
export async function verify(wimPath: string, options: JobOptions = {}): Promise<void> {
  await assertWimFile(wimPath);
  await wimlib(['verify', wimPath, ...refArgs(await splitParts(wimPath))], { operation: 'verify', what: `verifying ${wimPath}`, ...jobCall(options) });
}

async function clearDirectory(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name !== 'lost+found') await rm(join(dir, name), { recursive: true, force: true });
  }
}

function jobCall(options: JobOptions) {
  return { events: options.events, signal: options.signal, timeoutMs: options.timeoutMs, idleTimeoutMs: options.idleTimeoutMs };
}

const WIM_MAGIC = Buffer.from('MSWIM\0\0\0', 'latin1');
const PIPABLE_WIM_MAGIC = Buffer.from('WLPWM\0\0\0', 'latin1');

/** A clear error for a missing file or one that is not a WIM at all, before wimlib's terser one. */
export async function assertWimFile(wimPath: string): Promise<void> {
  const kind = await pathKind(wimPath);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `${wimPath} does not exist`, { hint: 'Check the path of the WIM file.' });
  if (kind !== 'file') throw new ImagepeError('INVALID_INPUT', `${wimPath} is not a file`);
  const fh = await open(wimPath, 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    if (bytesRead < 8 || !(buf.equals(WIM_MAGIC) || buf.equals(PIPABLE_WIM_MAGIC))) {
      throw new ImagepeError('WIM_CORRUPT', `${wimPath} is not a WIM file (its header has no WIM signature)`, {
        hint: 'Check that the path names a .wim, .swm or .esd file and that it was copied completely.',
      });
    }
  } finally {
    await fh.close();
  }
}

async function sourceKind(source: string): Promise<VolumeKind> {
  const kind = await pathKind(source);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `capture source ${source} does not exist`);
  if (kind === 'directory') return 'directory';
  if (kind === 'file' || kind === 'block-device') {
    await assertUnmounted(source);
    return 'ntfs-volume';
  }
  throw new ImagepeError('INVALID_INPUT', `${source} is neither a directory nor an NTFS volume`);
}

async function targetKind(target: string): Promise<VolumeKind> {
  const kind = await pathKind(target);
  if (kind === 'missing' || kind === 'directory') return 'directory';
  if (kind === 'file' || kind === 'block-device') return 'ntfs-volume';
  throw new ImagepeError('INVALID_INPUT', `apply target ${target} is neither a directory nor an NTFS volume`);
}

async function assertUnmounted(volume: string): Promise<void> {
  const mounts = await mountsOf(volume);
  if (mounts.length > 0) {
    throw new ImagepeError('DISK_IN_USE', `${volume} is mounted on ${mounts.map((m) => m.mountPoint).join(', ')}`, {
      hint: 'wimlib reads and writes NTFS volumes directly: unmount the volume first (or capture the mounted directory instead).',
    });
  }
}

/** ntfsls hides NTFS's own metafiles, so a freshly formatted volume lists nothing. */
async function assertNtfsEmpty(volume: string): Promise<void> {
  const r = await run('ntfsls', ['--force', volume], { what: `reading the NTFS volume ${volume}`, hint: 'Is it an NTFS volume? Format it with mkfs.ntfs first.' });
  const entries = r.stdout.split('\n').filter((l) => l.trim() && l.trim() !== 'System Volume Information');
  if (entries.length > 0) {
    throw new ImagepeError('TARGET_NOT_EMPTY', `the NTFS volume ${volume} is not empty (it holds ${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', ...' : ''})`, {
      hint: 'Format it first, or pass --force to apply over what is there.',
    });
  }
}

/**
 * Measures a directory source (mount points in `skip` left out) and, unless skipSpaceCheck,
 * refuses a destination without room; returns the source's allocated bytes for the image's
 * ALLOCATED_BYTES_PROPERTY (undefined for an NTFS volume, which is not measured).
 * `rewriteBytes`: a WIM that wimlib writes anew beside the old one (a pipable WIM's append) needs its size again.
 */
async function checkCaptureSpace(source: string, kind: VolumeKind, wimPath: string, compression: Compression, skip: readonly string[], options: CaptureOptions, rewriteBytes = 0): Promise<number | undefined> {
  if (kind !== 'directory') return undefined;
  const size = await measureTree(source, { skip });
  if (options.skipSpaceCheck) return size.bytes;
  // wimlib reads a sparse file's holes as zeros and stores them: uncompressed, in full (a 4 GiB
  // sparse file makes a 4 GiB WIM); compressed, they shrink to almost nothing, so the blocks in
  // use are what counts. Compression ratios vary too much to predict: the data is the upper
  // bound, and half of it a floor that still catches a destination that is plainly too small.
  const needed = compression === 'none' ? size.apparentBytes : Math.ceil(size.bytes / 2);
  await ensureFreeSpace(wimPath, needed + rewriteBytes + 16 * 1024 * 1024, `capturing ${source}`);
  return size.bytes;
}
