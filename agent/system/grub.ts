import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { MTOOLS_ENV, run, type RunOptions } from '../../core/index.js';
import { chooseSignedChain, installSignedChain, noSignedChainError, renderSignedStub, type GrubResult, type SignedChain } from '../bootloader/index.js';
import type { Chroot, DiskNames } from './chroot.js';
import { systemHas } from './chroot.js';
import { renderValue } from './shell.js';

/** The GRUB tooling a system has installed, found by looking at its files. */
export interface ImageGrub {
  /** grub-install (Debian, Ubuntu) or grub2-install (Fedora, openSUSE). */
  install: string;
  /** update-grub, or grub-mkconfig with its output file. */
  mkconfig: { command: string; args: string[] };
  /** GRUB's directory on the boot filesystem: /boot/grub or /boot/grub2. */
  grubDir: string;
  /** The GRUB platforms whose modules it has: i386-pc for BIOS, x86_64-efi for UEFI. */
  bios: boolean;
  uefi: boolean;
}

/** The system's own GRUB, or undefined when it has no grub-install with a way to write grub.cfg. */
export async function findImageGrub(root: string): Promise<ImageGrub | undefined> {
  for (const [install, mkconfig, grubDir, lib] of [
    ['grub-install', 'grub-mkconfig', '/boot/grub', '/usr/lib/grub'],
    ['grub2-install', 'grub2-mkconfig', '/boot/grub2', '/usr/lib/grub'],
  ] as const) {
    const has = async (p: string) => systemHas(root, p);
    const installPath = (await has(`usr/sbin/${install}`)) ? install : undefined;
    if (!installPath) continue;
    const mk = (await has('usr/sbin/update-grub')) && install === 'grub-install' ? { command: 'update-grub', args: [] } : (await has(`usr/sbin/${mkconfig}`)) ? { command: mkconfig, args: ['-o', `${grubDir}/grub.cfg`] } : undefined;
    if (!mk) continue;
    return { install, mkconfig: mk, grubDir, bios: await has(`${lib.slice(1)}/i386-pc/modinfo.sh`), uefi: await has(`${lib.slice(1)}/x86_64-efi/modinfo.sh`) };
  }
  return undefined;
}

export interface ImageGrubTarget {
  chroot: Chroot;
  grub: ImageGrub;
  firmware: 'bios' | 'uefi' | 'both';
  /** The whole disk, as /dev names it (the chroot sees the same /dev). */
  device: string;
  espNode?: string | undefined;
  /** The filesystem UUID of the filesystem holding /boot, and whether /boot is a directory of the root ("/boot") or its own filesystem (""). */
  bootUuid: string;
  bootPrefix: '/boot' | '';
  /** btrfs: the subvolume that is mounted as that filesystem (subvol=@); GRUB names paths from the top level, so /@/boot. */
  bootSubvolume?: string | undefined;
  /** The EFI folder name grub-install uses: the system's ID (debian, ubuntu, fedora). */
  bootloaderId: string;
  /** Arguments the plan adds to every kernel command line, kept in /etc/default/grub.d so update-grub keeps them. */
  kernelArgs: string;
  /** The disk's partitions and their names, for /dev/disk links grub-mkconfig looks for. */
  diskNames: readonly DiskNames[];
  /** UEFI: boot through shim and Debian's signed GRUB (the image's packages when it has them, else the PE's). */
  secureBoot: boolean;
  signal?: AbortSignal | undefined;
  warn(text: string): void;
}

// A drop-in update-grub reads after /etc/default/grub, so kernel updates keep the plan's arguments.
const KERNEL_ARGS_DROPIN = '/etc/default/grub.d/90-imagepe.cfg';

/**
 * Makes the deployed disk boot with the system's own GRUB, as its installer would: the
 * system's grub-install for BIOS (core image in the bios-boot or MBR gap) and for UEFI (into
 * EFI/<id>/ and the removable path EFI/BOOT/BOOTX64.EFI, no NVRAM entry, so any machine boots
 * it), then its own update-grub or grub-mkconfig, whose grub.cfg names the new filesystems by
 * what they are now. Kernel updates on the deployed system then work as on an installed one.
 *
 * Where the ESP cannot be mounted (a host kernel without vfat), the UEFI loader is made by the
 * system's own grub-mkimage with the prefix grub-install would give it, its modules copied to
 * the boot filesystem as grub-install copies them, and written to the ESP with mtools.
 *
 * Throws COMMAND_FAILED with the tool's stderr tail when one of the system's tools fails.
 */
