import type { CommandModule } from 'yargs';
import { ImagepeError, formatBytes, type ImagepeEvent } from '../../core/index.js';
import { apply, chooseDisk, describeDisk, loadLayout, renderLayoutTable, renderSfdiskScript, resolveLayout, type ResolvedLayout, type Result } from '../../partition/index.js';
import { printJson } from '../output.js';
import { askYes, requireTerminal } from '../confirm.js';

interface PartitionArgs {
  layout: string;
  disk: string | undefined;
  'dry-run': boolean;
  yes: boolean;
  'sector-size': number | undefined;
  json: boolean;
}

export const partitionCommand: CommandModule<{ json: boolean }, PartitionArgs> = {
  command: 'partition',
  describe: 'Partition and format a disk (or disk image file) from a declarative layout, then verify it',
  builder: (y) =>
    y
      .option('layout', { type: 'string', demandOption: true, describe: 'Layout file (YAML or JSON)' })
      .option('disk', { type: 'string', describe: 'Block device or disk image file; defaults to the disk the layout names' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Show the layout resolved against the disk and the sfdisk script; change nothing' })
      .option('yes', { type: 'boolean', default: false, describe: 'Do not ask before writing' })
      .option('sector-size', { type: 'number', choices: [512, 4096], describe: 'Sector size to use for a disk image file (4096 for 4Kn)' })
      .example('$0 partition --layout templates/layouts/uefi-bios-gpt.yaml --disk /dev/sdb --dry-run', 'show what would be written')
      .example('$0 partition --layout layout.yaml --disk disk.img --yes --json', 'partition an image file without asking'),
  handler: async (args) => {
    const layout = await loadLayout(args.layout);
    const chosen = await chooseDisk({ purpose: 'partitioned', path: args.disk, target: layout.disk, missingHint: 'Pass --disk PATH, or give the layout a disk: { path } or a rule.' });
    const disk = await describeDisk(chosen.path, args['sector-size'] !== undefined ? { sectorSize: args['sector-size'] } : {});
    const resolved = resolveLayout(layout, disk);

    if (args['dry-run']) {
      // The JSON keeps the key "plan" it always had: scripts read it.
      if (args.json) printJson({ type: 'plan', plan: layoutSummary(resolved), sfdiskScript: renderSfdiskScript(resolved) });
      else process.stdout.write(`${renderLayoutTable(resolved)}\nsfdisk script:\n${renderSfdiskScript(resolved)}`);
      return;
    }

    if (!args.yes) await confirm(resolved);

    const result = await apply(resolved, { events: args.json ? (e) => printJson(e) : printEvent });
    if (args.json) printJson({ type: 'result', result });
    else process.stdout.write(renderResult(result));
  },
};

async function confirm(resolved: ResolvedLayout): Promise<void> {
  requireTerminal(`not partitioning ${resolved.disk.path} without confirmation`, 'Pass --yes to partition without asking (stdin is not a terminal), or --dry-run to only see the resolved layout.');
  process.stderr.write(renderLayoutTable(resolved));
  const what = resolved.wipe ? 'erase everything on it and write this layout' : 'write this layout';
  if (!(await askYes(`\n${what} to ${resolved.disk.path} (${formatBytes(resolved.disk.sizeBytes)})?`))) {
    throw new ImagepeError('CANCELLED', `partitioning ${resolved.disk.path} was cancelled`);
  }
}

function printEvent(e: ImagepeEvent): void {
  if (e.type === 'step' && e.status !== 'done') process.stderr.write(`${e.status === 'skipped' ? 'skip' : '==>'} ${e.step}${e.detail ? `: ${e.detail}` : ''}\n`);
  if (e.type === 'message') process.stderr.write(`${e.level}: ${e.text}\n`);
}

function layoutSummary(p: ResolvedLayout): Record<string, unknown> {
  const { layout: _layout, ...rest } = p;
  return rest;
}

function renderResult(r: Result): string {
  const lines = [`${r.disk}: ${r.table === 'gpt' ? 'GPT' : 'MBR'} ${r.diskId}, verified`];
  for (const p of r.partitions) {
    const fs = p.fsType ? `${p.fsType}${p.label ? ` "${p.label}"` : ''}${p.uuid ? ` UUID=${p.uuid}` : ''}` : 'unformatted';
    lines.push(`  ${p.volumeGroup ? '-' : p.number}  ${p.name.padEnd(12)} ${formatBytes(p.size * r.sectorSize).padStart(10)}  ${fs}${p.mount ? `  -> ${p.mount}` : ''}`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
