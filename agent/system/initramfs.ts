import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunOptions } from '../../core/index.js';
import { systemHas, type Chroot } from './chroot.js';
import { readAssignments, valueText } from './shell.js';

/** The tool a system builds its initramfs with. */
export type InitramfsTool = 'initramfs-tools' | 'dracut';

export async function findInitramfsTool(root: string): Promise<InitramfsTool | undefined> {
  if (await systemHas(root, 'usr/sbin/update-initramfs')) return 'initramfs-tools';
  if ((await systemHas(root, 'usr/bin/dracut')) || (await systemHas(root, 'usr/sbin/dracut'))) return 'dracut';
  return undefined;
}

// Building an initramfs compresses tens of megabytes; under software emulation that takes minutes.
const BUILD_TIMEOUT_MS = 60 * 60_000;
const BUILD_IDLE_MS = 15 * 60_000;

/**
 * Rebuilds every initramfs of the system with its own tool, in a chroot on this machine's
 * hardware: the resume device and everything else the tool reads from /etc is the deployed
 * system's as specialize and remap left it, and a host-only initramfs (dracut's default,
 * initramfs-tools' MODULES=dep) is made for this machine. Returns the kernels it was made for.
 * Throws COMMAND_FAILED with the tool's stderr tail.
 */
export async function rebuildInitramfs(chroot: Chroot, tool: InitramfsTool, signal?: AbortSignal): Promise<string[]> {
  const opts = (what: string): RunOptions => ({ what, timeoutMs: BUILD_TIMEOUT_MS, idleTimeoutMs: BUILD_IDLE_MS, ...(signal ? { signal } : {}) });
  const kernels = (await readdir(join(chroot.root, 'usr/lib/modules')).catch(() => [] as string[])).sort();
  // -v: mkinitramfs names each file it adds. Without it update-initramfs says nothing for the whole
  // build, which under software emulation and a busy CPU ran past BUILD_IDLE_MS (a clean-clone test
  // run, two VMs and the host tests on two cores); with it, only a build that stops making progress
  // (or a compression longer than BUILD_IDLE_MS) is stopped.
  if (tool === 'initramfs-tools') await chroot.run('update-initramfs', ['-v', '-u', '-k', 'all'], opts('rebuilding the initramfs with the image\'s update-initramfs'));
  else await chroot.run('dracut', ['--regenerate-all', '--force'], opts('rebuilding the initramfs with the image\'s dracut'));
  return kernels;
}

/**
 * The resume device an initramfs-tools initramfs was built with (RESUME= in its conf/conf.d),
 * read by unpacking it with the system's own unmkinitramfs; undefined when it has none. The
 * initramfs is a path inside the system.
 */
export async function initramfsResume(chroot: Chroot, initrd: string, signal?: AbortSignal): Promise<string | undefined> {
  const scratch = await mkdtemp(join(chroot.root, 'run', 'imagepe-initrd-'));
  const inside = `/run/${scratch.split('/').pop()}`;
  try {
    await chroot.run('unmkinitramfs', [initrd, inside], { what: `unpacking ${initrd} to read its resume device`, timeoutMs: 600_000, ...(signal ? { signal } : {}) });
    // With early microcode the archive unpacks into early/ and main/; without, into the top.
    for (const base of ['main', '.']) {
      const dir = join(scratch, base, 'conf/conf.d');
      const names = (await readdir(dir).catch(() => [] as string[])).sort();
      let resume: string | undefined;
      for (const n of names) {
        for (const a of readAssignments(await readFile(join(dir, n), 'utf8').catch(() => ''))) if (a.name === 'RESUME') resume = valueText(a.parts);
      }
      if (names.length) return resume || undefined;
    }
    return undefined;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
