import { ImagepeError, formatBytes } from '../core/index.js';
import type { Block } from './plan.js';
import { blockMatches, checkCancelled, fetchBlock, imageChanged, later, progressReporter, type BlockCheck, type Phase } from './write.js';

export interface Verified {
  /** Block rewrites done because a block read back wrong (each attempt counts). */
  rewrites: number;
  /** Offsets of the blocks that read back wrong at least once. */
  rewrittenOffsets: number[];
  /** Bytes of the image's holes the device did not hold as zeros, and which were zeroed. */
  zeroedBytes: number;
  bytesVerified: number;
}

/**
 * Reads back every block written, and every hole of the image, and checks it against what the
 * write phase recorded (BlockCheck). A hole that does not read back as zeros (whatever the stick
 * held before) is zeroed and read again: skipping holes saves their writes, never their bytes,
 * so the device ends up holding exactly the image whatever made it sparse. The device's page cache is dropped first, so the bytes come from the device;
 * with O_DIRECT they never pass through the cache at all. Reads are pipelined: block N+1 is
 * read (thread pool) while block N is hashed (main thread).
 *
 * A block that reads back wrong is read from the image again (and checked too: the image must
 * not have changed), rewritten, synced and read again, up to `rewriteAttempts` times; a
 * `rewrite` progress event goes out after each rewrite is synced and before it is read again.
 * Blocks still wrong after that fail the burn with VERIFY_FAILED naming each offset, once every
 * block has been read.
 *
 * Throws VERIFY_FAILED (wrong blocks, I/O errors reading back), CANCELLED, INVALID_INPUT (the
 * image changed).
 */
export async function verifyBlocks(p: Phase, checks: readonly BlockCheck[], rewriteAttempts: number): Promise<Verified> {
  const blocks = p.plan.blocks;
  const total = blocks.reduce((n, b) => n + b.length, 0);
  await p.io.dropCache(p.signal);
  const report = progressReporter(p.events, 'verify', total);
  report(0);
  const [a, b, scratch] = p.buffers as [Buffer, Buffer, Buffer];
  const buf = (i: number) => (i % 2 === 0 ? a : b);
  const out: Verified = { rewrites: 0, rewrittenOffsets: [], zeroedBytes: 0, bytesVerified: 0 };
  const failed: Block[] = [];
  let reading = blocks.length > 0 ? later(p.io.read(blocks[0]!, buf(0), p.sectorSize)) : undefined;
  try {
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i]!;
      const data = await reading!;
      checkCancelled(p, `while verifying, after ${formatBytes(out.bytesVerified)} of ${formatBytes(total)}: the image was written but not verified`);
      reading = i + 1 < blocks.length ? later(p.io.read(blocks[i + 1]!, buf(i + 1), p.sectorSize)) : undefined;
      // Stale bytes where the image has a hole (an old image on the stick) are zeroed, as the image
      // reads there: not a fault of the device, so not a rewrite unless they stay.
      const right = blockMatches(checks[i]!, data, p.zeros) || (block.source === 'hole' && (await zeroHole(p, block, checks[i]!, scratch, out)));
      if (!right) {
        out.rewrittenOffsets.push(block.offset);
        if (!(await repair(p, block, checks[i]!, scratch, rewriteAttempts, out))) failed.push(block);
      }
      out.bytesVerified += block.length;
      report(out.bytesVerified);
    }
  } finally {
    await Promise.allSettled([reading]);
  }
  if (failed.length > 0) {
    const where = failed.map((f) => `${f.offset} (${formatBytes(f.length)} at ${formatBytes(f.offset)})`).join(', ');
    throw new ImagepeError('VERIFY_FAILED', `${p.io.path} does not hold what was written: ${failed.length === 1 ? 'the block' : `${failed.length} blocks`} at offset ${where} still read back wrong after ${rewriteAttempts} rewrite${rewriteAttempts === 1 ? '' : 's'} each`, {
      hint: 'The stick is failing (or counterfeit: smaller than it claims). Use another stick.',
    });
  }
  return out;
}

/**
 * Writes `data` as `block` and makes it reach the device: fdatasync, and the page cache dropped
 * when the writes are buffered, so the next read of the block comes from the device.
 */
async function writeThrough(p: Phase, block: Block, data: Uint8Array): Promise<void> {
  await p.io.write(block, data);
  await p.io.sync();
  if (!p.io.directIo) await p.io.dropCache(p.signal);
}

async function readsBackRight(p: Phase, block: Block, check: BlockCheck, scratch: Buffer): Promise<boolean> {
  return blockMatches(check, await p.io.read(block, scratch, p.sectorSize), p.zeros);
}

/** Zeroes a hole that read back with other bytes, counting them in `zeroedBytes`; whether it now reads back as zeros. */
async function zeroHole(p: Phase, block: Block, check: BlockCheck, scratch: Buffer, out: Verified): Promise<boolean> {
  out.zeroedBytes += block.length;
  // From the aligned scratch buffer: O_DIRECT refuses the unaligned p.zeros.
  await writeThrough(p, block, scratch.fill(0, 0, block.length).subarray(0, block.length));
  return readsBackRight(p, block, check, scratch);
}

/** Rewrites one block from its source until it reads back right; false when every attempt failed. */
async function repair(p: Phase, block: Block, check: BlockCheck, scratch: Buffer, attempts: number, out: Verified): Promise<boolean> {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    checkCancelled(p, `while rewriting a block that read back wrong: the stick is not verified`);
    const data = await fetchBlock(p, block, scratch);
    if (!blockMatches(check, data, p.zeros)) throw imageChanged(p.imagePath, `the ${formatBytes(block.length)} at offset ${block.offset} differ from what was written`);
    await writeThrough(p, block, data);
    out.rewrites++;
    p.events({ type: 'message', operation: 'burn', level: 'warning', text: `the ${formatBytes(block.length)} at offset ${block.offset} read back wrong; rewritten (attempt ${attempt} of ${attempts})` });
    p.events({ type: 'progress', operation: 'burn', phase: 'rewrite', unit: 'bytes', done: block.length, total: block.length });
    if (await readsBackRight(p, block, check, scratch)) return true;
  }
  return false;
}
