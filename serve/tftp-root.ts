import { constants } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ImagepeError, SHIM_SECOND_STAGE } from '../core/index.js';
import { rewriteGrubConfig } from './boot-script.js';
import { TFTP_BOOT_FILES } from './dnsmasq-config.js';

/**
 * The directory `imagepe serve` works in for one run: the TFTP root dnsmasq serves, its
 * configuration and lease file. Made fresh under the temporary directory, never in the user's
 * folder, and removed when the server stops.
 */
export interface WorkDir {
  dir: string;
  tftpRoot: string;
  remove(): Promise<void>;
}

export interface TftpRootOptions {
  pxeDir: string;
  /** Adds the bundle's signed chain for UEFI PXE clients: shim, GRUB, its grub.cfg, the kernel and initrd GRUB loads over TFTP. */
  secureBoot: boolean;
  /** Written into the signed chain's grub.cfg as imagepe.server=. */
  serverUrl: string;
  /** Where Debian's ipxe package puts its loaders. */
  ipxeDir?: string;
  /** Parent of the work directory; default the system's temporary directory. */
  parent?: string;
}

/** The signed chain's files in the PXE bundle (imagepe build --secure-boot), served by TFTP as they are. */
const SIGNED_CHAIN = [TFTP_BOOT_FILES.shim, SHIM_SECOND_STAGE, 'vmlinuz', 'initrd.img'];
const SIGNED_CHAIN_OPTIONAL = ['mmx64.efi'];
const SIGNED_GRUB_CONFIG = 'grub/grub.cfg';

/**
 * Makes the work directory and fills its TFTP root: iPXE's loaders as links to the ipxe
 * package's files, and for Secure Boot copies of the bundle's signed chain with its grub.cfg
 * carrying the server's URL. dnsmasq gives up root and reads them as nobody, so the directory and
 * files are world-readable; copies (reflinks where the filesystem has them) rather than links into
 * the bundle, whose folders may be closed to others.
 *
 * Throws NOT_FOUND for a missing iPXE loader (package ipxe) or signed chain file (rebuild with
 * Secure Boot), REFUSED when the temporary directory cannot be entered by other users.
 */
export async function prepareWorkDir(o: TftpRootOptions): Promise<WorkDir> {
  const ipxeDir = o.ipxeDir ?? '/usr/lib/ipxe';
  for (const f of [TFTP_BOOT_FILES.bios, TFTP_BOOT_FILES.uefi]) {
    if (!(await isFile(join(ipxeDir, f)))) throw new ImagepeError('NOT_FOUND', `iPXE's ${f} is not in ${ipxeDir}`, { hint: 'Install it with: apt-get install ipxe (or run scripts/setup as root)' });
  }
  if (o.secureBoot) {
    const missing = [];
    for (const f of [...SIGNED_CHAIN, SIGNED_GRUB_CONFIG]) if (!(await isFile(join(o.pxeDir, f)))) missing.push(f);
    if (missing.length > 0) {
      throw new ImagepeError('NOT_FOUND', `the PXE bundle ${o.pxeDir} has no ${missing.join(', ')}: it was not built for Secure Boot`, {
        hint: 'Build it with the signed chain (imagepe build, with shim-signed and grub-efi-amd64-signed installed), or serve without --secure-boot.',
      });
    }
  }
  const parent = resolve(o.parent ?? tmpdir());
  await checkTraversable(parent);

  const dir = await mkdtemp(join(parent, 'imagepe-serve-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await chmod(dir, 0o755);
    const tftpRoot = join(dir, 'tftp');
    await mkdir(tftpRoot, { mode: 0o755 });
    for (const f of [TFTP_BOOT_FILES.bios, TFTP_BOOT_FILES.uefi]) await symlink(join(ipxeDir, f), join(tftpRoot, f));
    if (o.secureBoot) {
      for (const f of [...SIGNED_CHAIN, ...SIGNED_CHAIN_OPTIONAL]) {
        if (!(await isFile(join(o.pxeDir, f)))) continue;
        await copyFile(join(o.pxeDir, f), join(tftpRoot, f), constants.COPYFILE_FICLONE);
        await chmod(join(tftpRoot, f), 0o644);
      }
      const config = join(tftpRoot, SIGNED_GRUB_CONFIG);
      await mkdir(dirname(config), { mode: 0o755 });
      await writeFile(config, rewriteGrubConfig(await readFile(join(o.pxeDir, SIGNED_GRUB_CONFIG), 'utf8'), o.serverUrl), { mode: 0o644 });
    }
    return { dir, tftpRoot, remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** dnsmasq, running as nobody, must be able to walk down to the TFTP root. */
async function checkTraversable(dir: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    const s = await stat(d).catch(() => undefined);
    if (s && (s.mode & 0o001) === 0) {
      throw new ImagepeError('REFUSED', `${d} cannot be entered by other users, so dnsmasq (which runs as nobody) could not read the TFTP root under ${dir}`, {
        hint: 'Set TMPDIR to a directory everyone can enter, such as /tmp.',
      });
    }
    if (d === dirname(d)) return;
  }
}
