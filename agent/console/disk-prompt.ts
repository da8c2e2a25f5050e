import { formatBytes } from '../../core/index.js';
import type { SessionEnv } from './env.js';
import { describeDisks, type DiskRow } from './inventory.js';
import { chooseRow, say } from './prompts.js';
import { diskTable } from './tables.js';
import type { Terminal } from './terminal.js';

/** A disk in words: "/dev/vda (QEMU HARDDISK, 20.0 GiB)". */
export function diskName(d: Pick<DiskRow, 'path' | 'model' | 'sizeBytes'>): string {
  return `${d.path} (${d.model ? `${d.model}, ` : ''}${formatBytes(d.sizeBytes)})`;
}

/** Asks for a disk among env.disks, showing what each holds; `previous` is the path chosen before. */
export async function pickDisk(term: Terminal, env: SessionEnv, prompt: string, previous: string | undefined, refuse: (row: DiskRow) => string | undefined): Promise<DiskRow> {
  say(term, 'Reading the disks ...');
  const rows = await describeDisks(env.disks);
  const before = rows.findIndex((r) => r.path === previous);
  return chooseRow(term, 'Disks of this machine:', rows, {
    table: diskTable(rows, env.bootMedium),
    prompt,
    refuse,
    ...(rows.length === 1 ? { default: '1' } : {}),
    ...(before >= 0 ? { previous: String(before + 1) } : {}),
  });
}

