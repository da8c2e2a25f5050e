import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { SIGNED_CHAIN_FILES, SIGNED_CHAIN_PACKAGES, type SignedChainPart } from './secure-boot.js';

/** Every external program imagepe drives, the Debian package that ships it, and what for. */
export interface ToolInfo {
  name: string;
  debianPackage: string;
  purpose: string;
}

export const TOOLS: readonly ToolInfo[] = [
  { name: 'wimlib-imagex', debianPackage: 'wimtools', purpose: 'WIM capture, apply and the other ImageX verbs' },
  { name: 'ntfsls', debianPackage: 'ntfs-3g', purpose: 'checks whether an NTFS volume is empty before apply' },
  { name: 'mkfs.ntfs', debianPackage: 'ntfs-3g', purpose: 'formats NTFS volumes' },
  { name: 'ntfslabel', debianPackage: 'ntfs-3g', purpose: 'reads and sets NTFS labels and serials' },
  { name: 'ntfscat', debianPackage: 'ntfs-3g', purpose: 'reads files of unmounted NTFS volumes in checks' },
  { name: 'fusermount3', debianPackage: 'fuse3', purpose: 'WIM mount and mountrw (FUSE)' },
  { name: 'getfattr', debianPackage: 'attr', purpose: 'reads extended attributes in tests and checks' },
  { name: 'sfdisk', debianPackage: 'fdisk', purpose: 'writes and reads partition tables' },
  { name: 'sgdisk', debianPackage: 'gdisk', purpose: 'GPT repairs and checks' },
  { name: 'wipefs', debianPackage: 'util-linux', purpose: 'lists and erases filesystem signatures' },
  { name: 'blkid', debianPackage: 'util-linux', purpose: 'reads filesystem labels and UUIDs' },
  { name: 'partx', debianPackage: 'util-linux', purpose: 'tells the kernel about new partitions' },
  { name: 'lsblk', debianPackage: 'util-linux', purpose: 'lists disks and what they hold' },
  { name: 'blockdev', debianPackage: 'util-linux', purpose: 'reads disk and sector sizes' },
  { name: 'findmnt', debianPackage: 'util-linux', purpose: 'finds mounts' },
  { name: 'mkswap', debianPackage: 'util-linux', purpose: 'formats swap partitions' },
  { name: 'mknod', debianPackage: 'coreutils', purpose: 'creates partition nodes where no udev runs' },
  { name: 'chroot', debianPackage: 'coreutils', purpose: "runs a deployed system's own update-initramfs, grub-install and ssh-keygen in it" },
  { name: 'fsck.vfat', debianPackage: 'dosfstools', purpose: 'checks FAT volumes' },
  { name: 'mcopy', debianPackage: 'mtools', purpose: 'reads and writes FAT volumes without mounting' },
  { name: 'losetup', debianPackage: 'mount', purpose: 'attaches disk image files as loop devices' },
  { name: 'mount', debianPackage: 'mount', purpose: 'mounts volumes' },
  { name: 'umount', debianPackage: 'mount', purpose: 'unmounts volumes' },
  { name: 'mkfs.ext4', debianPackage: 'e2fsprogs', purpose: 'formats ext4 volumes' },
  { name: 'mkfs.vfat', debianPackage: 'dosfstools', purpose: 'formats FAT volumes (ESP)' },
  { name: 'mkfs.xfs', debianPackage: 'xfsprogs', purpose: 'formats XFS volumes' },
  { name: 'e2fsck', debianPackage: 'e2fsprogs', purpose: 'checks ext4 volumes before growing them (partition grow)' },
  { name: 'resize2fs', debianPackage: 'e2fsprogs', purpose: 'grows ext4 volumes to fill a larger disk' },
  { name: 'dumpe2fs', debianPackage: 'e2fsprogs', purpose: 'reads the size of ext4 volumes back after growing' },
  { name: 'xfs_growfs', debianPackage: 'xfsprogs', purpose: 'grows XFS volumes to fill a larger disk' },
  { name: 'xfs_db', debianPackage: 'xfsprogs', purpose: 'reads the size of XFS volumes back after growing' },
  { name: 'partclone.ext4', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of ext2/3/4 volumes' },
  { name: 'partclone.xfs', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of XFS volumes' },
  { name: 'partclone.btrfs', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of btrfs volumes' },
  { name: 'partclone.fat', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of FAT volumes' },
  { name: 'partclone.ntfs', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of NTFS volumes' },
  { name: 'partclone.exfat', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of exFAT volumes' },
  { name: 'partclone.f2fs', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of F2FS volumes' },
  { name: 'partclone.hfsplus', debianPackage: 'partclone', purpose: 'imagepe capture-raw: copies the used blocks of HFS+ volumes' },
  { name: 'bmaptool', debianPackage: 'bmap-tools', purpose: 'imagepe capture-raw: writes the block map of a raw disk image' },
  { name: 'xfs_io', debianPackage: 'xfsprogs', purpose: 'imagepe burn: finds the holes of a sparse image (SEEK_DATA/SEEK_HOLE; Node.js has no lseek)' },
  { name: 'mkfs.btrfs', debianPackage: 'btrfs-progs', purpose: 'formats btrfs volumes' },
  { name: 'btrfs', debianPackage: 'btrfs-progs', purpose: 'makes, lists and sets the default of btrfs subvolumes' },
  { name: 'lvm', debianPackage: 'lvm2', purpose: 'makes LVM volume groups and logical volumes (layouts with volumeGroups)' },
  { name: 'xorriso', debianPackage: 'xorriso', purpose: 'writes the hybrid ISO' },
  { name: 'grub-mkimage', debianPackage: 'grub-common', purpose: 'builds GRUB boot images' },
  { name: 'grub-mkstandalone', debianPackage: 'grub-common', purpose: 'builds the removable UEFI loader of a deployed disk' },
  { name: 'grub-install', debianPackage: 'grub2-common', purpose: 'installs GRUB for BIOS on a deployed disk' },
  { name: 'efibootmgr', debianPackage: 'efibootmgr', purpose: 'UEFI boot entries (in the PE)' },
  { name: 'mksquashfs', debianPackage: 'squashfs-tools', purpose: 'packs the PE payload' },
  { name: 'unsquashfs', debianPackage: 'squashfs-tools', purpose: 'reads the PE payload in checks' },
  { name: 'mmd', debianPackage: 'mtools', purpose: 'writes the ESP of a deployed disk without mounting it' },
  { name: 'depmod', debianPackage: 'kmod', purpose: 'indexes the PE kernel modules' },
  { name: 'mformat', debianPackage: 'mtools', purpose: 'builds the ESP image of the ISO' },
  { name: 'zstd', debianPackage: 'zstd', purpose: 'compresses the initramfs and raw disk images (capture-raw); decompresses .zst images as they are written' },
  { name: 'xz', debianPackage: 'xz-utils', purpose: 'decompresses .xz raw disk images as they are written (and goes into the PE for that)' },
  { name: 'cpio', debianPackage: 'cpio', purpose: 'packs the initramfs' },
  { name: 'busybox', debianPackage: 'busybox-static', purpose: 'the shell and tools of the PE' },
  { name: 'modinfo', debianPackage: 'kmod', purpose: 'resolves kernel module dependencies' },
  { name: 'qemu-system-x86_64', debianPackage: 'qemu-system-x86', purpose: 'boots the PE and deployed disks in tests' },
  { name: 'qemu-img', debianPackage: 'qemu-utils', purpose: 'creates virtual disks' },
  { name: 'smbd', debianPackage: 'samba', purpose: 'serves the image share to QEMU guests' },
  { name: 'mount.cifs', debianPackage: 'cifs-utils', purpose: 'mounts SMB image shares' },
  { name: 'dnsmasq', debianPackage: 'dnsmasq-base', purpose: 'imagepe serve: proxyDHCP or DHCP and TFTP for network boot' },
  { name: 'nmap', debianPackage: 'nmap', purpose: 'imagepe serve: asks whether another DHCP server answers (broadcast-dhcp-discover) before it runs one' },
  { name: 'ip', debianPackage: 'iproute2', purpose: 'reads interface addresses (imagepe serve, multicast) and runs tests in network namespaces' },
  { name: 'udp-sender', debianPackage: 'udpcast', purpose: 'imagepe serve: sends a pipable WIM to many machines at once by multicast' },
  { name: 'udp-receiver', debianPackage: 'udpcast', purpose: 'receives a multicast image session in the PE, straight into apply' },
];

/** Data files imagepe reads from Debian packages (firmware, signed boot chain): not programs, so looked up by path. */
export interface FileInfo {
  path: string;
  debianPackage: string;
  purpose: string;
}

const SIGNED_CHAIN_PURPOSE: Record<SignedChainPart, string> = {
  shim: 'Secure Boot: the first stage of the ISO, the PXE bundle and deployed disks',
  mokManager: 'Secure Boot: MokManager beside shim',
  grubCd: 'Secure Boot: the signed GRUB of the ISO',
  grubNet: 'Secure Boot: the signed GRUB of the PXE bundle',
  grubDisk: 'Secure Boot: the signed GRUB the PE installs on deployed disks',
};

/**
 * Debian's ovmf (4 MiB flash): the plain build, and the one with Secure Boot and SMM whose vars
 * template has Microsoft's keys enrolled and Secure Boot enforced, as machines leave the factory.
 * The same paths on the host and inside the container runtime's image (the same package).
 */
export const OVMF_4M = {
  plain: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  secureBoot: { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
} as const;

export const FILES: readonly FileInfo[] = [
  ...(Object.keys(SIGNED_CHAIN_FILES) as SignedChainPart[]).map((part) => ({ path: `/${SIGNED_CHAIN_FILES[part]}`, debianPackage: SIGNED_CHAIN_PACKAGES[part], purpose: SIGNED_CHAIN_PURPOSE[part] })),
  { path: OVMF_4M.plain.code, debianPackage: 'ovmf', purpose: 'UEFI firmware for test VMs' },
  { path: OVMF_4M.secureBoot.code, debianPackage: 'ovmf', purpose: 'UEFI firmware with Secure Boot and Microsoft keys (imagepe vm --secure-boot)' },
  { path: OVMF_4M.secureBoot.vars, debianPackage: 'ovmf', purpose: 'its variable store, Secure Boot enforced' },
  { path: '/usr/lib/ipxe/undionly.kpxe', debianPackage: 'ipxe', purpose: 'imagepe serve: iPXE for BIOS PXE clients' },
  { path: '/usr/lib/ipxe/snponly.efi', debianPackage: 'ipxe', purpose: 'imagepe serve: iPXE for UEFI PXE and HTTP boot clients' },
];

/**
 * The environment for mtools: MTOOLS_SKIP_CHECK lets it work on FAT volumes whose geometry or
 * FAT copies another formatter laid out differently from what mtools itself would (its sanity
 * check refuses them otherwise).
 */
export const MTOOLS_ENV: Readonly<Record<string, string>> = { MTOOLS_SKIP_CHECK: '1' };

export function toolInfo(name: string): ToolInfo | undefined {
  return TOOLS.find((t) => t.name === name);
}

/**
 * Root's PATH on Debian includes the sbin directories, an ordinary user's does not; the tools
 * imagepe drives live in both, so they are always searched.
 */
export function searchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dirs.includes(extra)) dirs.push(extra);
  }
  return dirs;
}

/** The absolute path of an executable found on the search path, or undefined. */
export function findTool(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of searchPath(env)) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
