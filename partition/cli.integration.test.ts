import { jest } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { MiB, run } from '../core/index.js';
import { partitionCommand } from '../cli/commands/partition.js';
import { sparseFile } from '../test-support/tree.js';

// The command runs in-process, the way cli/main.ts wires it, against sparse image files.

let dir: string;
let layoutFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-partition-cli-'));
  layoutFile = join(dir, 'layout.yaml');
  await writeFile(
    layoutFile,
    ['table: gpt', 'firmware: both', 'partitions:', '  - { name: ESP, size: 64MiB, type: esp, format: vfat, label: ESP }', '  - { name: bios, size: 1MiB, type: bios-boot }', '  - { name: root, size: rest, type: linux, format: ext4, label: root }', ''].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function image(name: string, size: number): Promise<string> {
  return sparseFile(join(dir, name), size);
}

async function cli(args: string[]): Promise<{ stdout: string; error?: unknown }> {
  let stdout = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await yargs(args)
      .option('json', { type: 'boolean', default: false, global: true })
      .command(partitionCommand)
      .strict()
      .fail((message, error) => {
        throw error ?? new Error(message);
      })
      .parseAsync();
    return { stdout };
  } catch (error) {
    return { stdout, error };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

async function tableOf(path: string): Promise<string> {
  // sfdisk reads a table from an image file directly, no loop device needed.
  return (await run('sfdisk', ['--dump', path], { okExitCodes: [0, 1] })).stdout;
}

describe('imagepe partition', () => {
  it('--dry-run shows the plan and the sfdisk script and writes nothing', async () => {
    const path = await image('dry.img', 512 * MiB);
    const { stdout, error } = await cli(['partition', '--layout', layoutFile, '--disk', path, '--dry-run']);
    expect(error).toBeUndefined();
    expect(stdout).toMatch(/1 +ESP +2048 +133119 +131072 +64\.0 MiB +esp +vfat +ESP/);
    expect(stdout).toContain('start=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"');
    expect(await tableOf(path)).not.toMatch(/label:/);
  });

  it('refuses to write without --yes when stdin is not a terminal', async () => {
    const path = await image('ask.img', 512 * MiB);
    const { error } = await cli(['partition', '--layout', layoutFile, '--disk', path]);
    expect(error).toMatchObject({ code: 'REFUSED', hint: expect.stringContaining('--yes') });
    expect(await tableOf(path)).not.toMatch(/label:/);
  });

  it('--yes --json partitions the disk and prints the resulting table as JSON', async () => {
    const path = await image('yes.img', 512 * MiB);
    const { stdout, error } = await cli(['partition', '--layout', layoutFile, '--disk', path, '--yes', '--json']);
    expect(error).toBeUndefined();
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; result?: { table: string; partitions: { name: string; fsType?: string; label?: string }[] } });
    expect(lines.some((l) => l.type === 'step')).toBe(true);
    const result = lines.find((l) => l.type === 'result')!.result!;
    expect(result.table).toBe('gpt');
    expect(result.partitions.map((p) => [p.name, p.fsType, p.label])).toEqual([
      ['ESP', 'vfat', 'ESP'],
      ['bios', undefined, undefined],
      ['root', 'ext4', 'root'],
    ]);
    expect(await tableOf(path)).toMatch(/label: gpt/);
  });

  it('--sector-size 4096 plans an image file as a 4Kn disk', async () => {
    const path = await image('4kn.img', 1024 * MiB);
    const layout4k = join(dir, 'layout4k.json');
    await writeFile(layout4k, JSON.stringify({ table: 'gpt', partitions: [{ name: 'ESP', size: '300MiB', type: 'esp', format: 'vfat' }, { name: 'root', size: 'rest', type: 'linux' }] }));
    const { stdout, error } = await cli(['partition', '--layout', layout4k, '--disk', path, '--dry-run', '--json', '--sector-size', '4096']);
    expect(error).toBeUndefined();
    const out = JSON.parse(stdout) as { plan: { sectorSize: number; partitions: { start: number }[] }; sfdiskScript: string };
    expect(out.plan.sectorSize).toBe(4096);
    expect(out.plan.partitions[0]!.start).toBe(256);
    expect(out.sfdiskScript).toContain('sector-size: 4096');
  });

  it('reports a layout error with the field path', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'table: gpt\npartitions:\n  - { name: root, size: huge, type: linux }\n');
    const { error } = await cli(['partition', '--layout', bad, '--disk', await image('bad.img', 64 * MiB), '--dry-run']);
    expect(error).toMatchObject({ code: 'LAYOUT_INVALID', message: expect.stringContaining('partitions[0].size') });
  });
});
