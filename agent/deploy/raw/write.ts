import { formatBytes } from '../../../core/index.js';
import * as raw from '../../../imaging/raw/index.js';
import * as partition from '../../../partition/index.js';
import { defineStep, need } from '../../steps/index.js';
import type { DeployContext } from '../context.js';

/**
 * The first write: the raw image written over the whole disk, block for block, sparse-aware
 * (zero blocks and a block map's free ranges are not written), hashed as it arrives against the
 * sha256 check found, and read back in windows as it goes (a block that reads back wrong is
 * written again, a bounded number of times). imaging/raw does the work.
 */
export const rawWriteStep = defineStep({
  name: 'write',
  title: 'Image written',
  writesDisk: true,
  describe: (ctx: DeployContext) => `${ctx.plan.source.image} to ${ctx.diskShown}`,
  async run(ctx: DeployContext, io) {
    const { source, probe, sha256 } = need(ctx.raw, 'the raw image');
    const device = need(ctx.device, 'the disk device');
    // What the disk held is unmade first: the image does not cover a larger disk's end, where an
    // old GPT's backup header would otherwise survive beside the image's table.
    if (ctx.holds.length > 0) await partition.wipeSignatures(device, io.runOpts);
    const r = await raw.writeRawImage({
      source,
      device,
      format: probe.format,
      ...(sha256 ? { sha256 } : {}),
      bmap: 'auto',
      events: io.events,
      ...(io.signal ? { signal: io.signal } : {}),
      ...(ctx.options.scratchDir ? { scratchDir: ctx.options.scratchDir } : {}),
    });
    ctx.rawWritten = r;
    for (const w of r.rewrites) io.warn(`${formatBytes(w.length)} at offset ${w.offset} read back wrong and was written again`);
    const seconds = r.durationMs / 1000;
    return [
      `${formatBytes(r.imageBytes)} image: ${formatBytes(r.writtenBytes)} written, ${formatBytes(r.skippedBytes)} skipped${r.zeroedBytes ? `, ${formatBytes(r.zeroedBytes)} of old data zeroed` : ''}`,
      `${(r.imageBytes / 1024 ** 2 / Math.max(seconds, 0.001)).toFixed(0)} MiB/s`,
      r.bmapFrom ? `block map ${r.bmapFrom}` : undefined,
      `sha256 ${r.sha256}${sha256 ? ' matches' : ''}`,
      r.rewrites.length ? `${r.rewrites.length} blocks rewritten after a bad read-back` : 'read back and verified',
    ]
      .filter(Boolean)
      .join(', ');
  },
});
