import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError, pathKind, run } from '../core/index.js';
import { withAttachedImage } from '../partition/index.js';

/**
 * Attaches a raw disk image with its partitions through partition/'s one loop layer (which asks
 * for the partition nodes with partx, there being no udev here), runs `body` with the loop
 * device (/dev/loopN), and detaches it on every path.
 */
export async function withDiskImage<T>(image: string, body: (loop: string) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  return withAttachedImage(image, body, options);
}

/** The node of partition `number` of a loop device, once the kernel has made it. */
export async function partitionNode(loop: string, number: number, timeoutMs = 10_000): Promise<string> {
  const node = `${loop}p${number}`;
  const deadline = Date.now() + timeoutMs;
  while ((await pathKind(node)) !== 'block-device') {
    if (Date.now() > deadline) throw new ImagepeError('NOT_FOUND', `${node} did not appear`);
    await sleep(100);
  }
  return node;
}

/** Mounts partition `number` of a raw disk image, runs `body` on the mount point, and undoes it all. */
export async function withPartitionMounted<T>(image: string, number: number, body: (dir: string) => Promise<T>, options: { readOnly?: boolean; type?: string } = {}): Promise<T> {
  return withDiskImage(
    image,
    async (loop) => {
      const node = await partitionNode(loop, number);
      const dir = await mkdtemp(join(tmpdir(), 'imagepe-part-'));
      // Read-only means not a byte written: an ext4 left dirty (power cut) is read without
      // replaying its journal.
      const opts = options.readOnly ? (options.type === 'ext4' ? 'ro,noload' : 'ro') : 'rw';
      await run('mount', [...(options.type ? ['-t', options.type] : []), '-o', opts, node, dir], { what: `mounting ${node}`, timeoutMs: 60_000 });
      try {
        return await body(dir);
      } finally {
        await run('umount', [dir], { what: `unmounting ${dir}`, timeoutMs: 60_000 });
        await rmdir(dir);
      }
    },
    options.readOnly ? { readOnly: true } : {},
  );
}

/** A raw copy of a qcow2 disk, sparse, so loop devices and offline tools can read it. */
export async function qcow2ToRaw(qcow2: string, raw: string): Promise<void> {
  await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw], { what: `converting ${qcow2} to raw`, timeoutMs: 300_000 });
}
