import type { Argv, CommandModule } from 'yargs';
import { loadPlan, planJsonSchema, type DeployPlan } from '../../agent/plan/index.js';
import { printJson } from '../output.js';

type ValidateArgs = { json: boolean; file: string };

const validateCommand: CommandModule<{ json: boolean }, ValidateArgs> = {
  command: 'validate <file>',
  describe: 'Check a deploy plan (YAML or JSON); errors name each wrong field',
  builder: (y) => y.positional('file', { type: 'string', demandOption: true, describe: 'The plan file' }) as Argv<ValidateArgs>,
  handler: async (a) => {
    const plan = await loadPlan(a.file);
    if (a.json) printJson({ type: 'result', operation: 'plan validate', valid: true, plan: redact(plan) });
    else process.stdout.write(`${a.file}: valid plan\n${summary(plan)}`);
  },
};

const schemaCommand: CommandModule<{ json: boolean }, { json: boolean }> = {
  command: 'schema',
  describe: 'Print the JSON Schema of deploy plans (for editors)',
  handler: () => {
    process.stdout.write(`${JSON.stringify(planJsonSchema(), null, 2)}\n`);
  },
};

export const planCommand: CommandModule<{ json: boolean }, { json: boolean }> = {
  command: 'plan <command>',
  describe: 'Deploy plans: validate one, or print their JSON Schema',
  builder: (y) => y.command(validateCommand).command(schemaCommand).demandCommand(1, 'Name a plan command: validate or schema.') as Argv<{ json: boolean }>,
  handler: () => {},
};

/** The plan without its password, for printing. */
export function redact(plan: DeployPlan): DeployPlan {
  const c = plan.source.credentials;
  if (c && 'password' in c && c.password !== undefined) return { ...plan, source: { ...plan.source, credentials: { ...c, password: '********' } } };
  return plan;
}

export function summary(plan: DeployPlan): string {
  const parts = plan.target.layout.partitions.map((p) => `${p.name} ${p.size} ${p.format}${p.mount ? ` ${p.mount}` : ''}`);
  const lines = [
    `  source:     ${plan.source.url} ${plan.source.image} (image ${plan.source.index})${plan.source.sha256 ? ', sha256 given' : ''}`,
    `  target:     ${plan.target.disk ? ('path' in plan.target.disk ? plan.target.disk.path : `the ${plan.target.disk.pick} disk that matches`) : '(--disk)'}, ${plan.target.layout.table}${plan.target.wipe ? ', wipe' : ''}`,
    `  layout:     ${parts.join('; ')}`,
    `  apply:      ${plan.apply.map((a) => `${a.index ?? plan.source.index} -> ${a.partition}`).join(', ')}`,
    `  specialize: ${plan.specialize.hostname ? `hostname ${plan.specialize.hostname}, ` : ''}machine-id ${plan.specialize.machineId}${plan.specialize.removeSshHostKeys ? ', SSH host keys removed' : ''}${plan.specialize.files.length ? `, ${plan.specialize.files.length} files` : ''}${plan.specialize.unattend ? ', unattend.xml' : ''}`,
    `  bootloader: ${plan.bootloader.type === 'none' ? 'none' : `grub for ${plan.bootloader.firmware}`}`,
    `  after:      ${plan.after}`,
  ];
  return `${lines.join('\n')}\n`;
}
