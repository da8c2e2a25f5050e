import { readdir, readFile, lstat, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { findTool, ImagepeError, run, type EventSink } from '../core/index.js';
import { libraryClosure, peLocation, resolveHostFile } from './closure.js';
import type { FileTree } from './cpio.js';
import type { BuildConfig } from './config.js';
import type { KernelChoice } from './kernel.js';
import { buildModuleIndex, selectModules } from './kmod.js';
import { templatePath } from './paths.js';

/** Programs the agent drives; a build fails without them. */
export const REQUIRED_TOOLS = [
  'sfdisk', 'wipefs', 'blkid', 'partx', 'losetup', 'lsblk', 'blockdev', 'mount', 'umount',
  'mke2fs', 'e2fsck', 'resize2fs', 'tune2fs', 'mkfs.fat', 'fsck.fat',
  'mkntfs', 'ntfs-3g', 'ntfsfix', 'wimlib-imagex', 'mount.cifs',
  'grub-install', 'grub-mkimage', 'grub-mkstandalone', 'grub-probe', 'grub-editenv', 'efibootmgr',
  // The deploy agent writes the ESP of a deployed disk with mtools (no vfat mount needed) and
  // checks NTFS targets with ntfsls.
  'mtools', 'ntfsls',
  // Raw disk images: streamed through their decompressor, and grown to the disk (swap moved).
  'zstd', 'xz', 'mkswap', 'dumpe2fs',
];
/** Names the tools above are also called by: links to the same file. */
export const TOOL_ALIASES: Record<string, string> = {
  mmd: 'mtools', mcopy: 'mtools', mdir: 'mtools', mtype: 'mtools', mformat: 'mtools',
  'mkfs.ext4': 'mke2fs', 'mkfs.vfat': 'mkfs.fat', 'fsck.vfat': 'fsck.fat', 'mkfs.ntfs': 'mkntfs', 'mount.ntfs-3g': 'ntfs-3g', 'mount.ntfs': 'ntfs-3g',
};
/** Useful when present, not needed for the agent's steps. */
export const OPTIONAL_TOOLS = ['sgdisk', 'ntfsresize', 'ntfslabel', 'mkfs.xfs', 'mkfs.btrfs', 'btrfs', 'xfs_growfs', 'xfs_io', 'findmnt', 'kmod', 'lvm', 'udp-receiver', 'qemu-img'];

/** Kernel modules of the PE, by name or module-tree directory; modules.dep adds what they need. */
export const DEFAULT_MODULES = [
  // storage controllers and disks
  'kernel/drivers/ata/', 'kernel/drivers/nvme/', 'kernel/drivers/usb/storage/', 'kernel/drivers/usb/host/', 'kernel/drivers/mmc/host/',
  'virtio_blk', 'virtio_scsi', 'virtio_pci', 'virtio_net', 'virtio_console', 'virtio_balloon', 'virtio_rng',
  'sd_mod', 'sr_mod', 'sg', 'mmc_block', 'nvme', 'ahci', 'uas', 'usb_storage',
  'vmw_pvscsi', 'mpt3sas', 'megaraid_sas', 'hpsa', 'smartpqi', 'aacraid', 'hv_storvsc', 'xen_blkfront',
  'dm_mod', 'md_mod', 'raid1', 'loop',
  // network
  'e1000', 'e1000e', 'igb', 'igc', 'ixgbe', 'i40e', 'ice', 'r8169', 'tg3', 'bnx2', 'bnxt_en', 'atlantic', 'alx', 'atl1c',
  'be2net', 'vmxnet3', 'hv_netvsc', 'xen_netfront', 'pcnet32', '8139cp', '8139too', 'ne2k_pci',
  'r8152', 'cdc_ether', 'cdc_ncm', 'ax88179_178a', 'asix', 'smsc95xx',
  // filesystems
  'ext4', 'vfat', 'nls_cp437', 'nls_ascii', 'nls_iso8859_1', 'nls_utf8', 'isofs', 'udf', 'squashfs', 'overlay', 'fuse', 'cifs', 'nfs', 'nfsv3', 'nfsv4',
  // the crypto SMB3 needs at mount time (not in modules.dep: the kernel asks for algorithms by name)
  'cmac', 'ccm', 'gcm', 'ctr', 'ghash_generic', 'gf128mul', 'aes_generic', 'aesni_intel', 'sha256_generic', 'sha512_generic',
  'hmac', 'md5', 'ecb', 'des_generic', 'libdes', 'crc32c_generic', 'crc32c_intel',
  // keyboard and screen for the shell
  'usbhid', 'hid_generic', 'hid', 'evdev', 'efivarfs',
];

/** Wanted when the kernel has them, with no warning when it does not (Debian 12 builds no ntfs3; xfs and btrfs references are captured and deployed when present). */
export const MODULES_IF_PRESENT = ['ntfs3', 'libarc4', 'xfs', 'btrfs'];

/** Where /init mounts the payload image; the core's links into it resolve from then on. */
export const PAYLOAD_MOUNT = '/run/imagepe/pe';
/** The payload image: on the ISO, and in the PXE initrd's second archive. */
export const PAYLOAD_PATH = 'imagepe/pe.sqfs';

/**
 * Modules /init needs only after the payload is mounted (network, filesystems other than the
 * medium's): they go in the payload. Crypto stays: sd_mod needs crc-t10dif, which asks for
 * the crct10dif algorithm by name when it loads, which keeps the core that GRUB loads small.
 */
export const LATE_MODULES = /^kernel\/(drivers\/net|drivers\/infiniband|fs\/(?!isofs\/|squashfs\/|nls\/)[^/]+|net)\//;

/**
 * The modules the core needs, as PE paths: every module not matched by LATE_MODULES, and what
 * those depend on (sd_mod needs crc-t10dif, whose crypto lives under kernel/crypto).
 */
export function earlyModulePaths(modules: readonly string[], deps: ReadonlyMap<string, readonly string[]>, version: string): Set<string> {
  const early = new Set<string>();
  const add = (m: string) => {
    if (early.has(m)) return;
    early.add(m);
    for (const d of deps.get(m) ?? []) add(d);
  };
  for (const m of modules) if (!LATE_MODULES.test(m)) add(m);
  return new Set([...early].map((m) => `usr/lib/modules/${version}/${m}`));
}

/**
 * Splits the PE into the core initramfs (busybox, /init, storage drivers, config: what finds
 * and mounts the payload) and the payload (every other host file). In the core each payload file
 * is a link into PAYLOAD_MOUNT, so paths stay the same once the payload is mounted.
 */
export function splitPayload(tree: FileTree, earlyModules: ReadonlySet<string>, mountPoint = PAYLOAD_MOUNT): { core: FileTree; payload: FileTree } {
  const core: FileTree = new Map();
  const payload: FileTree = new Map();
  for (const [path, entry] of tree) {
    const inPayload = path.startsWith('usr/lib/modules/') ? /\.ko(\.\w+)?$/.test(path) && !earlyModules.has(path) : path !== 'usr/bin/busybox';
    if (entry.kind === 'file' && inPayload) {
      payload.set(path, entry);
      core.set(path, { kind: 'symlink', target: `${mountPoint}/${path}` });
    } else core.set(path, entry);
  }
  return { core, payload };
}

export interface InitramfsManifest {
  tree: FileTree;
  /** Relative module paths (modules.dep form) to copy; depmod indexes them at build time. */
  modules: string[];
  kernel: KernelChoice;
  /** PE paths of the modules that stay in the core initramfs when there is a payload image. */
  earlyModules: Set<string>;
  /** PE paths of binaries whose debug info and section table are left out (Node.js). */
  strip: string[];
  /** The host's Node.js binary the PE carries (the one that must make the agent's code cache). */
  node: string;
  warnings: string[];
}

/** The bundled agent, its loader and the loader's V8 code cache, side by side in the PE. */
export const AGENT_PATH = 'usr/share/imagepe/agent.cjs';
export const AGENT_LOADER_PATH = 'usr/share/imagepe/agent-loader.cjs';
export const AGENT_CODE_CACHE_PATH = 'usr/share/imagepe/agent.cache';
/** The V8 flags the loader runs with in the PE; the code cache is made with the same (V8 checks them). */
export const AGENT_NODE_FLAGS = ['--hash-seed=1'] as const;

export interface ManifestInputs {
  config: BuildConfig;
  kernel: KernelChoice;
  agentBundle: Buffer;
  buildInfo: Record<string, unknown>;
  /** Host files of the signed boot chain (shim, GRUB for disks) the agent installs on deployed disks when the image has none. */
  signedChain?: readonly string[];
  events?: EventSink;
}

async function hostFileEntry(path: string, mode?: number) {
  const s = await stat(path);
  return { kind: 'file' as const, source: path, size: s.size, mode: mode ?? (s.mode & 0o111 ? 0o755 : 0o644) };
}

/** Adds a host file under its PE location; a symlink chain becomes links to the real file. */
async function addHostFile(tree: FileTree, hostPath: string, what: string): Promise<void> {
  const real = await resolveHostFile(hostPath, what);
  const realLoc = peLocation(real);
  tree.set(realLoc, await hostFileEntry(real));
  const loc = peLocation(hostPath);
  const previous = tree.get(loc);
  // A symlink already there is a busybox applet, which the real tool replaces.
  if (loc !== realLoc && (!previous || previous.kind === 'symlink')) tree.set(loc, { kind: 'symlink', target: posix.relative(posix.dirname(`/${loc}`), `/${realLoc}`) || '.' });
}

async function walkFiles(dir: string, skip: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (skip(name)) continue;
    const p = join(dir, name);
    const s = await lstat(p);
    if (s.isDirectory()) out.push(...(await walkFiles(p, skip)));
    else if (s.isFile()) out.push(p);
  }
  return out;
}

