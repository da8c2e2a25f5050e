import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathKind, run, withFileLock } from '../core/index.js';
import { projectRoot } from '../builder/index.js';

/**
 * A real Debian 12 system from Debian's own packages, made by debootstrap the way an installed
 * system has them: systemd as init, openssh-server, the distribution kernel with initramfs-tools,
 * and GRUB for BIOS and UEFI (the -bin packages and grub2-common's update-grub, so one tree
 * boots either way), with shim-signed and grub-efi-amd64-signed for UEFI with Secure Boot. Built once and cached as a tarball keyed by what goes into it.
 */
export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEBIAN_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'udev',
  'dbus',
  'kmod',
  'openssh-server',
  'linux-image-amd64',
  'initramfs-tools',
  'zstd',
  'grub-pc-bin',
  'grub-efi-amd64-bin',
  'grub2-common',
  // What Debian's installer adds on a UEFI machine: the Secure Boot chain its grub-install installs.
  'shim-signed',
  'grub-efi-amd64-signed',
  'dosfstools',
  'e2fsprogs',
  // As the installer adds it for an LVM layout: its initramfs hook activates a root on LVM.
  'lvm2',
] as const;

// Bumped when what this file does to the tree after debootstrap changes.
const RECIPE = 2;

// DHCP on every wired NIC by systemd-networkd (part of Debian's systemd package). The installer's
// ifupdown stanza names one interface (ens3), which the reference's copies on other machines do
// not have; a match on the kind of link holds on any of them. The network lets a deployed system
// report its first boot to the deployment server.
const WIRED_NETWORK = '# Written by the imagepe test reference: DHCP on every wired interface.\n[Match]\nType=ether\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n';

function cacheDir(): string {
  return join(projectRoot(), '.cache', 'debian-reference');
}

/** The cache key: suite, mirror, packages and recipe; a different list is a different tree. */
export function debianTreeKey(): string {
  return createHash('sha256').update(JSON.stringify({ suite: DEBIAN_SUITE, mirror: DEBIAN_MIRROR, packages: [...DEBIAN_PACKAGES].sort(), recipe: RECIPE })).digest('hex').slice(0, 16);
}

/**
 * The path of a zstd tarball of the Debian tree (numeric owners, modes, xattrs, ACLs), built with
 * debootstrap on the first call and cached in .cache/debian-reference/. Concurrent callers (jest
 * workers) wait for one build under a lock file. About 45 s to build from Debian's mirror.
 */
export async function debianTreeTarball(): Promise<string> {
  const dir = cacheDir();
  const tarball = join(dir, `debian-${DEBIAN_SUITE}-${debianTreeKey()}.tar.zst`);
  if ((await pathKind(tarball)) === 'file') return tarball;
  await mkdir(dir, { recursive: true });
  return withFileLock(`${tarball}.lock`, async () => {
    if ((await pathKind(tarball)) === 'file') return tarball;
    const work = join(dir, `build-${process.pid}`);
    await rm(work, { recursive: true, force: true });
    try {
      await run('debootstrap', ['--variant=minbase', `--include=${DEBIAN_PACKAGES.join(',')}`, '--components=main', DEBIAN_SUITE, work, DEBIAN_MIRROR], {
        what: 'building the Debian 12 reference with debootstrap',
        timeoutMs: 20 * 60_000,
        idleTimeoutMs: 5 * 60_000,
      });
      await writeFile(join(work, 'etc/systemd/network/50-wired.network'), WIRED_NETWORK);
      await run('chroot', [work, 'systemctl', 'enable', 'systemd-networkd.service'], { what: 'enabling systemd-networkd in the Debian reference', timeoutMs: 60_000 });
      // What debootstrap leaves that an installed system does not have.
      await rm(join(work, 'debootstrap'), { recursive: true, force: true });
      await rm(join(work, 'var/cache/apt/archives'), { recursive: true, force: true });
      await mkdir(join(work, 'var/cache/apt/archives/partial'), { recursive: true });
      const temp = `${tarball}.${process.pid}.partial`;
      await run('tar', ['--numeric-owner', '--xattrs', '--acls', '--zstd', '-C', work, '-cpf', temp, '.'], { what: 'packing the Debian reference', timeoutMs: 10 * 60_000 });
      await rename(temp, tarball);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return tarball;
  });
}

/** Unpacks the cached Debian tree into `root` (an empty directory, or a fresh filesystem's mount point). */
export async function unpackDebianTree(root: string): Promise<void> {
  const tarball = await debianTreeTarball();
  await run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls', '--zstd', '-C', root, '-xpf', tarball], { what: `unpacking the Debian reference into ${root}`, timeoutMs: 10 * 60_000 });
}
