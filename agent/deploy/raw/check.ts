import { formatBytes, ImagepeError, pathKind } from '../../../core/index.js';
import { expectedSha256, sha256FileHash } from '../../../burn/index.js';
import * as raw from '../../../imaging/raw/index.js';
import { defineStep, need } from '../../steps/index.js';
import { confirmDisk, type DeployContext } from '../context.js';

/**
 * A raw image, before the disk is touched: found on the share or answering over HTTP, its
 * format and size read (a compressed stream's size only when its frames say it), its block map
 * found beside it the way bmaptool looks, the sha256 it must have taken from the plan or from
 * IMAGE.sha256 beside it, and refused when it is larger than the disk. Nothing is read in full:
 * the image is hashed while it is written.
 */
export const rawCheckStep = defineStep({
  name: 'check',
  title: 'Image checked',
  writesDisk: false,
  describe: (ctx: DeployContext) => ctx.plan.source.image,
  async run(ctx: DeployContext, io) {
    const { source: planSource } = ctx.plan;
    const share = need(ctx.share, 'the share');
    const signalOpt = io.signal ? { signal: io.signal } : {};
    let source: raw.RawSource;
    if (share.imageUrl) source = { kind: 'url', url: share.imageUrl };
    else {
      const path = need(share.imagePath, 'the image path');
      if ((await pathKind(path)) !== 'file') throw new ImagepeError('NOT_FOUND', `the image ${planSource.image} is not on the share (${planSource.url})`);
      source = { kind: 'file', path };
    }
    const probe = await raw.probeRawImage(source, { bmap: 'auto', ...signalOpt });
    const disk = need(ctx.disk, 'the disk');
    if (probe.imageBytes !== undefined && probe.imageBytes > disk.sizeBytes) {
      throw new ImagepeError('NO_SPACE', `${planSource.image} is a disk image of ${formatBytes(probe.imageBytes)}; ${ctx.diskShown} has ${formatBytes(disk.sizeBytes)}`, {
        hint: 'Deploy it to a disk at least as large as the image, or make the image smaller (shrink its last partition before capturing it).',
      });
    }
    let sha256 = planSource.sha256?.toLowerCase();
    let sha256From = sha256 ? 'the plan' : undefined;
    if (!sha256) {
      const found = source.kind === 'file' ? await expectedSha256(source.path) : await sidecarOverHttp(source.url, io.signal);
      if (found) ({ hex: sha256, source: sha256From } = found);
    }
    if (!sha256) io.warn(`${planSource.image} is not verified against a known sha256: give source.sha256 in the plan, or publish ${planSource.image}.sha256 beside it (imagepe capture-raw writes one); what is written is still read back and compared`);
    ctx.raw = { source, probe, sha256, sha256From };
    await confirmDisk(ctx, { rawImage: { image: planSource.image, format: probe.format, imageBytes: probe.imageBytes } });
    const size = probe.imageBytes !== undefined ? formatBytes(probe.imageBytes) : 'size known once written';
    const map = probe.bmap ? `, block map ${probe.bmapFrom} (${formatBytes(probe.bmap.mappedBlocks * probe.bmap.blockSize)} mapped)` : ', no block map: zero blocks found as it is written';
    return `${probe.format} disk image, ${size}${map}; ${sha256 ? `sha256 from ${sha256From}, checked as it is written` : 'no sha256 to check'}`;
  },
});

/** The sha256 a server publishes beside an image (IMAGE.sha256, sha256sum's format or the bare hash); undefined when there is none. */
async function sidecarOverHttp(url: URL, signal: AbortSignal | undefined): Promise<{ hex: string; source: string } | undefined> {
  const at = new URL(`${url.pathname}.sha256`, url);
  const response = await fetch(at, signal ? { signal } : {}).catch(() => undefined);
  if (!response || response.status !== 200) {
    await response?.body?.cancel();
    return undefined;
  }
  return { hex: sha256FileHash(await response.text(), at.href), source: at.href };
}
