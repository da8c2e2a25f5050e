import { mkdir, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pathKind, run, unmount, type RunOptions, type RunResult } from '../../core/index.js';

/** The deployed system's own tools, run inside it. */
export interface Chroot {
  /** The system's root, as mounted here. */
  readonly root: string;
  /** Runs `command` (found on the system's PATH, not ours) inside the system. */
  run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult>;
  /**
   * Makes /dev/disk/by-uuid (and by-partuuid, by-label, by-partlabel) name these partitions, as
   * udev would: without udev (the PE, some hosts) they are missing, and grub-mkconfig then writes
   * root=/dev/sda3 instead of root=UUID=. Links it adds are removed again on release.
   */
  linkDisks(volumes: readonly DiskNames[]): Promise<void>;
  /** Undoes the mounts, most recent first. Strict: the first failure throws; lenient: lazy unmounts, and `warn` says so. */
  release(strict: boolean, warn: (text: string) => void): Promise<void>;
}

/** A partition's node and the names udev would link to it. */
export interface DiskNames {
  node: string;
  uuid?: string | undefined;
  partuuid?: string | undefined;
  label?: string | undefined;
  partlabel?: string | undefined;
}

// What the image's tools need from a running kernel: device nodes (grub-probe, grub-install
// find the disk by them), /proc (mount table), /sys (block devices, firmware), a private /run.
const MOUNTS: readonly { target: string; args: (host: string) => string[] }[] = [
  { target: 'dev', args: () => ['--bind', '/dev'] },
  { target: 'proc', args: () => ['-t', 'proc', 'proc'] },
  { target: 'sys', args: () => ['-t', 'sysfs', 'sysfs'] },
  { target: 'run', args: () => ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs'] },
];
const EFIVARS = 'sys/firmware/efi/efivars';

// The environment the system's tools see: theirs, not the PE's or the host's.
const CHROOT_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  DEBIAN_FRONTEND: 'noninteractive',
  LANG: 'C.UTF-8',
};

/**
 * Mounts what a chroot into the deployed system at `root` needs (/dev bound, /proc, /sys, a tmpfs
 * /run, and efivarfs when this machine booted by UEFI, so grub-install can see the firmware's
 * variables) and returns a way to run the system's own tools in it. The caller must release it
 * on every path; a mount that fails undoes the ones before it and throws.
 */
export async function enterChroot(root: string, options: { signal?: AbortSignal | undefined } = {}): Promise<Chroot> {
  const mounted: string[] = [];
  const links: string[] = [];
  const opts = (what: string): RunOptions => ({ what, timeoutMs: 60_000, ...(options.signal ? { signal: options.signal } : {}) });
  const release = async (strict: boolean, warn: (text: string) => void) => {
    while (links.length > 0) await unlink(links.pop()!).catch(() => undefined);
    while (mounted.length > 0) {
      await unmount(mounted[mounted.length - 1]!, { strict, warn, timeoutMs: 120_000 });
      mounted.pop();
    }
  };
  try {
    for (const m of MOUNTS) {
      const dir = join(root, m.target);
      await mkdir(dir, { recursive: true });
      await run('mount', [...m.args('/'), dir], opts(`mounting /${m.target} into ${root}`));
      mounted.push(dir);
    }
    if ((await pathKind(`/${EFIVARS}`)) === 'directory' && (await pathKind(join(root, EFIVARS))) === 'directory') {
      await run('mount', ['-t', 'efivarfs', 'efivarfs', join(root, EFIVARS)], opts(`mounting efivarfs into ${root}`));
      mounted.push(join(root, EFIVARS));
    }
  } catch (e) {
    await release(false, () => undefined);
    throw e;
  }
  return {
    root,
    run: (command, args, o) => run('chroot', [root, command, ...args], { ...o, env: { ...CHROOT_ENV, ...o.env } }),
    linkDisks: async (volumes) => {
      for (const v of volumes) {
        for (const [dir, name] of [['by-uuid', v.uuid], ['by-partuuid', v.partuuid?.toLowerCase()], ['by-label', v.label], ['by-partlabel', v.partlabel]] as const) {
          if (!name) continue;
          const link = join('/dev/disk', dir, udevEscape(name));
          if ((await pathKind(link)) !== 'missing') continue;
          await mkdir(join('/dev/disk', dir), { recursive: true });
          await symlink(v.node, link);
          links.push(link);
        }
      }
    },
    release,
  };
}

/** udev's escaping of a name in /dev/disk/by-label: bytes outside a safe set as \xHH. */
function udevEscape(name: string): string {
  return name.replace(/[^A-Za-z0-9#+\-.:=@_]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Whether the system at `root` has `path` (a tool, a module directory), links resolved inside it where they are relative. */
export async function systemHas(root: string, path: string): Promise<boolean> {
  return (await pathKind(join(root, path))) !== 'missing';
}
