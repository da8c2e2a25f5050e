import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { ImagepeError, RateMeter, formatBytes, type EventSink } from '../core/index.js';
import type { DeviceIo } from './device.js';
import type { Block, BlockPlan } from './plan.js';

/** What the write and verify phases share. */
export interface Phase {
  /** Zeros, as long as a block: hashed for the image's holes, compared with the cleared end. */
  zeros: Buffer;
  /** The image, opened for reading (buffered: it is usually in the page cache, and never written). */
  image: FileHandle;
  imagePath: string;
  imageSize: number;
  plan: BlockPlan;
  io: DeviceIo;
  sectorSize: number;
  /** Page-aligned buffers of the block size (alignedBuffers): three, for the pipelines. */
  buffers: Buffer[];
  events: EventSink;
  signal?: AbortSignal | undefined;
}

/**
 * How a block read back is recognised. An image block: by the whole image's sha256 as it stood
 * before the block (`before`, a copy of the running hash) and after it (`after`, its digest at
 * that point): the block read back is right when hashing it on from `before` gives `after`. So
 * the read-back check is a sha256, yet the write phase hashes every byte only once (the image's
 * own sha256, which it must compute anyway) and the read-back hashes only the blocks, never the
 * holes between them. On this host's 2 shared cores a second per-block hash (sha1) while writing
 * cost 0.5 s per GiB, more than the writes themselves. A block of the cleared end must read
 * back as zeros.
 */
export type BlockCheck = { source: 'zeros' } | { source: 'image'; before: Hash; after: Buffer };

/** Whether `data`, read back, is the block `check` describes; `zeros` is at least as long as any block. */
export function blockMatches(check: BlockCheck, data: Uint8Array, zeros: Buffer): boolean {
  if (check.source === 'zeros') return zeros.subarray(0, data.length).equals(data);
  return check.before.copy().update(data).digest().equals(check.after);
}

/**
 * Fills `into` with block `b`'s bytes: read from the image at the block's offset, or zeros (the
 * cleared end, a hole).
 * Returns the view of exactly the block's bytes. Throws INVALID_INPUT when the image cannot be
 * read (naming the offset) or ends early (it shrank since it was planned).
 */
export async function fetchBlock(p: Pick<Phase, 'image' | 'imagePath'>, b: Block, into: Buffer): Promise<Buffer> {
  const view = into.subarray(0, b.length);
  if (b.source !== 'image') return view.fill(0);
  for (let done = 0; done < b.length; ) {
    let n: number;
    try {
      n = (await p.image.read(view, done, b.length - done, b.offset + done)).bytesRead;
    } catch (e) {
      throw new ImagepeError('INVALID_INPUT', `reading ${p.imagePath} at offset ${b.offset + done} failed: ${(e as Error).message}`, { hint: 'The disk holding the image may be failing; copy the image elsewhere and burn again.', cause: e });
    }
    if (n === 0) throw imageChanged(p.imagePath, `it ends at ${b.offset + done} bytes`);
    done += n;
  }
  return view;
}

export function imageChanged(path: string, how: string): ImagepeError {
  return new ImagepeError('INVALID_INPUT', `${path} changed while it was being burnt (${how})`, { hint: 'Let whatever writes the image finish, then burn again: the stick holds a mix and must not be used.' });
}

/** Emits progress events of one phase with a rate and an ETA; `report(done)` after each block. */
export function progressReporter(events: EventSink, phase: string, total: number): (done: number) => void {
  const meter = new RateMeter();
  return (done) => events({ type: 'progress', operation: 'burn', phase, unit: 'bytes', done, total, ...meter.sample(done, total) });
}

/** Throws CANCELLED with what state the stick is left in. */
export function checkCancelled(p: Pick<Phase, 'signal' | 'io' | 'imagePath'>, state: string): void {
  if (!p.signal?.aborted) return;
  throw new ImagepeError('CANCELLED', `burning ${p.imagePath} to ${p.io.path} was cancelled ${state}`, { hint: 'Burn it again before using the stick.' });
}

/** A promise whose rejection is awaited later: marked handled now, so Node.js does not call it unhandled meanwhile. */
export function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export interface Written {
  sha256: string;
  /** How to recognise each block of the plan (holes included) when it is read back, same order. */
  checks: BlockCheck[];
  bytesWritten: number;
}

/**
 * Writes every block of the plan and hashes the image on the way: sha256 of the whole image
 * (holes fed in as zeros, so it equals `sha256sum IMAGE`), and for each block the check its
 * read-back must pass (BlockCheck). Ends with fdatasync.
 *
 * A three-stage pipeline over three aligned buffers: while block N is written (the write runs in
 * libuv's thread pool) block N+1 is hashed on the main thread and block N+2 is read from the
 * image (also in the pool). One write at a time, in order: a USB stick's controller is fastest
 * with large sequential writes. Nothing is copied: the image is read straight into the buffer
 * that is hashed and then written with O_DIRECT.
 *
 * Throws CANCELLED between blocks (every write under way is awaited first), the device errors
 * of deviceError, and INVALID_INPUT when the image cannot be read or changed size.
 */
export async function writeBlocks(p: Phase): Promise<Written> {
  // Holes are not written here: verifyBlocks reads them and zeroes only what is not zero already.
  const blocks = p.plan.blocks.filter((b) => b.source !== 'hole');
  const total = blocks.reduce((n, b) => n + b.length, 0);
  const report = progressReporter(p.events, 'write', total);
  const whole = createHash('sha256');
  const zeros = p.zeros;
  let hashedTo = 0;
  const hashZerosTo = (end: number) => {
    while (hashedTo < end) {
      const n = Math.min(zeros.length, end - hashedTo);
      whole.update(zeros.subarray(0, n));
      hashedTo += n;
    }
  };
  const checks: BlockCheck[] = [];
  const buf = (i: number) => p.buffers[i % 3]!;
  let reading = blocks.length > 0 ? later(fetchBlock(p, blocks[0]!, buf(0))) : undefined;
  let writing: Promise<void> | undefined;
  let done = 0;
  report(0);
  try {
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      const data = await reading!;
      // Buffer i+1 (mod 3) was last written from as block i-2, which ended before block i-1's write started.
      reading = i + 1 < blocks.length ? later(fetchBlock(p, blocks[i + 1]!, buf(i + 1))) : undefined;
      if (b.source === 'image') {
        hashZerosTo(b.offset);
        const before = whole.copy();
        whole.update(data);
        hashedTo = b.offset + b.length;
        checks.push({ source: 'image', before, after: whole.copy().digest() });
      } else checks.push({ source: 'zeros' });
      if (writing) {
        await writing;
        done += blocks[i - 1]!.length;
        report(done);
      }
      checkCancelled(p, `after ${formatBytes(done)} of ${formatBytes(total)} were written: the stick is incomplete`);
      writing = later(p.io.write(b, data));
    }
    if (writing) {
      await writing;
      done += blocks[blocks.length - 1]!.length;
    }
  } finally {
    await Promise.allSettled([reading, writing]);
  }
  hashZerosTo(p.imageSize);
  await p.io.sync();
  report(done);
  // One check per block of the plan, in its order: a hole must read back as zeros.
  let next = 0;
  const all = p.plan.blocks.map((b): BlockCheck => (b.source === 'hole' ? { source: 'zeros' } : checks[next++]!));
  return { sha256: whole.digest('hex'), checks: all, bytesWritten: done };
}
