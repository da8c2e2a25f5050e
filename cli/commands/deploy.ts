import type { Argv, CommandModule } from 'yargs';
import { formatBytes, formatDuration } from '../../core/index.js';
import { deploy, type DeployResult, type DiskSummary } from '../../agent/deploy/index.js';
import { loadPlan } from '../../agent/plan/index.js';
import { renderLayoutTable } from '../../partition/index.js';
import { printJson } from '../output.js';
import { withSteps } from '../steps.js';
import { summary } from './plan.js';
import { askYes, requireTerminal } from '../confirm.js';

type DeployArgs = { json: boolean; plan: string; disk: string | undefined; yes: boolean; 'sector-size': number | undefined };

export const deployCommand: CommandModule<{ json: boolean }, DeployArgs> = {
  command: 'deploy',
  describe: 'Deploy an image to a disk (or disk image file) from a plan: a WIM is partitioned, applied, specialized, made bootable and verified; a raw disk image (.img, .raw, .zst/.xz/.gz, .qcow2) is written whole and read back, grown to the disk, specialized and verified',
  builder: (y) =>
    y
      .option('plan', { type: 'string', demandOption: true, describe: 'The deploy plan (YAML or JSON)' })
      .option('disk', { type: 'string', describe: 'Block device or disk image file; overrides target.disk of the plan' })
      .option('yes', { type: 'boolean', default: false, describe: 'Do not ask before overwriting the disk' })
      .option('sector-size', { type: 'number', choices: [512, 4096], describe: 'Sector size to attach a disk image file with' })
      .example('$0 deploy --plan plan.yaml --disk disk.img --yes', 'deploy into a disk image file through a loop device') as Argv<DeployArgs>,
  handler: async (a) => {
    const plan = await loadPlan(a.plan);
    if (!a.yes) requireTerminal('not deploying without confirmation', 'Pass --yes to deploy without asking (stdin is not a terminal).');
    // deploy asks once the disk is chosen and read, before anything is mapped or written.
    const confirm = async (s: DiskSummary) => ask(s, summary(plan));
    // Asking needs the terminal, so a run that asks renders plain lines instead of the live list.
    // Ctrl-C cancels the deploy instead of killing the process, so mounts and the loop device are released.
    const controller = new AbortController();
    const stop = () => controller.abort();
    // Plain on(), not once(): execa's exit hook re-raises a signal that has no other listener
    // left, which would kill the process before the cleanup runs.
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const result = await withSteps(a.json, !a.yes, (events) =>
      deploy(plan, {
        events,
        signal: controller.signal,
        planFile: a.plan,
        yes: a.yes,
        ...(a.yes ? {} : { confirm }),
        ...(a.disk ? { disk: a.disk } : {}),
        ...(a['sector-size'] ? { sectorSize: a['sector-size'] } : {}),
      }),
    ).finally(() => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    });
    if (a.json) printJson({ type: 'result', operation: 'deploy', result });
    else process.stdout.write(render(result));
  },
};

async function ask(s: DiskSummary, planText: string): Promise<boolean> {
  const written = s.layout
    ? renderLayoutTable(s.layout)
    : `${s.rawImage?.image} (${s.rawImage?.format} disk image${s.rawImage?.imageBytes !== undefined ? `, ${formatBytes(s.rawImage.imageBytes)}` : ''}) written whole, partition table included`;
  process.stderr.write(`${planText}\n${written}\n`);
  process.stderr.write(s.holds.length ? `${s.disk} holds: ${s.holds.join('; ')}\n` : `${s.disk} is blank\n`);
  return askYes(`Erase ${s.disk} (${formatBytes(s.sizeBytes)}) and deploy this plan?`);
}

function render(r: DeployResult): string {
  const lines = [`${r.disk}: deployed in ${formatDuration(r.durationMs / 1000)}${r.hostname ? `, hostname ${r.hostname}` : ''}${r.machineId ? `, machine-id ${r.machineId}` : ''}`];
  for (const p of r.partitions) lines.push(`  ${p.volumeGroup ? '-' : p.number}  ${p.name.padEnd(12)} ${(p.fsType ?? 'unformatted').padEnd(6)} ${p.uuid ?? ''}${p.mount ? `  -> ${p.mount}` : ''}`);
  if (r.logFile) lines.push(`log: ${r.logFile}`);
  return `${lines.join('\n')}\n`;
}
