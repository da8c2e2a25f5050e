import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { basename } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { ImagepeError, formatBytes, parseSize } from '../../core/index.js';
import { parseAgentCommandLine } from '../../agent/cmdline.js';
import { findBootMedium, readSysBlock } from '../../agent/disks.js';
import { burn, planBurn, type BurnPlan, type BurnResult } from '../../burn/index.js';
import { requireTerminal } from '../confirm.js';
import { printJson } from '../output.js';
import { withProgress } from '../progress.js';

interface BurnArgs {
  json: boolean;
  image: string;
  device: string;
  yes: boolean;
  force: string | undefined;
  sparse: boolean;
  sha256: string | undefined;
  'block-size': string;
}

export const burnCommand: CommandModule<{ json: boolean }, BurnArgs> = {
  command: 'burn <image> <device>',
  describe: 'Write the PE ISO (or any raw disk image) to a USB stick: direct I/O, holes not written, sha256, every block read back',
  builder: (y) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'The ISO or raw disk image file' })
      .positional('device', { type: 'string', demandOption: true, describe: 'The whole USB stick: /dev/sdX or a /dev/disk/by-id/ link' })
      .option('yes', { type: 'boolean', default: false, describe: 'Do not ask (the device is still described, and every refusal still applies)' })
      .option('force', { type: 'string', describe: 'Allow a disk that does not report itself removable or USB; name the same device again (--force /dev/sdb)' })
      .option('sparse', { type: 'boolean', default: true, describe: "Read the image's holes back instead of writing them, zeroing only what is not zero already (--no-sparse writes every byte)" })
      .option('sha256', { type: 'string', describe: 'The sha256 the image must have; default: the one in IMAGE.sha256, or in a SHA256SUMS beside the image' })
      .option('block-size', { type: 'string', default: '4MiB', describe: 'Bytes per write and read-back, a multiple of 4 KiB from 64 KiB to 64 MiB' })
      .example('$0 burn out/imagepe.iso /dev/sdb', 'describe the stick, ask for its name, write, read back')
      .example('$0 burn disk.img /dev/sdc --yes --json', 'no question; progress and the result as JSON lines') as Argv<BurnArgs>,
  handler: async (a) => {
    if (a.force !== undefined && !a.force) throw new ImagepeError('INVALID_INPUT', '--force needs the device named again', { hint: `Write --force ${a.device}.` });
    const plan = await planBurn(a.image, a.device, {
      blockSize: parseSize(a['block-size']),
      sparse: a.sparse,
      bootMedia: [peBootMedium()],
      ...(a.sha256 !== undefined ? { expectedSha256: a.sha256 } : {}),
      ...(a.force ? { force: a.force } : {}),
    });
    if (a.json) printJson({ type: 'target', operation: 'burn', target: plan.target, image: plan.image, blocks: { dataBytes: plan.blocks.dataBytes, skippedBytes: plan.blocks.skippedBytes, clear: plan.blocks.clear ?? null } });
    else process.stderr.write(renderPlan(plan));
    if (!a.yes) await confirm(plan);

    // Ctrl-C stops between blocks and closes the device, instead of killing the process mid-write.
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const result = await withProgress(`Burning ${a.image} to ${plan.target.path}`, a.json, (events) => burn(plan, { events, signal: controller.signal })).finally(() => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    });
    if (a.json) printJson({ type: 'result', operation: 'burn', result });
    else process.stdout.write(renderResult(result));
  },
};

/** The stick the PE booted from, when this runs in the PE (imagepe.medium= on its command line); else nothing: the host's own disks are the running system's. */
function peBootMedium(): string | null {
  const cmdline = parseAgentCommandLine(readFileSync('/proc/cmdline', 'utf8'));
  return cmdline.medium ? findBootMedium(readSysBlock(), cmdline.medium) : null;
}

