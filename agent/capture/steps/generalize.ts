import * as imaging from '../../../imaging/index.js';
import { defineStep, need } from '../../steps/index.js';
import { mountSystemTree } from '../system-tree.js';
import type { CaptureContext } from '../context.js';

/** The first write to the reference disk: machine-specific state removed offline, on the system mounted as one tree. */
export const generalizeStep = defineStep({
  name: 'generalize',
  title: 'Generalized',
  writesDisk: true,
  skipIf: (ctx: CaptureContext) => {
    if (!ctx.plan.generalize) return 'the plan says generalize: false';
    if (need(ctx.source, 'the source').fsType === 'ntfs') return 'NTFS: generalize Windows with sysprep before the capture';
    return undefined;
  },
  describe: (ctx: CaptureContext) => ctx.source?.node,
  async run(ctx: CaptureContext, io) {
    const src = need(ctx.source, 'the source');
    // The whole system: its logs and state may be on a separate /var.
    const tree = await mountSystemTree(io, src, ctx.systemMounts, { readOnly: false, why: 'to generalize it' });
    const g = await imaging.generalize(tree.dir);
    await tree.release();
    return generalizeSummary(g.items);
  },
});

/** "12 items: machine id, 2x SSH host key, 3x log file" */
function generalizeSummary(items: readonly imaging.GeneralizeItem[]): string {
  if (items.length === 0) return 'nothing machine-specific found';
  const counts = new Map<string, number>();
  for (const i of items) {
    const what = i.reason.replace(/\s*\(.*\)$/, '');
    counts.set(what, (counts.get(what) ?? 0) + 1);
  }
  return `${items.length} item${items.length === 1 ? '' : 's'}: ${[...counts].map(([what, n]) => (n > 1 ? `${n}x ${what}` : what)).join(', ')}`;
}
