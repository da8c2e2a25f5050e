import type { Argv, CommandModule } from 'yargs';
import { generalize } from '../../imaging/index.js';
import { printJson } from '../output.js';
import { table } from './wim.js';

type Args = { json: boolean; root: string; 'dry-run': boolean };

export const generalizeCommand: CommandModule<{ json: boolean }, Args> = {
  command: 'generalize <root>',
  describe: 'Sysprep a Linux system mounted at ROOT (drop machine-id, keys...)',
  builder: (y) =>
    y
      .positional('root', { type: 'string', demandOption: true, describe: 'Where the reference system is mounted (never /)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'List what would be removed, change nothing' }) as Argv<Args>,
  handler: async (a) => {
    const r = await generalize(a.root, { dryRun: a['dry-run'] });
    if (a.json) {
      printJson({ type: 'result', operation: 'generalize', ...r });
      return;
    }
    if (r.items.length === 0) {
      process.stdout.write(`${r.root}: nothing machine-specific found\n`);
      return;
    }
    process.stdout.write(`${table(['Action', 'Path', 'Why'], r.items.map((i) => [i.action, i.path, i.reason]))}\n`);
    process.stdout.write(`${r.dryRun ? 'Dry run: would change' : 'Generalized: changed'} ${r.items.length} item(s) under ${r.root}\n`);
  },
};