/** What the stick is and holds, and what will be written: shown before asking. */
export function renderPlan(plan: BurnPlan): string {
  const t = plan.target;
  const what = [[t.vendor, t.model].filter(Boolean).join(' ') || 'no model', formatBytes(t.sizeBytes), t.transport ?? 'no transport', t.removable ? 'removable' : 'not removable'];
  const lines = [`${t.path}${t.path !== t.device ? ` (${t.device})` : ''}: ${what.join(', ')}`];
  const holds: string[] = [];
  if (t.partitionTable) holds.push(`${t.partitionTable === 'dos' ? 'an MBR' : `a ${t.partitionTable.toUpperCase()}`} partition table with ${t.partitions.length} partition${t.partitions.length === 1 ? '' : 's'}`);
  if (t.fsType) holds.push(`${t.fsType}${t.label ? ` "${t.label}"` : ''} on the whole device`);
  lines.push(`  holds: ${holds.length ? holds.join('; ') : 'nothing recognisable (blank or unknown)'}`);
  for (const p of t.partitions) {
    const fs = p.fsType ? `${p.fsType}${p.label ? ` "${p.label}"` : ''}` : 'no filesystem';
    lines.push(`    ${p.path}  ${formatBytes(p.sizeBytes).padStart(9)}  ${fs}${p.mountPoints.length ? `  mounted on ${p.mountPoints.join(', ')}` : ''}`);
  }
  const img = plan.image;
  const holes = plan.blocks.skippedBytes > 0 ? `, ${formatBytes(plan.blocks.skippedBytes)} of it holes, read back rather than written` : '';
  lines.push(`image: ${img.path}, ${formatBytes(img.sizeBytes)}${holes}`);
  lines.push(img.expectedSha256 ? `  its sha256 must be ${img.expectedSha256.hex} (${img.expectedSha256.source})` : '  no sha256 to check it against (give --sha256, or put IMAGE.sha256 beside it)');
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

/** The user types the device's name (as given, as the kernel's node, or its short name): a "yes" typed by habit is not enough. */
async function confirm(plan: BurnPlan): Promise<void> {
  const t = plan.target;
  requireTerminal(`not burning to ${t.path} without confirmation`, 'Pass --yes to burn without asking (stdin is not a terminal).');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  let answer: string;
  try {
    answer = (await rl.question(`\nEverything on ${t.path} will be lost. Type its name (${basename(t.device)}) to burn: `)).trim();
  } catch (e) {
    // Ctrl-C at the question: readline rejects with an AbortError. Nothing was written.
    if ((e as Error).name === 'AbortError') throw new ImagepeError('CANCELLED', `burning to ${t.path} was cancelled; nothing was written`);
    throw e;
  } finally {
    rl.close();
  }
  if (![t.path, t.device, basename(t.device)].includes(answer)) throw new ImagepeError('CANCELLED', `burning to ${t.path} was cancelled: "${answer}" is not its name`);
}

export function renderResult(r: BurnResult): string {
  const s = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} s`;
  const lines = [
    `Burnt ${r.image} to ${r.device} and read every block back.`,
    `  written   ${formatBytes(r.bytesWritten)} in ${s(r.writeSeconds)} (${r.writeMiBps.toFixed(0)} MiB/s)${r.bytesSkipped ? `; ${formatBytes(r.bytesSkipped)} of holes not written${r.zeroedBytes ? ` (${formatBytes(r.zeroedBytes)} of them held old data and were zeroed)` : ''}` : ''}`,
    `  verified  in ${s(r.verifySeconds)} (${r.verifyMiBps.toFixed(0)} MiB/s)${r.rewrites ? `; ${r.rewrites} rewrite${r.rewrites === 1 ? '' : 's'} of blocks that read back wrong, at ${r.rewrittenOffsets.join(', ')}` : ''}`,
    `  sha256    ${r.sha256}${r.expectedSha256 ? ` (matches ${r.expectedSha256.source})` : ''}`,
  ];
  lines.push(r.directIo ? '  direct I/O' : `  buffered I/O: ${r.directIoNote ?? ''}`);
  if (r.clearedEnd) lines.push(`  the device's last ${formatBytes(r.clearedEnd.length)} zeroed, so no old partition table (a backup GPT) outlives the burn`);
  return `${lines.join('\n')}\n`;
}