export async function installImageGrub(t: ImageGrubTarget): Promise<GrubResult> {
  const opts = (what: string, timeoutMs = 600_000): RunOptions => ({ what, timeoutMs, ...(t.signal ? { signal: t.signal } : {}) });
  const root = t.chroot.root;
  if (t.kernelArgs.trim()) {
    await mkdir(join(root, 'etc/default/grub.d'), { recursive: true });
    await writeFile(join(root, KERNEL_ARGS_DROPIN), `# Written by imagepe deploy: the plan's bootloader.kernelArgs.\nGRUB_CMDLINE_LINUX=${renderValue([{ kind: 'expansion', text: '$GRUB_CMDLINE_LINUX' }, { kind: 'literal', text: ` ${t.kernelArgs.trim()}` }])}\n`);
  }
  const result: GrubResult = { grubCfg: posix.join(t.bootPrefix || '/', `${t.grub.grubDir.slice('/boot/'.length)}/grub.cfg`), kernel: '', bios: false, root: '' };
  if (t.firmware !== 'uefi') {
    if (!t.grub.bios) t.warn(`the image's GRUB has no BIOS platform (i386-pc); BIOS boot is not installed`);
    else {
      await t.chroot.run(t.grub.install, ['--target=i386-pc', t.device], opts(`installing the image's GRUB for BIOS on ${t.device}`));
      result.bios = true;
    }
  }
  if (t.firmware !== 'bios') {
    if (!t.espNode) throw new Error('UEFI boot needs the ESP');
    if (!t.grub.uefi) t.warn(`the image's GRUB has no UEFI platform (x86_64-efi); UEFI boot is not installed`);
    else {
      const signed = await installEfi(t, opts);
      result.efiBinary = '/EFI/BOOT/BOOTX64.EFI';
      if (signed) result.signedChain = signed;
    }
  }
  await t.chroot.linkDisks(t.diskNames);
  await t.chroot.run(t.grub.mkconfig.command, t.grub.mkconfig.args, opts(`writing grub.cfg with the image's ${t.grub.mkconfig.command}`));
  const cfg = await readFile(join(root, t.grub.grubDir, 'grub.cfg'), 'utf8');
  const entry = firstBootEntry(cfg);
  if (entry) {
    result.kernel = entry.kernel;
    if (entry.initrd) result.initrd = entry.initrd;
    result.root = entry.root ?? '';
  }
  return result;
}

/** The GRUB folder as GRUB names it on the boot filesystem (its prefix path). */
function grubDirOnFs(t: ImageGrubTarget): string {
  return posix.join('/', t.bootSubvolume ?? '', t.bootPrefix || '/', t.grub.grubDir.slice('/boot/'.length));
}

/**
 * UEFI with the image's grub-install; returns whose signed chain boots the disk, or undefined for
 * an unsigned GRUB. With `secureBoot` an image that has shim-signed and grub-efi-amd64-signed
 * gets them from its own grub-install (--uefi-secure-boot, as Debian's installer does); one
 * without them gets its unsigned GRUB, then the PE's shim and signed GRUB at the removable path,
 * handing over to the image's grub.cfg.
 */
async function installEfi(t: ImageGrubTarget, opts: (what: string, timeoutMs?: number) => RunOptions): Promise<'image' | 'pe' | undefined> {
  const root = t.chroot.root;
  const efiDir = join(root, 'boot/efi');
  await mkdir(efiDir, { recursive: true });
  const imageChain = t.secureBoot ? await chooseSignedChain(root, undefined) : undefined;
  const mounted = await run('mount', ['-t', 'vfat', t.espNode!, efiDir], { ...opts(`mounting the ESP ${t.espNode} in the image`), okExitCodes: [0, 32] });
  let own = false;
  if (mounted.exitCode === 0) {
    try {
      const help = (await t.chroot.run(t.grub.install, ['--help'], { ...opts('asking grub-install what it supports'), okExitCodes: [0, 64] })).stdout;
      // Debian's grub-install writes the removable path too when asked; elsewhere a second run does.
      const extra = help.includes('--force-extra-removable') ? ['--force-extra-removable'] : [];
      // Debian's grub-install picks the signed chain by itself when the image has it installed; say which.
      own = imageChain !== undefined && help.includes('--uefi-secure-boot');
      const chainFlag = own ? ['--uefi-secure-boot'] : help.includes('--no-uefi-secure-boot') ? ['--no-uefi-secure-boot'] : [];
      const base = ['--target=x86_64-efi', '--efi-directory=/boot/efi', `--bootloader-id=${t.bootloaderId}`, '--no-nvram', ...chainFlag];
      await t.chroot.run(t.grub.install, [...base, ...extra], opts(`installing the image's GRUB for UEFI on ${t.espNode}`));
      if (extra.length === 0) await t.chroot.run(t.grub.install, [...base, '--removable'], opts(`installing the image's GRUB at the removable path on ${t.espNode}`));
    } finally {
      await run('umount', [efiDir], { what: `unmounting the ESP from ${efiDir}`, timeoutMs: 120_000 });
    }
  } else {
    t.warn(`the ESP cannot be mounted here (${mounted.stderr.trim().split('\n')[0]?.replace(/^mount: [^:]*: /, '') || 'mount failed'}); the image's grub-mkimage makes its UEFI loader, as grub-install would`);
    await mkimageEfi(t, opts);
  }
  if (!t.secureBoot) return undefined;
  if (own) return 'image';
  // The image's own chain when grub-install could not place it (no ESP mount here), else the PE's.
  const chain: SignedChain | undefined = imageChain ?? (await chooseSignedChain(undefined));
  if (!chain) throw noSignedChainError();
  await installSignedChain(t.espNode!, chain, renderSignedStub(t.bootUuid, grubDirOnFs(t)), t.signal, chain.from === 'image' ? [`/EFI/${t.bootloaderId}`] : []);
  return chain.from;
}

