import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { ImagepeError, MTOOLS_ENV, run, type RunOptions } from '../../core/index.js';
import { findKernel, kernelArgsFromDefaultGrub, renderEmbeddedCfg, renderGrubCfg } from './grubcfg.js';
import { chooseSignedChain, installSignedChain, noSignedChainError, renderSignedStub } from './signed.js';

export * from './grubcfg.js';
export * from './signed.js';

export interface GrubTarget {
  firmware: 'bios' | 'uefi' | 'both';
  /** The whole disk's block device (the loop device for an image file). */
  device: string;
  /** The ESP's partition node; needed for uefi. */
  espNode?: string;
  /** Where the filesystem that holds /boot's files is mounted on this machine. */
  bootMount: string;
  /** "/boot" when /boot is a directory of the root filesystem, "" when it is its own partition. */
  bootPrefix: '/boot' | '';
  bootUuid: string;
  bootFsType: string;
  rootUuid: string;
  /** The root partition's PARTUUID, used when the image has no initrd. */
  rootPartuuid: string | undefined;
  /** Where the root filesystem is mounted (to read /etc/default/grub). */
  rootMount: string;
  kernelArgs: string;
  title: string;
  /** UEFI: shim and Debian's signed GRUB (the image's own when it has them, else the PE's) instead of an unsigned GRUB. */
  secureBoot: boolean;
  /** The system's ID (os-release ID): the image's own signed GRUB reads EFI/<id>/grub.cfg. */
  bootloaderId?: string;
  signal?: AbortSignal;
}

export interface GrubResult {
  grubCfg: string;
  kernel: string;
  initrd?: string;
  efiBinary?: string;
  bios: boolean;
  /** What root= says on the kernel command line: UUID=... or PARTUUID=... */
  root: string;
  /** Whose signed chain (shim, signed GRUB) boots the disk under UEFI; absent for an unsigned GRUB. */
  signedChain?: 'image' | 'pe';
}

/**
 * Makes the deployed disk bootable with the PE's own GRUB: grub.cfg for the image's kernel,
 * core.img in the bios-boot gap or MBR gap for BIOS, and for UEFI the removable path
 * EFI/BOOT/BOOTX64.EFI (no NVRAM entry needed, so it boots on any machine): shim with the signed
 * GRUB when `secureBoot` (the kernel must then be signed by Debian for it to start with Secure
 * Boot on), else a standalone GRUB built here. The ESP is written with mtools, which needs no
 * vfat driver in the kernel. Throws NOT_FOUND when secureBoot is asked for and neither the image
 * nor this system has the signed chain.
 */
