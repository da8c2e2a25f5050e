import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { run } from '../core/index.js';
import { attachImageFile, detachLoop } from '../partition/index.js';
import { CLI_MAIN, runImagepe as imagepe } from '../test-support/cli.js';
import { removeDir, tempDir } from '../test-support/tree.js';

// imagepe burn as users run it: the built entry point (npm test builds first), on a loop device.
// Loop devices are not removable, so every run that gets past the refusals names it with --force.

const MAIN = CLI_MAIN;
const MiB = 1024 * 1024;
const PATTERN = 0xa5;
let dir: string;
let loop: string;
let image: string;


/** Runs imagepe on a pseudo-terminal (util-linux script), typing `typed` once the question is up. */
async function imagepeOnTerminal(args: string[], typed: string): Promise<{ code: number; output: string }> {
  const command = ['node', MAIN, ...args].join(' ');
  const shell = `(sleep 2; printf '%s\\n' '${typed}') | script -qec '${command}' /dev/null`;
  const r = await run('sh', ['-c', shell], { okExitCodes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130], timeoutMs: 30_000 });
  return { code: r.exitCode, output: r.stdout };
}

async function untouched(): Promise<boolean> {
  await run('blockdev', ['--flushbufs', loop]);
  return (await readFile(loop)).every((b) => b === PATTERN);
}

async function reset(): Promise<void> {
  await writeFile(loop, Buffer.alloc(16 * MiB, PATTERN));
  await run('blockdev', ['--flushbufs', loop]);
}

beforeAll(async () => {
  expect(existsSync(MAIN)).toBe(true);
  dir = await tempDir('burn-cli');
  const backing = join(dir, 'stick.dev');
  await writeFile(backing, Buffer.alloc(16 * MiB, PATTERN));
  loop = await attachImageFile(backing);
  image = join(dir, 'pe.img');
  await writeFile(image, randomBytes(3 * MiB + 512));
}, 30_000);

afterAll(async () => {
  if (loop) await detachLoop(loop);
  await removeDir(dir);
}, 30_000);

describe('imagepe burn', () => {
  it('refuses a device that is not removable, with exit status 4, before asking anything', async () => {
    const r = await imagepe(['burn', image, loop]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`imagepe: not burning to ${loop}: it is not removable`);
    expect(r.stderr).toContain(`--force ${loop}`);
    expect(await untouched()).toBe(true);
  }, 30_000);

  it('describes the device, then refuses without confirmation when stdin is not a terminal (no --yes)', async () => {
    const r = await imagepe(['burn', image, loop, '--force', loop]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`${loop}: no model, 16.0 MiB, no transport, not removable`);
    expect(r.stderr).toContain(`imagepe: not burning to ${loop} without confirmation`);
    expect(r.stderr).toContain('Pass --yes');
    expect(await untouched()).toBe(true);
  }, 30_000);

  it('on a terminal, cancels when the answer is not the device name, and burns when it is', async () => {
    const wrong = await imagepeOnTerminal(['burn', image, loop, '--force', loop], 'yes');
    expect(wrong.code).toBe(130);
    expect(wrong.output).toContain(`Type its name (${basename(loop)}) to burn:`);
    expect(wrong.output).toContain('"yes" is not its name');
    expect(await untouched()).toBe(true);

    const right = await imagepeOnTerminal(['burn', image, loop, '--force', loop], basename(loop));
    expect(right.code).toBe(0);
    expect(right.output).toContain(`Burnt ${image} to ${loop} and read every block back.`);
    const img = await readFile(image);
    await run('blockdev', ['--flushbufs', loop]);
    expect((await readFile(loop)).subarray(0, img.length).equals(img)).toBe(true);
    await reset();
  }, 60_000);

  it('with --yes --json prints the target, progress events and the result as JSON lines', async () => {
    const r = await imagepe(['burn', image, loop, '--force', loop, '--yes', '--json', '--block-size', '1MiB']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ type: 'target', operation: 'burn', target: { device: loop, removable: false }, image: { path: image, sizeBytes: 3 * MiB + 512 } });
    expect(lines.some((l) => l.type === 'progress' && l.phase === 'write')).toBe(true);
    expect(lines.some((l) => l.type === 'progress' && l.phase === 'verify')).toBe(true);
    expect(lines.at(-1)).toMatchObject({ type: 'result', operation: 'burn', result: { device: loop, blockSize: MiB, directIo: true, rewrites: 0, imageBytes: 3 * MiB + 512 } });
    await reset();
  }, 60_000);

  it('fails with exit status 2 for a block size that is not a multiple of 4 KiB', async () => {
    const r = await imagepe(['burn', image, loop, '--force', loop, '--yes', '--block-size', '100000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a multiple of 4 KiB');
    expect(await untouched()).toBe(true);
  }, 30_000);
});
