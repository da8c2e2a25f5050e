import { open, realpath, stat } from 'node:fs/promises';
import { ImagepeError, MiB, ignoreEvents, type EventSink } from '../core/index.js';
import { alignedBuffers } from './aligned.js';
import { DeviceIo } from './device.js';
import { findDataExtents, roundExtents } from './extents.js';
import { disksHolding, expectedSha256, type ExpectedSha256 } from './image.js';
import { planBlocks, type BlockPlan } from './plan.js';
import { burnRefusals, describeTarget, refusalError, type TargetDescription } from './target.js';
import { verifyBlocks } from './verify.js';
import { writeBlocks, type Phase } from './write.js';

export const DEFAULT_BLOCK_SIZE = 4 * MiB;
export const DEFAULT_REWRITE_ATTEMPTS = 3;

export interface PlanBurnOptions {
  /** Bytes per write and read-back: a multiple of 4096 from 64 KiB to 64 MiB (default 4 MiB). */
  blockSize?: number;
  /** Skip the image's holes (default true). false writes every byte (`--no-sparse`). */
  sparse?: boolean;
  /** The sha256 the image must have (64 hex digits); default: IMAGE.sha256 or SHA256SUMS beside it, if there. */
  expectedSha256?: string;
  /** `--force DEVICE`: a non-removable target is allowed when this names the same device (links resolved). */
  force?: string;
  /**
   * Devices burnt as if removable although the kernel says they are not. A test hook, for loop
   * devices (which are never removable); the CLI has no option for it.
   */
  treatAsRemovable?: readonly string[];
  /** Devices never written, not even when named: the medium the PE booted from. */
  bootMedia?: readonly (string | null | undefined)[];
  signal?: AbortSignal;
}

/** The image as planned. */
export interface BurnImage {
  path: string;
  sizeBytes: number;
  /** Whole disks the image file is stored on (refused as targets). */
  disks: string[];
  expectedSha256?: ExpectedSha256;
}

/** Everything decided before the first write; the CLI shows it and asks. */
export interface BurnPlan {
  image: BurnImage;
  target: TargetDescription;
  blockSize: number;
  sparse: boolean;
  blocks: BlockPlan;
  /** Things the burn does differently from what was asked: holes not found, so written. */
  warnings: string[];
  /** The options the refusals were decided with, decided again just before writing. */
  policy: { force?: string; treatAsRemovable: string[]; bootMedia: string[] };
}

const resolved = (p: string) => realpath(p).catch(() => p);

/**
 * Checks a burn of IMAGE (an ISO or a raw disk image file) to DEVICE and plans its writes,
 * touching nothing: the target described (describeTarget), every refusal (burnRefusals: the
 * running system's disk, the boot medium, the disk holding the image, a disk in use, a
 * read-only or non-removable one without `force`, one smaller than the image), the expected
 * sha256 found, the image's data extents found (holes, when `sparse`) and cut into blocks.
 *
 * Throws INVALID_INPUT (the image is not a regular non-empty file, a bad block size or sha256),
 * NOT_FOUND (no image, no device), and the first refusal's code (REFUSED, DISK_IN_USE,
 * NO_SPACE) with every reason in its message.
 */
