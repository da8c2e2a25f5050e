import { readdir } from 'node:fs/promises';

export interface BootEntry {
  /** Kernel path as GRUB sees it on the boot filesystem: "/boot/vmlinuz-6.1.0" or "/vmlinuz-6.1.0". */
  kernel: string;
  initrd?: string;
  /** The filesystem UUID GRUB searches for to find the kernel. */
  bootUuid: string;
  /**
   * How the kernel finds its root: "UUID=..." when an initrd resolves it, "PARTUUID=..." without
   * one, since the kernel alone understands PARTUUID but not filesystem UUIDs.
   */
  root: string;
  /** ext2 (also ext3/4) or xfs: the GRUB module that reads the boot filesystem. */
  bootFsModule: 'ext2' | 'xfs';
  title: string;
  kernelArgs: string;
}

export const DEFAULT_KERNEL_ARGS = 'rw console=tty0 console=ttyS0,115200';

/**
 * A grub.cfg for one kernel. Serial and screen both get the menu, and the kernel logs to both
 * (the last console= gets /dev/console, so the serial port, where the harness reads).
 */
export function renderGrubCfg(e: BootEntry): string {
  const args = [`root=${e.root}`, ...(e.root.startsWith('PARTUUID=') ? ['rootwait'] : []), DEFAULT_KERNEL_ARGS, e.kernelArgs.trim()].filter(Boolean).join(' ');
  return [
    '# Written by imagepe deploy. The image has no GRUB configuration tool that runs without',
    '# chrooting into it, so this names its kernel directly; regenerate it from the system with',
    '# update-grub once it runs, if it has one.',
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    'insmod all_video',
    'set timeout=1',
    'set default=0',
    'insmod part_gpt',
    'insmod part_msdos',
    `insmod ${e.bootFsModule}`,
    `search --no-floppy --fs-uuid --set=root ${e.bootUuid}`,
    '',
    `menuentry '${e.title.replace(/'/g, '')}' {`,
    `  linux ${e.kernel} ${args}`,
    ...(e.initrd ? [`  initrd ${e.initrd}`] : []),
    '}',
    '',
  ].join('\n');
}

/**
 * The small configuration built into the UEFI binary: find the system's boot filesystem by UUID
 * and read its grub.cfg, so the binary does not depend on how the ESP is laid out.
 */
export function renderEmbeddedCfg(bootUuid: string, grubCfgPath: string): string {
  return [`search --no-floppy --fs-uuid --set=root ${bootUuid}`, `configfile ($root)${grubCfgPath}`, ''].join('\n');
}

export interface FoundKernel {
  /** File name in the boot directory. */
  kernel: string;
  initrd?: string;
  version: string;
}

/** The newest kernel in a boot directory's listing, and the initrd that belongs to it. */
export function chooseKernel(names: readonly string[]): FoundKernel | undefined {
  const kernels = names
    .map((n) => /^(?:vmlinuz|vmlinux|bzImage|kernel)(?:-(.+))?$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ kernel: m[0], version: m[1] ?? '' }))
    .sort((a, b) => compareVersions(b.version, a.version));
  const best = kernels[0];
  if (!best) return undefined;
  const v = best.version;
  const candidates = v ? [`initrd.img-${v}`, `initramfs-${v}.img`, `initrd-${v}`, `initrd-${v}.img`] : ['initrd.img', 'initramfs.img', 'initrd'];
  const initrd = candidates.find((c) => names.includes(c));
  return initrd ? { ...best, initrd } : best;
}

/** Version order: numeric runs compare as numbers, so 6.10 comes after 6.9. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/(\d+)/).filter(Boolean);
  const pb = b.split(/(\d+)/).filter(Boolean);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

export async function findKernel(bootDir: string): Promise<FoundKernel | undefined> {
  return chooseKernel(await readdir(bootDir).catch(() => [] as string[]));
}

/** GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT from the image's /etc/default/grub, if any. */
export function kernelArgsFromDefaultGrub(text: string): string {
  const get = (key: string) => {
    const m = new RegExp(`^\\s*${key}=(?:"([^"]*)"|'([^']*)'|(\\S*))`, 'm').exec(text);
    return (m?.[1] ?? m?.[2] ?? m?.[3] ?? '').trim();
  };
  return [get('GRUB_CMDLINE_LINUX'), get('GRUB_CMDLINE_LINUX_DEFAULT')].filter(Boolean).join(' ');
}
