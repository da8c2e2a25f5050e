import { ImagepeError } from './errors.js';
import { run } from './run.js';

/**
 * The Debian packages imagepe needs, by what they are for. `core` is what an installed imagepe
 * uses at run time (every tool in TOOLS and file in FILES comes from one of these, which a unit
 * test keeps true); `tests` and `container` are only for running imagepe's own tests.
 */
export const PACKAGE_GROUPS = {
  core: [
    // imaging
    'wimtools', 'ntfs-3g', 'fuse3', 'attr', 'acl',
    // partition
    'util-linux', 'mount', 'coreutils', 'fdisk', 'gdisk', 'dosfstools', 'e2fsprogs', 'xfsprogs', 'btrfs-progs', 'lvm2',
    // raw disk images: used blocks only (capture-raw), their block maps
    'partclone', 'bmap-tools',
    // builder and ISO: the PE's kernel, busybox and the disk tools it harvests, GRUB for both firmwares
    'linux-image-amd64', 'busybox-static', 'xorriso', 'grub-pc-bin', 'grub-efi-amd64-bin', 'grub-common', 'grub2-common', 'efibootmgr',
    'squashfs-tools', 'mtools', 'zstd', 'xz-utils', 'cpio', 'kmod',
    // Secure Boot: Debian's signed shim and GRUB for the ISO, the PXE bundle and deployed disks
    'shim-signed', 'shim-helpers-amd64-signed', 'grub-efi-amd64-signed',
    // imagepe vm and the deploy share
    'qemu-system-x86', 'qemu-utils', 'ovmf', 'samba', 'cifs-utils',
    // imagepe serve: DHCP/proxyDHCP and TFTP, iPXE's boot loaders, multicast, the DHCP probe
    'dnsmasq-base', 'ipxe', 'udpcast', 'nmap', 'iproute2',
  ],
  tests: [
    // the real Debian 12 reference the end-to-end tests capture and deploy
    'debootstrap',
    // a self-signed certificate for the https refusal
    'openssl',
    // a TFTP and HTTP client in a network namespace
    'curl',
    // GNU time: the peak memory of the wimlib-imagex the agent runs (bench)
    'time',
  ],
  // QEMU through testcontainers: a Docker engine; QEMU, OVMF and Samba come from the image it builds
  container: ['docker.io'],
} as const satisfies Record<string, readonly string[]>;

export type PackageGroup = keyof typeof PACKAGE_GROUPS;

/** The packages of the named groups, each once, in the groups' order. */
export function packagesOf(groups: readonly PackageGroup[]): string[] {
  return [...new Set(groups.flatMap((g) => PACKAGE_GROUPS[g]))];
}

/**
 * Which of `packages` dpkg does not have installed ("install ok installed"). Reads dpkg's
 * database with one `dpkg-query` call; a package dpkg has never heard of counts as missing.
 * Throws TOOL_MISSING when dpkg-query itself is missing (not a Debian system).
 */
export async function missingPackages(packages: readonly string[], signal?: AbortSignal): Promise<string[]> {
  if (packages.length === 0) return [];
  // dpkg-query exits 1 when it knows some of the names not at all, and still lists the others.
  const r = await run('dpkg-query', ['-W', '-f=${Package}\t${Status}\n', ...packages], { okExitCodes: [0, 1], what: 'reading which Debian packages are installed', timeoutMs: 60_000, ...(signal ? { signal } : {}) });
  return missingFromStatus(packages, r.stdout);
}

/** The names in `packages` that dpkg-query's `${Package}\t${Status}` lines do not show installed (pure). */
export function missingFromStatus(packages: readonly string[], status: string): string[] {
  const installed = new Set<string>();
  for (const line of status.split('\n')) {
    const [name, state] = line.split('\t');
    // Multi-arch packages print as name:arch with some formats; the bare name is what we asked.
    if (name && state === 'install ok installed') installed.add(name.split(':')[0]!);
  }
  return packages.filter((p) => !installed.has(p));
}

export interface InstallResult {
  /** Packages that were missing and were installed by this call. */
  installed: string[];
  /** Packages that were already there. */
  present: string[];
}

/**
 * Installs the missing ones of `packages` with apt-get (after `apt-get update`), as root,
 * non-interactively and without recommended packages. Idempotent: with nothing missing it runs
 * no apt at all. Throws REFUSED when something is missing and the process is not root, and
 * COMMAND_FAILED with apt's stderr tail when apt fails.
 */
export async function installPackages(packages: readonly string[], options: { signal?: AbortSignal; onStep?: (what: string) => void } = {}): Promise<InstallResult> {
  const { signal, onStep } = options;
  const missing = await missingPackages(packages, signal);
  const present = packages.filter((p) => !missing.includes(p));
  if (missing.length === 0) return { installed: [], present };
  if (process.getuid?.() !== 0) {
    throw new ImagepeError('REFUSED', `these Debian packages are missing and installing them needs root: ${missing.join(' ')}`, {
      hint: `Run it again as root (sudo imagepe setup), or install them yourself: apt-get install ${missing.join(' ')}`,
    });
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const common = { env, ...(signal ? { signal } : {}) };
  onStep?.('apt-get update');
  await run('apt-get', ['update', '-qq'], { ...common, what: 'updating the Debian package lists', timeoutMs: 10 * 60_000, idleTimeoutMs: 5 * 60_000, hint: 'Check that the machine reaches its Debian mirror (/etc/apt/sources.list).' });
  onStep?.(`apt-get install ${missing.join(' ')}`);
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    ...common,
    what: `installing ${missing.join(' ')}`,
    timeoutMs: 60 * 60_000,
    idleTimeoutMs: 10 * 60_000,
    hint: 'apt-get says why above; fix the package source or the conflict and run it again.',
  });
  // apt-get can succeed and still leave a package unconfigured (a failed postinst under -qq).
  const still = await missingPackages(missing, signal);
  if (still.length > 0) throw new ImagepeError('COMMAND_FAILED', `apt-get finished but these packages are still not installed: ${still.join(' ')}`, { hint: `Run apt-get install ${still.join(' ')} and read what it says.` });
  return { installed: missing, present };
}