export async function planBurn(image: string, device: string, options: PlanBurnOptions = {}): Promise<BurnPlan> {
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isSafeInteger(blockSize) || blockSize % 4096 !== 0 || blockSize < 64 * 1024 || blockSize > 64 * MiB) {
    throw new ImagepeError('INVALID_INPUT', `block size ${blockSize} is not a multiple of 4 KiB from 64 KiB to 64 MiB`, { hint: 'Leave --block-size out (4 MiB), or give e.g. 1MiB, 8MiB.' });
  }
  const st = await stat(image).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new ImagepeError('NOT_FOUND', `image ${image} does not exist`, { hint: 'Build the PE first (imagepe build -o out gives out/imagepe.iso), or name the image file.' });
    throw e;
  });
  if (!st.isFile()) throw new ImagepeError('INVALID_INPUT', `image ${image} is not a regular file`, { hint: 'Name an ISO or a raw disk image file.' });
  if (st.size === 0) throw new ImagepeError('INVALID_INPUT', `image ${image} is empty`);

  const policy = {
    ...(options.force ? { force: await resolved(options.force) } : {}),
    treatAsRemovable: await Promise.all((options.treatAsRemovable ?? []).map(resolved)),
    bootMedia: await Promise.all((options.bootMedia ?? []).filter((d): d is string => !!d).map(resolved)),
  };
  const target = await describeTarget(device, options.signal ? { signal: options.signal } : {});
  const img: BurnImage = { path: image, sizeBytes: st.size, disks: await disksHolding(image) };
  const refusals = burnRefusals(target, { imageBytes: st.size, imageDisks: img.disks, ...policy });
  if (refusals.length > 0) throw refusalError(target, refusals);

  const expected = await expectedSha256(image, options.expectedSha256);
  if (expected) img.expectedSha256 = expected;
  const sparse = options.sparse ?? true;
  const warnings: string[] = [];
  let extents = [{ offset: 0, length: st.size }];
  if (sparse) {
    const found = await findDataExtents(image, st.size, options.signal);
    if (found.warning) warnings.push(found.warning);
    extents = roundExtents(found.extents, target.sectorSize, st.size);
  }
  const blocks = planBlocks({ imageSize: st.size, extents, blockSize, sectorSize: target.sectorSize, deviceSize: target.sizeBytes });
  return { image: img, target, blockSize, sparse, blocks, warnings, policy };
}

export interface BurnOptions {
  events?: EventSink;
  signal?: AbortSignal;
  /** How often a block that reads back wrong is rewritten and read again before VERIFY_FAILED (default 3). */
  rewriteAttempts?: number;
}

export interface BurnResult {
  image: string;
  device: string;
  imageBytes: number;
  /** sha256 of the whole image, hex (holes hashed as zeros: what sha256sum IMAGE prints). */
  sha256: string;
  /** The expected sha256 it matched, and where that came from. */
  expectedSha256?: ExpectedSha256;
  /** Bytes written to the device: the image's data (whole sectors), the cleared end and zeroed holes. */
  bytesWritten: number;
  /** Image bytes in holes: read back, not written, unless the device held something else there (zeroedBytes). */
  bytesSkipped: number;
  /** Bytes of holes the device did not already hold as zeros, written as zeros after the read-back found them (part of bytesWritten). */
  zeroedBytes: number;
  /** The device's end zeroed so that no stale partition table (a backup GPT) outlives the burn. */
  clearedEnd?: { offset: number; length: number };
  blockSize: number;
  /** Whether O_DIRECT was used; when not, `directIoNote` says why. */
  directIo: boolean;
  directIoNote?: string;
  /** Seconds from the first write to the end of fdatasync. */
  writeSeconds: number;
  /** Seconds from dropping the cache to the last block compared, rewrites included. */
  verifySeconds: number;
  /** bytesWritten / writeSeconds and bytesWritten / verifySeconds, in MiB/s. */
  writeMiBps: number;
  verifyMiBps: number;
  /** Blocks rewritten because they read back wrong (each attempt counts), and their offsets. */
  rewrites: number;
  rewrittenOffsets: number[];
  warnings: string[];
}

/**
 * Burns a planned image: checks the target once more (the refusals again, and that it is the
 * same device: a stick swapped while the user was being asked is refused), opens it O_DIRECT
 * and O_EXCL, writes the blocks while hashing, syncs, compares the sha256 with the expected
 * one, drops the device's cache and reads every block back (verifyBlocks). Emits `progress`
 * events (operation `burn`, phases `write`, `verify`, `rewrite`; bytes) and `message` warnings.
 *
 * Throws VERIFY_FAILED (the image's sha256 is not the expected one: the stick now holds that
 * image and must not be used; blocks that stay wrong; I/O errors), REFUSED / DISK_IN_USE /
 * NO_SPACE / NOT_FOUND (the target changed, or the kernel refused the open), CANCELLED (the
 * message says what state the stick is in), INVALID_INPUT (the image changed).
 */
