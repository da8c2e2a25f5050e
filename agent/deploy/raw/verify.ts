import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError, run } from '../../../core/index.js';
import { bootProblems } from '../../system/boot-check.js';
import { defineStep, need } from '../../steps/index.js';
import type { DeployContext } from '../context.js';
import { DEPLOYED_MARKER, IN_PROGRESS_MARKER, writeMarker } from '../markers.js';
import { bootFacts } from '../steps/verify.js';

/**
 * A raw deploy read back before `deployed`: the partition table as grown is consistent (sfdisk
 * --verify: the GPT's backup at the end, nothing overlapping), and a Linux system on it would
 * boot cleanly as specialized (its fstab, root= and resume= name volumes of this disk, GRUB's
 * kernel and initramfs are there, sshd has host keys). The image's blocks were verified as they
 * were written. The deployed marker is written last; the disk is let go before the step ends.
 */
export const rawVerifyStep = defineStep({
  name: 'verify',
  title: 'Verified',
  writesDisk: true,
  releasesResources: true,
  async run(ctx: DeployContext, io) {
    const device = need(ctx.device, 'the disk device');
    const written = need(ctx.rawWritten, 'the written image');
    const checks = [`${written.rewrites.length ? `${written.rewrites.length} blocks rewritten, then ` : ''}every block read back`];
    if (ctx.rawTable) {
      const r = await run('sfdisk', ['--verify', device], { ...io.runOpts(`checking the partition table of ${device}`), okExitCodes: [0, 1] });
      // sfdisk 2.38 exits 0 even when it counts errors ("1 error detected."): its words decide.
      const said = `${r.stdout}\n${r.stderr}`;
      if (r.exitCode !== 0 || !/No errors detected/i.test(said)) {
        const lines = said.split('\n').map((l) => l.trim()).filter((l) => l && !l.endsWith(':'));
        throw new ImagepeError('VERIFY_FAILED', `the partition table of ${ctx.diskShown} does not verify (sfdisk --verify):\n${lines.map((l) => `  - ${l}`).join('\n')}`);
      }
      checks.push('table');
    }
    if (ctx.targetRoot) {
      const problems = bootProblems(await bootFacts(ctx, io));
      if (problems.length) throw new ImagepeError('VERIFY_FAILED', `the deployed system would not boot cleanly:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { hint: 'Fix the image so each of these names something on its own disk, or mark mounts that may be missing nofail.' });
      checks.push('boot readiness');
      const { plan } = ctx;
      await rm(join(ctx.targetRoot, IN_PROGRESS_MARKER), { force: true });
      await writeMarker(ctx.targetRoot, DEPLOYED_MARKER, { source: plan.source.url, image: plan.source.image, format: written.format, sha256: written.sha256, hostname: ctx.hostname ?? null, machineId: ctx.machineId ?? null, deployedAt: new Date().toISOString() });
      checks.push(DEPLOYED_MARKER);
    }
    return checks.join(', ');
  },
});
