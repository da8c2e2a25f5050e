import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError, run } from '../core/index.js';

export interface AttachOptions {
  /** The logical sector size to present (default 512); 4096 makes a 4Kn disk of the file. */
  sectorSize?: number;
  /** Attach read-only: nothing can write through the loop device. */
  readOnly?: boolean;
  signal?: AbortSignal;
}

/**
 * Attaches a disk image file as a loop device with its partitions (`losetup --partscan`) and
 * returns the device (/dev/loopN). A file already attached is refused with DISK_IN_USE: two
 * loop devices on one file would let two writers see different caches of the same bytes.
 */
export async function attachImageFile(path: string, options: AttachOptions = {}): Promise<string> {
  const opts = (what: string) => ({ what, timeoutMs: 30_000, ...(options.signal ? { signal: options.signal } : {}) });
  const attached = (await run('losetup', ['--associated', path, '--noheadings', '--output', 'NAME'], opts('checking loop devices'))).stdout.trim();
  if (attached) {
    throw new ImagepeError('DISK_IN_USE', `disk image ${path} is already attached as ${attached.split('\n').join(', ')}`, { hint: 'Detach it (losetup -d) after unmounting whatever uses it.' });
  }
  const ss = options.sectorSize ?? 512;
  const args = ['--find', '--show', '--partscan', ...(options.readOnly ? ['--read-only'] : []), ...(ss !== 512 ? ['--sector-size', String(ss)] : []), path];
  return (await run('losetup', args, opts(`attaching ${path}`))).stdout.trim();
}

/**
 * Detaches a loop device, trying a few times: right after the last unmount the kernel can still
 * hold it busy for a moment. Takes no signal, since cleanup runs after a cancel too. Throws the
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

/**
 * Runs `body` with a disk image file attached (partitions read by the kernel), and detaches it
 * on every path; a detach that fails after `body` failed does not hide body's error.
 */
export async function withAttachedImage<T>(path: string, body: (device: string) => Promise<T>, options: AttachOptions = {}): Promise<T> {
  const device = await attachImageFile(path, options);
  let ok = false;
  try {
    await run('partx', ['--update', device], { what: `reading the partitions of ${device}`, timeoutMs: 30_000, okExitCodes: [0, 1] });
    const result = await body(device);
    ok = true;
    return result;
  } finally {
    await detachLoop(device).catch((e: unknown) => {
      if (ok) throw e;
    });
  }
}
