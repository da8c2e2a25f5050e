import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MTOOLS_ENV, run, type RunOptions } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import { defineStep, mountOn, need, scratchDir } from '../../steps/index.js';
import { espOf, partitionNamed, treeMountOptions, treeMounts, type DeployContext } from '../context.js';

/**
 * The images applied: the target's Linux filesystems mounted as one tree (parents first) and each
 * image extracted with its UNIX metadata, or an NTFS volume written directly; files an image has
 * under the ESP's mount point are copied onto the ESP, which is FAT and not mounted.
 */
export const applyStep = defineStep({
  name: 'apply',
  title: 'Applied',
  writesDisk: true,
  async run(ctx: DeployContext, io) {
    const { plan } = ctx;
    const wimPath = need(ctx.wimPath, 'the image');
    const images = need(ctx.images, 'the images');
    const { dir: targetRoot } = await scratchDir(io, 'target');
    ctx.targetRoot = targetRoot;
    for (const m of treeMounts(ctx)) {
      const dir = join(targetRoot, m.mount);
      await mkdir(dir, { recursive: true });
      const options = treeMountOptions(m);
      await mountOn(io, m.partition.node, dir, { fsType: m.partition.fsType!, options, what: `mounting ${m.partition.name} (${m.partition.node}${options ? `, ${options}` : ''}) on ${m.mount}` });
    }
    for (const [i, entry] of plan.apply.entries()) {
      const part = partitionNamed(ctx, entry.partition);
      const image = images[i]!;
      const ntfs = entry.mode === 'ntfs' || (entry.mode === 'auto' && part.fsType === 'ntfs');
      const where = ntfs ? part.node : join(targetRoot, part.mount ?? '/');
      io.info(`applying image ${image.index} "${image.name}" to ${part.name} (${ntfs ? 'NTFS mode' : 'Linux tree with UNIX metadata'})`);
      await imaging.apply(wimPath, image.index, where, { unixData: !ntfs, allowNonEmpty: !ntfs, events: io.events, ...(io.signal ? { signal: io.signal } : {}) });
    }
    const esp = espOf(ctx);
    if (esp?.mount?.startsWith('/')) await moveTreeToFat(join(targetRoot, esp.mount), partitionNamed(ctx, esp.name).node, io.runOpts);
    return images.map((img, i) => `${img.index} "${img.name}" -> ${plan.apply[i]!.partition}`).join(', ');
  },
});

async function moveTreeToFat(dir: string, node: string, runOpts: (what: string) => RunOptions): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) {
    await run('mcopy', ['-s', '-o', '-i', node, join(dir, e), '::/'], { ...runOpts(`copying ${e} to the ESP`), env: MTOOLS_ENV });
    await rm(join(dir, e), { recursive: true, force: true });
  }
}