/** What grub-install does for x86_64-efi, done with the system's grub-mkimage and mtools. */
async function mkimageEfi(t: ImageGrubTarget, opts: (what: string, timeoutMs?: number) => RunOptions): Promise<void> {
  const root = t.chroot.root;
  const grubDir = grubDirOnFs(t);
  const lib = 'usr/lib/grub/x86_64-efi';
  const modules = join(root, t.grub.grubDir, 'x86_64-efi');
  await mkdir(modules, { recursive: true });
  for (const f of await readdir(join(root, lib))) {
    if (/\.(mod|lst)$/.test(f) || f === 'modinfo.sh') await cp(join(root, lib, f), join(modules, f));
  }
  const work = '/run/imagepe-grub';
  await mkdir(join(root, work), { recursive: true });
  await writeFile(join(root, work, 'load.cfg'), `search.fs_uuid ${t.bootUuid} root\nset prefix=($root)'${grubDir}'\n`);
  const mkimage = t.grub.install.replace('install', 'mkimage');
  await t.chroot.run(
    mkimage,
    ['-O', 'x86_64-efi', '-o', `${work}/grubx64.efi`, '-c', `${work}/load.cfg`, '-p', grubDir, 'part_gpt', 'part_msdos', 'fat', 'ext2', 'xfs', 'btrfs', 'search_fs_uuid'],
    opts(`making the UEFI loader with the image's ${mkimage}`),
  );
  const efi = join(root, work, 'grubx64.efi');
  const m = (args: string[], what: string, okExitCodes = [0]) => run(args[0]!, args.slice(1), { ...opts(what), env: MTOOLS_ENV, okExitCodes });
  for (const d of ['::/EFI', `::/EFI/${t.bootloaderId}`, '::/EFI/BOOT']) await m(['mmd', '-i', t.espNode!, d], `creating ${d.slice(3)} on the ESP`, [0, 1]);
  await m(['mcopy', '-o', '-i', t.espNode!, efi, `::/EFI/${t.bootloaderId}/grubx64.efi`], `copying grubx64.efi to EFI/${t.bootloaderId}`);
  await m(['mcopy', '-o', '-i', t.espNode!, efi, '::/EFI/BOOT/BOOTX64.EFI'], 'copying BOOTX64.EFI to EFI/BOOT');
}

/** The first menu entry of a grub.cfg: its kernel and initrd paths (on the boot filesystem) and its root= argument. */
export function firstBootEntry(cfg: string): { kernel: string; initrd?: string; root?: string } | undefined {
  const entries = bootEntries(cfg);
  return entries[0];
}

/** Every `linux` line of a grub.cfg with the `initrd` that follows it, in order. */
export function bootEntries(cfg: string): { kernel: string; args: string[]; initrd?: string; root?: string; resume?: string; line: number }[] {
  const out: { kernel: string; args: string[]; initrd?: string; root?: string; resume?: string; line: number }[] = [];
  cfg.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const linux = /^(?:linux|linux16|linuxefi)\s+(\S+)(.*)$/.exec(line);
    if (linux) {
      const args = linux[2]!.trim().split(/\s+/).filter(Boolean);
      const entry: (typeof out)[number] = { kernel: linux[1]!, args, line: i + 1 };
      const root = args.find((a) => a.startsWith('root='));
      const resume = args.find((a) => a.startsWith('resume='));
      if (root) entry.root = root.slice(5);
      if (resume) entry.resume = resume.slice(7);
      out.push(entry);
      return;
    }
    const initrd = /^(?:initrd|initrd16|initrdefi)\s+(.+)$/.exec(line);
    const last = out[out.length - 1];
    // update-grub lists microcode images before the initramfs; the last one is the system's.
    if (initrd && last && last.initrd === undefined) last.initrd = initrd[1]!.trim().split(/\s+/).pop()!;
  });
  return out;
}
