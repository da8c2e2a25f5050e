import { findSignedChain, ImagepeError, MTOOLS_ENV, run, SHIM_SECOND_STAGE, signedChainInstallHint, SIGNED_GRUB_PREFIX, type RunOptions } from '../../core/index.js';

/** The signed files a deployed disk gets, and whose they are. */
export interface SignedChain {
  shim: string;
  /** Debian's signed GRUB for disks (grubx64.efi.signed). */
  grub: string;
  mokManager?: string;
  /** The deployed image's own packages, or the PE's (this system's). */
  from: 'image' | 'pe';
}

/**
 * The chain to install on a deployed disk: the image's own shim-signed and grub-efi-amd64-signed
 * when it has both (its updates then keep matching what it boots with), else the PE's. undefined
 * when neither has them.
 */
export async function chooseSignedChain(imageRoot: string | undefined, peRoot = '/'): Promise<SignedChain | undefined> {
  for (const [root, from] of [
    [imageRoot, 'image'],
    [peRoot, 'pe'],
  ] as const) {
    if (root === undefined) continue;
    const { found } = await findSignedChain(root, ['shim', 'grubDisk', 'mokManager']);
    if (found.shim && found.grubDisk) return { shim: found.shim, grub: found.grubDisk, ...(found.mokManager ? { mokManager: found.mokManager } : {}), from };
  }
  return undefined;
}

/** NOT_FOUND for a plan that asks for the signed chain where there is none. */
export function noSignedChainError(): ImagepeError {
  return new ImagepeError('NOT_FOUND', 'bootloader.secureBoot is on, but neither the image nor the PE has the signed boot chain (shim-signed, grub-efi-amd64-signed)', {
    hint: `Build the PE on a machine with them (${signedChainInstallHint(['shim', 'grubDisk'])}), install them in the image, or set bootloader.secureBoot: false for a disk that boots only with Secure Boot off.`,
  });
}

/**
 * The config the signed GRUB reads from its built-in prefix (EFI/debian/grub.cfg on the ESP):
 * find the boot filesystem by UUID and hand over to the system's grub.cfg there, as Debian's
 * grub-install writes it. `grubDir` is the GRUB folder as GRUB names it on that filesystem
 * ("/boot/grub", "/grub" for a separate /boot, "/@/boot/grub" on a btrfs subvolume).
 */
export function renderSignedStub(bootUuid: string, grubDir: string): string {
  return [`search.fs_uuid ${bootUuid} root`, `set prefix=($root)'${grubDir.replace(/'/g, '')}'`, 'configfile $prefix/grub.cfg', ''].join('\n');
}

/** Where each file of the chain goes on the ESP (mtools paths). */
export function signedChainLayout(chain: SignedChain): { source: string; target: string }[] {
  return [
    // The removable path: any machine boots it without an NVRAM entry; shim starts grubx64.efi beside it.
    { source: chain.shim, target: '::/EFI/BOOT/BOOTX64.EFI' },
    { source: chain.grub, target: `::/EFI/BOOT/${SHIM_SECOND_STAGE}` },
    ...(chain.mokManager ? [{ source: chain.mokManager, target: '::/EFI/BOOT/mmx64.efi' }] : []),
  ];
}

/**
 * Puts the signed chain on a deployed disk's ESP with mtools (no vfat driver needed): shim as
 * EFI/BOOT/BOOTX64.EFI, the signed GRUB as EFI/BOOT/grubx64.efi, MokManager beside them, and the
 * stub config at the signed GRUB's prefix (and at `otherPrefixes`). No NVRAM entry: the disk
 * boots on any machine.
 * Throws COMMAND_FAILED with mtools' stderr when the ESP cannot be written.
 */
export async function installSignedChain(espNode: string, chain: SignedChain, stub: string, signal?: AbortSignal, otherPrefixes: readonly string[] = []): Promise<void> {
  const opts = (what: string, okExitCodes = [0]): RunOptions => ({ what, timeoutMs: 120_000, env: MTOOLS_ENV, okExitCodes, ...(signal ? { signal } : {}) });
  // Debian's prefix, and the image's own where its signed GRUB was built with another (Ubuntu's is /EFI/ubuntu).
  const prefixes = [...new Set([SIGNED_GRUB_PREFIX.grubDisk, ...otherPrefixes])];
  // mmd fails (exit 1) on a folder that exists already; each is made on its own so the rest still are.
  for (const dir of ['::/EFI', '::/EFI/BOOT', ...prefixes.map((p) => `::${p}`)]) await run('mmd', ['-i', espNode, dir], opts(`creating ${dir.slice(2)} on the ESP`, [0, 1]));
  for (const f of signedChainLayout(chain)) await run('mcopy', ['-o', '-i', espNode, f.source, f.target], opts(`copying ${f.target.slice(3)} to the ESP`));
  for (const prefix of prefixes) await run('mcopy', ['-o', '-i', espNode, '-', `::${prefix}/grub.cfg`], { ...opts(`writing ${prefix.slice(1)}/grub.cfg on the ESP`), input: stub });
}
