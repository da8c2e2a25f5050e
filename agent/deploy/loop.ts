import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError, run, type RunOptions } from '../../core/index.js';

/**
 * Attaches a disk image file as a loop device with its partitions, for a deploy or a capture
 * that was given a file instead of a disk. A file already attached is refused: two loop devices
 * on one file would let two writers see different caches of the same bytes.
 */
export async function attachImageFile(path: string, o: { sectorSize?: number; readOnly?: boolean }, runOpts: (what: string) => RunOptions): Promise<string> {
  const attached = (await run('losetup', ['--associated', path, '--noheadings', '--output', 'NAME'], runOpts('checking loop devices'))).stdout.trim();
  if (attached) throw new ImagepeError('DISK_IN_USE', `disk image ${path} is already attached as ${attached.split('\n').join(', ')}`, { hint: 'Detach it (losetup -d) after unmounting whatever uses it.' });
  const ss = o.sectorSize ?? 512;
  const args = ['--find', '--show', '--partscan', ...(o.readOnly ? ['--read-only'] : []), ...(ss !== 512 ? ['--sector-size', String(ss)] : []), path];
  return (await run('losetup', args, runOpts(`attaching ${path}`))).stdout.trim();
}

/**
 * Detaches a loop device, trying a few times: right after the last unmount the kernel can still
 * hold it busy for a moment. Cleanup runs after a cancel too, so it takes no signal. Throws the
 * last error when every try failed.
 */
export async function detachLoop(loop: string): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await run('losetup', ['--detach', loop], { what: `detaching ${loop}`, timeoutMs: 30_000 });
      return;
    } catch (e) {
      last = e;
      await sleep(200 * (attempt + 1));
    }
  }
  throw last;
}
