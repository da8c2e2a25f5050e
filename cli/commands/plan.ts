import type { Argv, CommandModule } from 'yargs';
import { capturePlanJsonSchema, FROM_IMAGE, isRawSource, loadAnyPlan, planJsonSchema, planLayout, type CapturePlan, type DeployPlan } from '../../agent/plan/index.js';
import { printJson } from '../output.js';

type ValidateArgs = { json: boolean; file: string };

const validateCommand: CommandModule<{ json: boolean }, ValidateArgs> = {
  command: 'validate <file>',
  describe: 'Check a deploy or capture plan (YAML or JSON; kind: capture makes a capture plan); errors name each wrong field',
  builder: (y) => y.positional('file', { type: 'string', demandOption: true, describe: 'The plan file' }) as Argv<ValidateArgs>,
  handler: async (a) => {
    const any = await loadAnyPlan(a.file);
    const plan = any.kind === 'deploy' ? redact(any.plan) : redactCapture(any.plan);
    if (a.json) printJson({ type: 'result', operation: 'plan validate', valid: true, kind: any.kind, plan });
    else process.stdout.write(`${a.file}: valid ${any.kind} plan\n${any.kind === 'deploy' ? summary(any.plan) : captureSummary(any.plan)}`);
  },
};

type SchemaArgs = { json: boolean; kind: 'deploy' | 'capture' };

const schemaCommand: CommandModule<{ json: boolean }, SchemaArgs> = {
  command: 'schema',
  describe: 'Print the JSON Schema of deploy plans, or of capture plans with --kind capture (for editors)',
  builder: (y) => y.option('kind', { choices: ['deploy', 'capture'] as const, default: 'deploy' as const, describe: 'Which plans the schema is for' }) as Argv<SchemaArgs>,
  handler: (a) => {
    process.stdout.write(`${JSON.stringify(a.kind === 'capture' ? capturePlanJsonSchema() : planJsonSchema(), null, 2)}\n`);
  },
};

export const planCommand: CommandModule<{ json: boolean }, { json: boolean }> = {
  command: 'plan <command>',
  describe: 'Deploy and capture plans: validate one, or print their JSON Schema',
  builder: (y) => y.command(validateCommand).command(schemaCommand).demandCommand(1, 'Name a plan command: validate or schema.') as Argv<{ json: boolean }>,
  handler: () => {},
};

/** The plan without its password, for printing. */
export function redact(plan: DeployPlan): DeployPlan {
  const c = plan.source.credentials;
  if (c && 'password' in c && c.password !== undefined) return { ...plan, source: { ...plan.source, credentials: { ...c, password: '********' } } };
  return plan;
}

/** The capture plan without its password, for printing. */
export function redactCapture(plan: CapturePlan): CapturePlan {
  const c = plan.destination.credentials;
  if (c && 'password' in c && c.password !== undefined) return { ...plan, destination: { ...plan.destination, credentials: { ...c, password: '********' } } };
  return plan;
}

export function summary(plan: DeployPlan): string {
  const layout = planLayout(plan);
  const raw = isRawSource(plan.source);
  const parts = raw ? [`the raw image's own, grown to the disk${plan.target.grow ? ` (grow: ${plan.target.grow})` : ''}`] : layout === FROM_IMAGE ? ['recorded in the image (from-image)'] : layout.partitions.map((p) => `${p.name} ${p.size} ${p.format}${p.mount ? ` ${p.mount}` : ''}`);
  const lines = [
    `  source:     ${plan.source.url} ${plan.source.image} (${raw ? 'raw disk image' : `image ${plan.source.index}`})${plan.source.sha256 ? ', sha256 given' : ''}`,
    `  target:     ${plan.target.disk ? ('path' in plan.target.disk ? plan.target.disk.path : `the ${plan.target.disk.pick} disk that matches`) : '(--disk)'}, ${layout === FROM_IMAGE ? 'table from the image' : layout.table}${plan.target.wipe ? ', wipe' : ''}`,
    `  layout:     ${parts.join('; ')}`,
    raw ? '  apply:      the whole image, block for block' : `  apply:      ${plan.apply.length ? plan.apply.map((a) => `${a.index ?? plan.source.index} -> ${a.partition}`).join(', ') : `${plan.source.index} -> the partition it was captured from`}`,
    `  specialize: ${plan.specialize.hostname ? `hostname ${plan.specialize.hostname}, ` : ''}machine-id ${plan.specialize.machineId}${plan.specialize.removeSshHostKeys ? ', SSH host keys removed' : ''}${plan.specialize.files.length ? `, ${plan.specialize.files.length} files` : ''}${plan.specialize.unattend ? ', unattend.xml' : ''}`,
    `  bootloader: ${raw ? "the image's own" : plan.bootloader.type === 'none' ? 'none' : `grub for ${plan.bootloader.firmware}`}`,
    `  after:      ${plan.after}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function captureSummary(plan: CapturePlan): string {
  const disk = plan.source.disk ? ('path' in plan.source.disk ? plan.source.disk.path : `the ${plan.source.disk.pick} disk that matches`) : '(--disk, or the only disk that is not the boot medium)';
  const part = plan.source.partition === 'root' ? 'the one holding an operating system' : 'label' in plan.source.partition ? `label ${plan.source.partition.label}` : `number ${plan.source.partition.number}`;
  const d = plan.destination;
  const lines = [
    `  source:      ${disk}, partition: ${part}`,
    `  generalize:  ${plan.generalize ? 'yes (Linux partitions)' : 'no'}`,
    `  destination: ${d.url} ${d.file}, image "${d.name}"${d.append ? ', appended' : ', a new WIM'}, ${d.compression}${d.integrity ? ', integrity table' : ''}`,
    `  after:       ${plan.after}`,
  ];
  return `${lines.join('\n')}\n`;
}
