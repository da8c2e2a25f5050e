import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { FILES, TOOLS, findTool } from '../../core/index.js';
import { printJson } from '../output.js';
import { table } from './wim.js';

export const doctorCommand: CommandModule<{ json: boolean }, { json: boolean }> = {
  command: 'doctor',
  describe: 'List the external tools and files (firmware, the signed boot chain) imagepe uses and their packages',
  handler: (a) => {
    const rows = [...TOOLS.map((t) => ({ ...t, path: findTool(t.name) ?? null })), ...FILES.map((f) => ({ name: f.path, debianPackage: f.debianPackage, purpose: f.purpose, path: existsSync(f.path) ? f.path : null }))];
    const missing = rows.filter((r) => r.path === null);
    if (a.json) printJson({ type: 'result', operation: 'doctor', tools: rows, missing: missing.length });
    else {
      process.stdout.write(`${table(['Tool or file', 'Status', 'Package', 'Used for'], rows.map((r) => [r.name, r.path === null ? 'MISSING' : r.path === r.name ? 'found' : r.path, r.debianPackage, r.purpose]))}\n`);
      process.stdout.write(
        missing.length === 0
          ? `All ${rows.length} tools and files found.\n`
          : `${missing.length} of ${rows.length} tools and files missing. Install them with: apt-get install ${[...new Set(missing.map((m) => m.debianPackage))].join(' ')} (or run imagepe setup as root)\n`,
      );
    }
    if (missing.length > 0) process.exitCode = 7;
  },
};
