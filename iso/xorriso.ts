import { readdir, utimes, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../core/index.js';

export interface IsoOptions {
  /** Directory whose contents become the ISO filesystem. */
  tree: string;
  output: string;
  volumeId: string;
  /** Path inside the tree of the BIOS El Torito image (GRUB i386-pc-eltorito). */
  biosImage: string;
  /** The ESP image, appended as GPT partition 2 and used as the El Torito EFI image. */
  espImage: string;
  /** GRUB's boot_hybrid.img: the MBR boot code that makes the ISO boot from a USB stick in BIOS mode. */
  hybridMbr: string;
  sourceDateEpoch: number;
  signal?: AbortSignal;
}

/** xorriso's date format: YYYYMMDDhhmmsscc in UTC. */
export function isoDate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}00`;
}

/**
 * The xorriso arguments of a hybrid ISO: El Torito BIOS (GRUB) and EFI entries, an MBR with
 * GRUB's hybrid boot code and a GPT whose partition 2 is the ESP, so the same file boots as a
 * CD and, written with dd, as a USB disk in both firmware modes. Every date and the GPT GUIDs
 * come from sourceDateEpoch.
 */
export function xorrisoArgs(o: IsoOptions): string[] {
  const date = isoDate(o.sourceDateEpoch);
  return [
    '-as', 'mkisofs',
    '-o', o.output,
    '-V', o.volumeId,
    '-r',
    '--modification-date=' + date,
    '--set_all_file_dates', date,
    '--gpt_disk_guid', 'modification-date',
    '--grub2-mbr', o.hybridMbr,
    '-partition_offset', '16',
    '--mbr-force-bootable',
    '-append_partition', '2', '0xef', o.espImage,
    '-appended_part_as_gpt',
    '-c', 'boot/boot.cat',
    '-b', o.biosImage,
    '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', '--grub2-boot-info',
    '-eltorito-alt-boot',
    '-e', '--interval:appended_partition_2:all::',
    '-no-emul-boot',
    o.tree,
  ];
}

async function touchTree(dir: string, seconds: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    if ((await lstat(p)).isDirectory()) await touchTree(p, seconds);
    await utimes(p, seconds, seconds);
  }
  await utimes(dir, seconds, seconds);
}

export async function writeIso(options: IsoOptions): Promise<RunResult> {
  await touchTree(options.tree, options.sourceDateEpoch);
  return run('xorriso', xorrisoArgs(options), { what: 'writing the ISO', timeoutMs: 300_000, signal: options.signal });
}

export interface BootCatalogEntry {
  index: number;
  platform: 'BIOS' | 'UEFI';
  /** Start block (2 KiB) of the boot image. */
  lba: number;
  /** Path in the ISO, when the image is a file there (the EFI image is a hidden partition). */
  path: string | undefined;
}

export interface BootReport {
  entries: BootCatalogEntry[];
  /** "MBR protective-msdos-label grub2-mbr cyl-align-off GPT" */
  systemArea: string;
  volumeId: string | undefined;
}

/** Parses `xorriso -report_el_torito plain -report_system_area plain`. */
export function parseBootReport(text: string): BootReport {
  const entries: BootCatalogEntry[] = [];
  let systemArea = '';
  let volumeId: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let m = /^El Torito boot img\s*:\s*(\d+)\s+(BIOS|UEFI)\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\d+)$/.exec(line);
    if (m) {
      entries.push({ index: Number(m[1]), platform: m[2] as 'BIOS' | 'UEFI', lba: Number(m[3]), path: undefined });
      continue;
    }
    m = /^El Torito img path\s*:\s*(\d+)\s+(\S.*)$/.exec(line);
    if (m) {
      const e = entries.find((x) => x.index === Number(m![1]));
      if (e) e.path = m[2]!.trim();
      continue;
    }
    m = /^System area summary\s*:\s*(.*)$/.exec(line);
    if (m) systemArea = m[1]!.trim();
    m = /^Volume id\s*:\s*'(.*)'$/.exec(line);
    if (m) volumeId = m[1];
  }
  return { entries, systemArea, volumeId };
}

export async function readBootReport(iso: string, signal?: AbortSignal): Promise<BootReport & { text: string }> {
  const r = await run('xorriso', ['-indev', iso, '-report_el_torito', 'plain', '-report_system_area', 'plain'], { what: `reading the boot records of ${iso}`, timeoutMs: 60_000, signal });
  const text = `${r.stdout}\n${r.stderr}`;
  return { ...parseBootReport(text), text };
}