export async function burn(plan: BurnPlan, options: BurnOptions = {}): Promise<BurnResult> {
  const events = options.events ?? ignoreEvents;
  const { signal } = options;
  const t = plan.target;
  const now = await describeTarget(t.path, signal ? { signal } : {});
  if (now.device !== t.device || now.sizeBytes !== t.sizeBytes || now.serial !== t.serial || now.model !== t.model) {
    throw new ImagepeError('REFUSED', `${t.path} is no longer the device that was described (${t.device}, ${t.sizeBytes} bytes, then; ${now.device}, ${now.sizeBytes} bytes, now)`, { hint: 'Run imagepe burn again, and check the device it names.' });
  }
  const refusals = burnRefusals(now, { imageBytes: plan.image.sizeBytes, imageDisks: plan.image.disks, ...plan.policy });
  if (refusals.length > 0) throw refusalError(now, refusals);
  if ((await stat(plan.image.path)).size !== plan.image.sizeBytes) throw new ImagepeError('INVALID_INPUT', `${plan.image.path} changed size since it was checked`, { hint: 'Run imagepe burn again.' });
  for (const w of plan.warnings) events({ type: 'message', operation: 'burn', level: 'warning', text: w });

  const image = await open(plan.image.path, 'r');
  let io: DeviceIo | undefined;
  try {
    const started = performance.now();
    io = await DeviceIo.open(now.device);
    if (io.fallbackReason) events({ type: 'message', operation: 'burn', level: 'warning', text: io.fallbackReason });
    const phase: Phase = { image, imagePath: plan.image.path, imageSize: plan.image.sizeBytes, plan: plan.blocks, io, sectorSize: now.sectorSize, buffers: alignedBuffers(3, plan.blockSize), zeros: Buffer.alloc(plan.blockSize), events, signal };
    const written = await writeBlocks(phase);
    const writeSeconds = (performance.now() - started) / 1000;
    const expected = plan.image.expectedSha256;
    if (expected && expected.hex !== written.sha256) {
      throw new ImagepeError('VERIFY_FAILED', `${plan.image.path} has sha256 ${written.sha256}, not ${expected.hex} (from ${expected.source}): it is damaged or not the image meant, and ${t.path} now holds it`, {
        hint: 'Do not use the stick. Download or build the image again (with its checksum), then burn again.',
      });
    }
    const verifyStarted = performance.now();
    const verified = await verifyBlocks(phase, written.checks, options.rewriteAttempts ?? DEFAULT_REWRITE_ATTEMPTS);
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    const mibps = (bytes: number, s: number) => (s > 0 ? bytes / MiB / s : 0);
    const result: BurnResult = {
      image: plan.image.path,
      device: t.path,
      imageBytes: plan.image.sizeBytes,
      sha256: written.sha256,
      bytesWritten: written.bytesWritten + verified.zeroedBytes,
      bytesSkipped: plan.blocks.skippedBytes,
      zeroedBytes: verified.zeroedBytes,
      blockSize: plan.blockSize,
      directIo: io.directIo,
      writeSeconds,
      verifySeconds,
      writeMiBps: mibps(written.bytesWritten, writeSeconds),
      verifyMiBps: mibps(verified.bytesVerified, verifySeconds),
      rewrites: verified.rewrites,
      rewrittenOffsets: verified.rewrittenOffsets,
      warnings: [...plan.warnings, ...(io.fallbackReason ? [io.fallbackReason] : [])],
    };
    if (expected) result.expectedSha256 = expected;
    if (plan.blocks.clear) result.clearedEnd = plan.blocks.clear;
    if (io.fallbackReason) result.directIoNote = io.fallbackReason;
    return result;
  } finally {
    await io?.close();
    await image.close();
  }
}
