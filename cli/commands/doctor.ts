import type { CommandModule } from 'yargs';
import { TOOLS, findTool } from '../../core/index.js';
import { printJson } from '../output.js';
import { table } from './wim.js';

export const doctorCommand: CommandModule<{ json: boolean }, { json: boolean }> = {
  command: 'doctor',
  describe: 'List the external tools imagepe uses and their packages',
  handler: (a) => {
    const rows = TOOLS.map((t) => ({ ...t, path: findTool(t.name) ?? null }));
    const missing = rows.filter((r) => r.path === null);
    if (a.json) printJson({ type: 'result', operation: 'doctor', tools: rows, missing: missing.length });
    else {
      process.stdout.write(`${table(['Tool', 'Status', 'Package', 'Used for'], rows.map((r) => [r.name, r.path ?? 'MISSING', r.debianPackage, r.purpose]))}\n`);
      process.stdout.write(
        missing.length === 0
          ? `All ${rows.length} tools found.\n`
          : `${missing.length} of ${rows.length} tools missing. Install them with: apt-get install ${[...new Set(missing.map((m) => m.debianPackage))].join(' ')} (or run scripts/setup as root)\n`,
      );
    }
    if (missing.length > 0) process.exitCode = 7;
  },
};
