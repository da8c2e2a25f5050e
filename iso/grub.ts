import { run } from '../core/index.js';

/** One boot menu entry as the templates render it. */
export interface BootEntry {
  id: string;
  title: string;
  /** The whole kernel command line of this entry. */
  args: string[];
}

export interface MenuOptions {
  entries: readonly BootEntry[];
  defaultId: string;
  timeoutSeconds: number;
  /** Serial port settings for GRUB's own menu, or null for the screen only. */
  serial: { unit: number; speed: number } | null;
  /** File at the root of the ISO that GRUB searches for to find its own medium. */
  marker: string;
}

/** Fills @NAME@ placeholders; a placeholder without a value is an error in the template. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/@([A-Z_]+)@/g, (whole, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`template placeholder ${whole} has no value`);
    return v;
  });
}

/** GRUB quotes: single quotes cannot be escaped inside single quotes, so they are closed and reopened. */
export function grubQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Without a countdown GRUB boots the default entry at once (timeout=0 draws nothing); Shift held
 * while GRUB starts brings the menu back. Not timeout_style=hidden: Debian's GRUB waits about 3 s
 * in it even with a zero timeout (measured under QEMU).
 */
export const MENU_KEY_CHECK = '# No countdown: hold Shift while GRUB starts for the menu.\nif keystatus --shift; then set timeout=-1; fi';

export function renderGrubMenu(options: MenuOptions, templates: { grubCfg: string; menuEntry: string }): string {
  const serial = options.serial
    ? [`serial --unit=${options.serial.unit} --speed=${options.serial.speed}`, 'terminal_input console serial', 'terminal_output console serial'].join('\n')
    : '';
  const entries = options.entries
    .map((e) => fillTemplate(templates.menuEntry, { TITLE: e.title.replace(/'/g, ''), ID: e.id, ARGS: e.args.map(quoteArgIfNeeded).join(' ') }))
    .join('\n');
  return fillTemplate(templates.grubCfg, {
    TIMEOUT: String(options.timeoutSeconds),
    MENU_KEY: options.timeoutSeconds === 0 ? MENU_KEY_CHECK : '',
    DEFAULT: options.defaultId,
    SERIAL: serial,
    MARKER: options.marker,
    ENTRIES: entries,
  });
}

function quoteArgIfNeeded(arg: string): string {
  return /^[A-Za-z0-9_.,:=/+-]+$/.test(arg) ? arg : grubQuote(arg);
}

/** The config built into both GRUB images: find the ISO by its marker file, then read its menu. */
export function earlyGrubConfig(marker: string): string {
  return [`search --no-floppy --set=root --file /${marker}`, 'set prefix=($root)/boot/grub', 'configfile $prefix/grub.cfg', ''].join('\n');
}

export interface IpxeOptions {
  entries: readonly BootEntry[];
  defaultId: string;
  timeoutSeconds: number;
}

export function renderIpxeScript(options: IpxeOptions, template: string): string {
  const items = options.entries.map((e) => `item ${e.id} ${e.title}`).join('\n');
  const entries = options.entries
    .map((e) => [`:${e.id}`, `kernel vmlinuz initrd=initrd.img ${e.args.join(' ')}`, 'initrd initrd.img', 'boot', ''].join('\n'))
    .join('\n');
  // iPXE's `choose --timeout 0` waits forever: no countdown means no menu at all.
  const menu = options.timeoutSeconds === 0 ? `goto ${options.defaultId}` : `choose --default ${options.defaultId} --timeout ${options.timeoutSeconds * 1000} target && goto \${target}`;
  return fillTemplate(template, { ITEMS: items, MENU: menu, ENTRIES: entries });
}

/**
 * GRUB netboot menu. `config-folder`: vmlinuz and initrd.img sit in the folder of this file (a
 * GRUB the site configures loads it with configfile). `prefix-parent`: they sit in the parent of
 * GRUB's prefix, for Debian's signed network GRUB, whose built-in prefix is /grub on the TFTP
 * server and which reads this file with `source` (so $config_file names its memdisk, not this).
 */
export function renderGrubNetConfig(options: MenuOptions, folder: 'config-folder' | 'prefix-parent' = 'config-folder'): string {
  const lines = [
    folder === 'config-folder'
      ? '# imagepe PXE menu for GRUB netboot; vmlinuz and initrd.img sit in the same directory as this file.'
      : '# imagepe PXE menu for the signed network GRUB (grubx64.efi, started by shim as bootx64.efi); vmlinuz and initrd.img sit in the parent of this folder, the TFTP root.',
    `set timeout=${options.timeoutSeconds}`,
    ...(options.timeoutSeconds === 0 ? [MENU_KEY_CHECK] : []),
    `set default=${options.defaultId}`,
    folder === 'config-folder' ? 'regexp --set=1:imagepe_dir "^(.*)/[^/]*$" "$config_file"' : 'regexp --set=1:imagepe_dir "^(.*)/[^/]*$" "$prefix"',
  ];
  if (options.serial) lines.push(`serial --unit=${options.serial.unit} --speed=${options.serial.speed}`, 'terminal_input console serial', 'terminal_output console serial');
  for (const e of options.entries) {
    lines.push(`menuentry '${e.title.replace(/'/g, '')}' --id ${e.id} {`, `  linux $imagepe_dir/vmlinuz ${e.args.map(quoteArgIfNeeded).join(' ')}`, '  initrd $imagepe_dir/initrd.img', '}');
  }
  return `${lines.join('\n')}\n`;
}

/** Modules built into the images, so the ISO needs no GRUB module directory. */
export const GRUB_MODULES_COMMON = ['iso9660', 'part_msdos', 'part_gpt', 'normal', 'configfile', 'linux', 'search', 'search_fs_file', 'search_label', 'echo', 'test', 'serial', 'terminal', 'sleep', 'reboot', 'halt', 'regexp', 'ls', 'cat', 'keystatus'];
export const GRUB_MODULES_BIOS = ['biosdisk', ...GRUB_MODULES_COMMON];
export const GRUB_MODULES_EFI = ['fat', 'efi_gop', 'efi_uga', 'all_video', ...GRUB_MODULES_COMMON];

export interface GrubImageOptions {
  format: 'i386-pc-eltorito' | 'x86_64-efi';
  output: string;
  /** File holding the early config (earlyGrubConfig). */
  configFile: string;
  modules?: readonly string[];
  signal?: AbortSignal;
}

/** A GRUB core image; grub-mkimage gives the same bytes for the same inputs. */
export async function makeGrubImage(options: GrubImageOptions): Promise<void> {
  const modules = options.modules ?? (options.format === 'x86_64-efi' ? GRUB_MODULES_EFI : GRUB_MODULES_BIOS);
  await run('grub-mkimage', ['-O', options.format, '-p', '/boot/grub', '-c', options.configFile, '-o', options.output, ...modules], {
    what: `building the GRUB ${options.format} image`,
    timeoutMs: 60_000,
    signal: options.signal,
  });
}