export async function installGrub(t: GrubTarget): Promise<GrubResult> {
  const runOpts = (what: string, timeoutMs = 120_000): RunOptions => ({ what, timeoutMs, ...(t.signal ? { signal: t.signal } : {}) });
  const bootDirLocal = join(t.bootMount, t.bootPrefix);
  const found = await findKernel(bootDirLocal);
  if (!found) {
    throw new ImagepeError('NOT_FOUND', `the image has no kernel in ${t.bootPrefix || '/'} of its boot filesystem (looked for vmlinuz-*)`, {
      hint: 'Capture a system with its kernel in /boot, or set bootloader.type: none.',
    });
  }
  const fsModule = t.bootFsType === 'xfs' ? 'xfs' : t.bootFsType.startsWith('ext') ? 'ext2' : undefined;
  if (!fsModule) throw new ImagepeError('INVALID_INPUT', `GRUB is set up here for ext4 and xfs boot filesystems, not ${t.bootFsType}`);
  const imageArgs = kernelArgsFromDefaultGrub(await readFile(join(t.rootMount, 'etc/default/grub'), 'utf8').catch(() => ''));
  const grubCfgOnDisk = posix.join(t.bootPrefix || '/', 'grub/grub.cfg');
  const grubDir = join(bootDirLocal, 'grub');
  await mkdir(grubDir, { recursive: true });
  // root=UUID= needs an initramfs to look the UUID up; a kernel booted without one only knows
  // PARTUUID (and then needs its disk and filesystem drivers built in).
  const root = found.initrd || !t.rootPartuuid ? `UUID=${t.rootUuid}` : `PARTUUID=${t.rootPartuuid.toLowerCase()}`;
  const result: GrubResult = { grubCfg: grubCfgOnDisk, kernel: posix.join(t.bootPrefix || '/', found.kernel), bios: false, root };
  if (found.initrd) result.initrd = posix.join(t.bootPrefix || '/', found.initrd);
  await writeFile(
    join(grubDir, 'grub.cfg'),
    renderGrubCfg({
      kernel: result.kernel,
      ...(result.initrd ? { initrd: result.initrd } : {}),
      bootUuid: t.bootUuid,
      root,
      bootFsModule: fsModule,
      title: t.title,
      kernelArgs: [imageArgs, t.kernelArgs].filter(Boolean).join(' '),
    }),
  );

  if (t.firmware === 'bios' || t.firmware === 'both') {
    await run(
      'grub-install',
      ['--target=i386-pc', `--boot-directory=${bootDirLocal}`, `--modules=part_gpt part_msdos ${fsModule} search_fs_uuid`, '--no-floppy', t.device],
      { ...runOpts(`installing GRUB for BIOS on ${t.device}`), hint: 'A GPT disk needs a bios-boot partition for GRUB\'s core image.' },
    );
    result.bios = true;
  }

  if (t.firmware === 'uefi' || t.firmware === 'both') {
    if (!t.espNode) throw new ImagepeError('INVALID_INPUT', 'UEFI boot needs an ESP in the layout');
    if (t.secureBoot) {
      const chain = await chooseSignedChain(t.rootMount);
      if (!chain) throw noSignedChainError();
      await installSignedChain(t.espNode, chain, renderSignedStub(t.bootUuid, posix.dirname(grubCfgOnDisk)), t.signal, chain.from === 'image' && t.bootloaderId ? [`/EFI/${t.bootloaderId}`] : []);
      result.efiBinary = '/EFI/BOOT/BOOTX64.EFI';
      result.signedChain = chain.from;
      return result;
    }
    const scratch = await mkdtemp(join(tmpdir(), 'imagepe-grub-'));
    try {
      const embedded = join(scratch, 'embedded.cfg');
      await writeFile(embedded, renderEmbeddedCfg(t.bootUuid, grubCfgOnDisk));
      const efi = join(scratch, 'BOOTX64.EFI');
      // Standalone: every module rides along in a memdisk, so the grub.cfg's insmods work without
      // an x86_64-efi module directory on the target.
      await run(
        'grub-mkstandalone',
        ['--format=x86_64-efi', `--output=${efi}`, '--locales=', '--fonts=', '--themes=', `--modules=part_gpt part_msdos ${fsModule} fat search_fs_uuid`, `boot/grub/grub.cfg=${embedded}`],
        runOpts('building the UEFI GRUB binary'),
      );
      await run('mmd', ['-i', t.espNode, '::/EFI'], { ...runOpts('creating EFI/ on the ESP'), env: MTOOLS_ENV, okExitCodes: [0, 1] });
      await run('mmd', ['-i', t.espNode, '::/EFI/BOOT'], { ...runOpts('creating EFI/BOOT on the ESP'), env: MTOOLS_ENV, okExitCodes: [0, 1] });
      await run('mcopy', ['-o', '-i', t.espNode, efi, '::/EFI/BOOT/BOOTX64.EFI'], { ...runOpts('copying BOOTX64.EFI to the ESP'), env: MTOOLS_ENV });
      result.efiBinary = '/EFI/BOOT/BOOTX64.EFI';
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  return result;
}

/** Whether a file exists on a FAT volume, read with mtools. */
export async function fatFileExists(node: string, path: string, signal?: AbortSignal): Promise<boolean> {
  const r = await run('mdir', ['-b', '-i', node, `::${path}`], { what: `listing ${path} on ${node}`, timeoutMs: 30_000, env: MTOOLS_ENV, okExitCodes: [0, 1], ...(signal ? { signal } : {}) });
  return r.exitCode === 0 && r.stdout.trim().length > 0;
}