/** The busybox applet links, from the binary's own list (busybox --list-full). */
export function busyboxLinks(listFull: string): string[] {
  return listFull
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/(^|\/)(init|linuxrc|busybox)$/.test(l))
    .map((l) => peLocation(`/${l}`));
}

const dev = (major: number, minor: number, mode = 0o600) => ({ kind: 'char' as const, major, minor, mode });

/**
 * Everything that goes into the initramfs except the module index files, which depmod writes
 * at build time. Composing it reads only metadata and ELF headers, so it is cheap enough to run on
 * every build to compute the cache key.
 */
export async function composeInitramfs(inputs: ManifestInputs): Promise<InitramfsManifest> {
  const { config, kernel } = inputs;
  const warnings: string[] = [];
  const tree: FileTree = new Map();
  for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'mnt', 'root', 'etc', 'usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'var']) tree.set(d, { kind: 'dir' });
  tree.set('tmp', { kind: 'dir', mode: 0o1777 });
  for (const top of ['bin', 'sbin', 'lib', 'lib64']) tree.set(top, { kind: 'symlink', target: `usr/${top}` });
  tree.set('var/run', { kind: 'symlink', target: '../run' });
  // The kernel opens /dev/console for /init before anything can mount devtmpfs.
  tree.set('dev/console', dev(5, 1));
  tree.set('dev/null', dev(1, 3, 0o666));

  // busybox first: real tools copied later replace its applets of the same name.
  const busybox = findTool('busybox');
  if (!busybox) throw new ImagepeError('TOOL_MISSING', 'busybox was not found', { hint: 'apt-get install busybox-static' });
  const bb = await run(busybox, ['--list-full'], { what: 'listing the busybox applets', timeoutMs: 10_000 });
  tree.set('usr/bin/busybox', await hostFileEntry(busybox, 0o755));
  for (const link of busyboxLinks(bb.stdout)) tree.set(link, { kind: 'symlink', target: posix.relative(posix.dirname(`/${link}`), '/usr/bin/busybox') });

  const roots: string[] = [];
  const toolPath = (name: string): string | undefined => (name.startsWith('/') ? name : findTool(name));
  for (const name of [...REQUIRED_TOOLS, ...config.tools]) {
    const p = toolPath(name);
    if (!p) throw new ImagepeError('TOOL_MISSING', `${name}, which the PE needs, is not installed on this build host`, { hint: 'Run scripts/setup as root to install the build dependencies.' });
    roots.push(p);
  }
  for (const name of OPTIONAL_TOOLS) {
    const p = toolPath(name);
    if (p) roots.push(p);
    else warnings.push(`optional tool ${name} is not installed; the PE goes without it`);
  }
  const node = config.node ?? findTool('node') ?? process.execPath;
  roots.push(node);

  const closure = await libraryClosure(roots);
  if (closure.unresolved.length > 0) {
    const list = closure.unresolved.map((u) => `${u.soname} (needed by ${u.neededBy})`).join(', ');
    throw new ImagepeError('NOT_FOUND', `shared libraries not found on the build host: ${list}`, { hint: 'Install the packages that ship them.' });
  }
  for (const f of closure.files) await addHostFile(tree, f, 'file');
  // Tool links under their usual names, pointing at the copies above.
  for (const [alias, target] of Object.entries(TOOL_ALIASES)) {
    const a = findTool(alias);
    const t = findTool(target);
    if (a && t) tree.set(peLocation(a), { kind: 'symlink', target: posix.relative(posix.dirname(`/${peLocation(a)}`), `/${peLocation(await resolveHostFile(t, 'tool'))}`) });
  }
  // A busybox applet of the same name elsewhere on PATH would shadow the real tool.
  const realNames = new Set([...roots, ...Object.keys(TOOL_ALIASES)].map((p) => posix.basename(p)));
  for (const [path, entry] of tree) {
    if (entry.kind === 'symlink' && entry.target.endsWith('busybox') && realNames.has(posix.basename(path))) tree.delete(path);
  }
  if (config.node || !tree.has('usr/bin/node')) tree.set('usr/bin/node', { kind: 'symlink', target: posix.relative('/usr/bin', `/${peLocation(await resolveHostFile(node, 'Node.js'))}`) });
  // libnss modules are loaded with dlopen, so no DT_NEEDED names them; name lookups need them.
  for (const lib of ['/lib/x86_64-linux-gnu/libnss_files.so.2', '/lib/x86_64-linux-gnu/libnss_dns.so.2']) {
    if (await stat(lib).catch(() => undefined)) await addHostFile(tree, lib, 'library');
  }
  // mtools converts FAT names through iconv (code page 850 unless told otherwise), and glibc
  // loads the converter with dlopen: without these, writing the ESP of a deployed disk fails.
  const gconv = '/usr/lib/x86_64-linux-gnu/gconv';
  for (const f of ['gconv-modules', 'gconv-modules.cache', 'gconv-modules.d/gconv-modules-extra.conf', 'IBM850.so']) {
    const path = `${gconv}/${f}`;
    if (await stat(path).catch(() => undefined)) tree.set(peLocation(path), await hostFileEntry(path));
    else warnings.push(`${path} is missing; mtools in the PE cannot write FAT volumes`);
  }

  // grub-install needs the module trees of both platforms; the monolithic signed images are not used.
  for (const platform of ['i386-pc', 'x86_64-efi']) {
    const dir = `/usr/lib/grub/${platform}`;
    if (!(await stat(dir).catch(() => undefined))) throw new ImagepeError('NOT_FOUND', `${dir} is missing`, { hint: `apt-get install ${platform === 'i386-pc' ? 'grub-pc-bin' : 'grub-efi-amd64-bin'}` });
    for (const f of await walkFiles(dir, (n) => n === 'monolithic')) tree.set(peLocation(f), await hostFileEntry(f));
  }

  // The signed chain keeps its packaged paths, where the agent (and Debian's grub-install) look.
  for (const f of inputs.signedChain ?? []) tree.set(peLocation(f), await hostFileEntry(f, 0o644));

  // Kernel modules: the closure over modules.dep and modules.softdep.
  const read = (name: string) => readFile(join(kernel.modulesDir, name), 'utf8').catch(() => '');
  const index = buildModuleIndex(await read('modules.dep'), await read('modules.softdep'), await read('modules.builtin'));
  const defaults = selectModules(index, DEFAULT_MODULES);
  for (const m of defaults.missing) warnings.push(`module ${m} is not in kernel ${kernel.version}`);
  const extra = selectModules(index, config.modules);
  if (extra.missing.length > 0) {
    throw new ImagepeError('NOT_FOUND', `modules not found in kernel ${kernel.version}: ${extra.missing.join(', ')}`, { hint: `List them with: find ${kernel.modulesDir} -name '*.ko*'` });
  }
  const optional = selectModules(index, MODULES_IF_PRESENT);
  const modules = [...new Set([...defaults.paths, ...extra.paths, ...optional.paths])].sort();

  const text = (s: string, mode = 0o644) => ({ kind: 'data' as const, data: Buffer.from(s), mode });
  tree.set('init', { kind: 'data', data: await readFile(templatePath('init')), mode: 0o755 });
  tree.set('usr/share/imagepe/udhcpc.script', { kind: 'data', data: await readFile(templatePath('udhcpc.script')), mode: 0o755 });
  tree.set(AGENT_PATH, { kind: 'data', data: inputs.agentBundle, mode: 0o644 });
  tree.set(AGENT_LOADER_PATH, { kind: 'data', data: await readFile(templatePath('agent-loader.cjs')), mode: 0o644 });
  tree.set('etc/imagepe/build.json', text(`${JSON.stringify(inputs.buildInfo, null, 2)}\n`));
  if (config.plan) tree.set('etc/imagepe/plan.json', text(`${JSON.stringify(config.plan, null, 2)}\n`));
  tree.set('etc/passwd', text('root:x:0:0:root:/root:/bin/sh\n'));
  tree.set('etc/group', text('root:x:0:\n'));
  tree.set('etc/nsswitch.conf', text('passwd: files\ngroup: files\nhosts: files dns\n'));
  tree.set('etc/hosts', text('127.0.0.1 localhost\n::1 localhost\n'));
  tree.set('etc/hostname', text('imagepe\n'));
  tree.set('etc/profile', text('export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1="imagepe \\w # "\necho "imagepe shell: the boot log is /run/imagepe/boot.log"\n'));
  tree.set('etc/mtab', { kind: 'symlink', target: '/proc/self/mounts' });
  for (const f of config.files) {
    const target = f.target.replace(/^\/+/, '');
    const entry = await hostFileEntry(f.source, f.mode);
    tree.set(target, entry);
  }
  const nodeFile = await resolveHostFile(node, 'Node.js');
  return { tree, modules, kernel, earlyModules: earlyModulePaths(modules, index.deps, kernel.version), strip: [peLocation(nodeFile)], node: nodeFile, warnings };
}
