import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_MAIN as MAIN, runImagepe } from '../test-support/cli.js';
import { removeDir, tempDir } from '../test-support/tree.js';

// The CLI is tested as users run it: the built entry point (npm test builds first).

async function imagepe(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runImagepe(args);
}

let work: string;
beforeAll(async () => {
  expect(existsSync(MAIN)).toBe(true);
  work = await tempDir('cli');
  await mkdir(join(work, 'src/etc'), { recursive: true });
  await writeFile(join(work, 'src/etc/hostname'), 'ref\n');
  await writeFile(join(work, 'src/data.bin'), Buffer.alloc(2 * 1024 * 1024, 7));
});
afterAll(async () => removeDir(work));

describe('imagepe CLI', () => {
  it('captures with --json: progress events as JSON lines, then a result', async () => {
    const r = await imagepe('capture', join(work, 'src'), join(work, 'a.wim'), 'Base', 'first image', '--compress', 'xpress', '--json');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.type === 'progress' && l.operation === 'capture' && typeof l.done === 'number')).toBe(true);
    const result = lines[lines.length - 1];
    expect(result).toMatchObject({ type: 'result', operation: 'capture', image: { index: 1, name: 'Base', description: 'first image' } });
  });

  it('prints info as a table and as JSON', async () => {
    const human = await imagepe('info', join(work, 'a.wim'));
    expect(human.stdout).toMatch(/1\s+Base\s+\d+\s+\d+\s+2\.00 MiB/);
    const json = JSON.parse((await imagepe('info', join(work, 'a.wim'), '--json')).stdout);
    expect(json).toMatchObject({ imageCount: 1, compression: 'xpress', images: [{ name: 'Base' }] });
  });

  it('applies the only image when no index is given, with a summary line', async () => {
    const r = await imagepe('apply', join(work, 'a.wim'), join(work, 'out'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Applied image 1 "Base" to .*out: 2 files/);
    expect(await readFile(join(work, 'out/etc/hostname'), 'utf8')).toBe('ref\n');
  });

  it('exits 3 and lists the images for an unknown index', async () => {
    const r = await imagepe('apply', join(work, 'a.wim'), '5', join(work, 'out5'));
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('has no image with index 5; it holds: 1 "Base"');
  });

  it('exits 4 for a target that is not empty, and prints the error as JSON with --json', async () => {
    const r = await imagepe('apply', join(work, 'a.wim'), '1', join(work, 'out'), '--json');
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ type: 'error', code: 'TARGET_NOT_EMPTY' });
  });

  it('exits 2 on a usage error', async () => {
    const r = await imagepe('capture');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Not enough non-option arguments/);
  });

  it('lists tools with their packages in doctor', async () => {
    const r = await imagepe('doctor', '--json');
    const out = JSON.parse(r.stdout);
    const wimlib = out.tools.find((t: { name: string }) => t.name === 'wimlib-imagex');
    expect(wimlib).toMatchObject({ debianPackage: 'wimtools', path: expect.stringMatching(/wimlib-imagex$/) });
  });

  it('generalizes with --dry-run without changing anything', async () => {
    const root = join(work, 'ref-root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/machine-id'), 'abc\n');
    const r = await imagepe('generalize', root, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/empty\s+\/etc\/machine-id/);
    expect(r.stdout).toContain('Dry run: would change 1 item(s)');
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('abc\n');
    const refused = await imagepe('generalize', '/');
    expect(refused.code).toBe(4);
  });
});
