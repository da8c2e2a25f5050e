import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ImagepeError } from './errors.js';

/**
 * The parts of the Secure Boot chain Debian signs, where its packages install them (Ubuntu uses
 * the same paths). shim is signed by Microsoft's UEFI CA, so firmware with Microsoft's keys
 * starts it; it then starts only binaries signed with Debian's key (GRUB, the kernel).
 */
export const SIGNED_CHAIN_FILES = {
  /** shim-signed: the first stage, booted as the removable path EFI/BOOT/BOOTX64.EFI. */
  shim: 'usr/lib/shim/shimx64.efi.signed',
  /** shim-helpers-amd64-signed: MokManager, which shim starts to enroll a key when a signature is refused. */
  mokManager: 'usr/lib/shim/mmx64.efi.signed',
  /** grub-efi-amd64-signed: GRUB for disks; reads /EFI/debian/grub.cfg on the ESP it was loaded from. */
  grubDisk: 'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed',
  /** GRUB for CDs: /boot/grub/grub.cfg on its own device, else on the device holding /.disk/info. */
  grubCd: 'usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed',
  /** GRUB for the network: /grub/grub.cfg on the TFTP server it was loaded from. */
  grubNet: 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
} as const;

export type SignedChainPart = keyof typeof SIGNED_CHAIN_FILES;

/** The Debian package of each part, for the messages that ask for it. */
export const SIGNED_CHAIN_PACKAGES: Record<SignedChainPart, string> = {
  shim: 'shim-signed',
  mokManager: 'shim-helpers-amd64-signed',
  grubDisk: 'grub-efi-amd64-signed',
  grubCd: 'grub-efi-amd64-signed',
  grubNet: 'grub-efi-amd64-signed',
};

/**
 * The configuration prefix built into each signed GRUB image (`grub-mkimage -p` in Debian's
 * grub-efi-amd64-signed build, read from the images' own bytes). A signed GRUB cannot be given
 * another config or load modules from disk, so whoever installs one puts grub.cfg where its
 * prefix says: on the device GRUB was loaded from.
 */
export const SIGNED_GRUB_PREFIX = { grubDisk: '/EFI/debian', grubCd: '/boot/grub', grubNet: '/grub' } as const;

/** The name shim starts after itself, looked up in shim's own folder (or TFTP directory). */
export const SHIM_SECOND_STAGE = 'grubx64.efi';

/**
 * Finds the signed chain's files under `root` ("/" for this machine, a mounted image's root
 * for the image's own). Returns the absolute paths found and the parts that are missing.
 */
export async function findSignedChain(root: string, parts: readonly SignedChainPart[]): Promise<{ found: Partial<Record<SignedChainPart, string>>; missing: SignedChainPart[] }> {
  const found: Partial<Record<SignedChainPart, string>> = {};
  const missing: SignedChainPart[] = [];
  for (const part of parts) {
    const path = join(root, SIGNED_CHAIN_FILES[part]);
    if ((await stat(path).catch(() => undefined))?.isFile()) found[part] = path;
    else missing.push(part);
  }
  return { found, missing };
}

/** The apt-get line that installs the missing parts. */
export function signedChainInstallHint(missing: readonly SignedChainPart[]): string {
  return `apt-get install ${[...new Set(missing.map((m) => SIGNED_CHAIN_PACKAGES[m]))].join(' ')}`;
}

/**
 * The size in bytes of a PE/COFF image's certificate table (its Authenticode signatures), 0 when
 * it has none. The table is data directory 4 of the optional header (PE/COFF specification,
 * "The Attribute Certificate Table"); its VirtualAddress is a file offset. Says nothing about
 * whose signature it is: only that firmware or shim has something to check.
 *
 * Throws INVALID_INPUT when the bytes are not a PE image (an x86 Linux kernel is one, for its
 * EFI stub).
 */
export function peSignatureBytes(header: Buffer): number {
  const bad = (why: string) => new ImagepeError('INVALID_INPUT', `not a PE/COFF image: ${why}`);
  if (header.length < 0x40 || header.readUInt16LE(0) !== 0x5a4d) throw bad('no MZ header');
  const pe = header.readUInt32LE(0x3c);
  if (pe + 24 + 2 > header.length || header.readUInt32LE(pe) !== 0x00004550) throw bad('no PE signature');
  const optional = pe + 24;
  const magic = header.readUInt16LE(optional);
  const directories = magic === 0x20b ? optional + 112 : magic === 0x10b ? optional + 96 : undefined;
  if (directories === undefined) throw bad(`optional header magic 0x${magic.toString(16)}`);
  const count = header.readUInt32LE(directories - 4);
  if (count <= 4) return 0;
  if (directories + 5 * 8 > header.length) throw bad('header cut short');
  return header.readUInt32LE(directories + 4 * 8 + 4);
}

/** peSignatureBytes of a file, reading only its headers. */
export async function fileSignatureBytes(path: string): Promise<number> {
  const fd = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fd.read(buf, 0, buf.length, 0);
    return peSignatureBytes(buf.subarray(0, bytesRead));
  } finally {
    await fd.close();
  }
}
