import { readFile, readdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { formatBytes, run, type RunOptions } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import { probeFilesystem } from '../../partition/index.js';
import type { Disk } from '../events/index.js';

/** One image of one WIM on the share, as the technician picks it. */
export interface ShareImage {
  /** The WIM, relative to the share folder, with "/" separators. */
  file: string;
  index: number;
  name: string;
  description: string;
  /** The image's expanded size (wimlib's Total Bytes). */
  imageBytes: number;
  /** The size of the WIM file holding it. */
  wimBytes: number;
  /** ISO 8601, when the WIM records it. */
  created: string | undefined;
  /** The image carries the disk layout it was captured from, so a deploy can recreate it. */
  layoutRecorded: boolean;
}

export interface ShareInventory {
  images: ShareImage[];
  /** WIM files that could not be read, with the reason: shown, so a damaged file is not just missing. */
  unreadable: { file: string; reason: string }[];
}

/** How many folder levels under the share folder are searched for WIMs. */
export const SEARCH_DEPTH = 3;

/**
 * The *.wim files under a share folder, relative to it and sorted: up to SEARCH_DEPTH folders
 * deep; logs/ (the deploy logs) and hidden names are left out (a capture in progress writes to
 * NAME.wim.imagepe-*.partial, which is not a *.wim), and symlinked folders are not followed.
 */
export async function findWimFiles(root: string, depth = SEARCH_DEPTH): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string, level: number): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const path = rel ? posix.join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        if (level < depth && !(level === 0 && e.name === 'logs')) await walk(path, level + 1);
      } else if ((e.isFile() || e.isSymbolicLink()) && /\.wim$/i.test(e.name)) found.push(path);
    }
  };
  await walk('', 0);
  return found.sort();
}

/** The image property where imagepe's capture records the disk layout the image came from. */
export const LAYOUT_PROPERTY = 'IMAGEPE/LAYOUT';

/** Every image of every WIM under a mapped share folder, in file order, then index order. */
export async function listShareImages(root: string, options: { signal?: AbortSignal } = {}): Promise<ShareInventory> {
  const images: ShareImage[] = [];
  const unreadable: ShareInventory['unreadable'] = [];
  const signal = options.signal ? { signal: options.signal } : {};
  for (const file of await findWimFiles(root)) {
    const path = join(root, file);
    try {
      const wim = await imaging.info(path, signal);
      const wimBytes = (await stat(path)).size;
      // One read of the XML data serves every image of the file (imageProperty would read it per image).
      const properties = new Map(imaging.parseWimXml(await imaging.readWimXml(path, signal)).map((i) => [i.index, i.properties]));
      for (const img of wim.images) {
        const layout = properties.get(img.index)?.[LAYOUT_PROPERTY];
        images.push({
          file,
          index: img.index,
          name: img.name,
          description: img.description,
          imageBytes: img.totalBytes,
          wimBytes,
          created: img.creationTime,
          layoutRecorded: layout !== undefined && layout.trim() !== '',
        });
      }
    } catch (e) {
      if (options.signal?.aborted) throw e;
      unreadable.push({ file, reason: firstLine(e) });
    }
  }
  return { images, unreadable };
}

/** A partition of a disk, read from lsblk without touching it. */
export interface PartitionRow {
  path: string;
  name: string;
  /** The kernel's partition number; undefined when it cannot be told. */
  number: number | undefined;
  sizeBytes: number;
  fsType: string | undefined;
  label: string | undefined;
  partLabel: string | undefined;
  /** Only known for a mounted filesystem. */
  usedBytes: number | undefined;
}

/** What a disk holds: its partition table and partitions, or a filesystem on the whole disk. */
export interface DiskContents {
  /** gpt, dos, or undefined when there is no partition table. */
  tableType: string | undefined;
  /** A filesystem written straight onto the disk, without a partition table. */
  wholeDisk: { fsType: string; label: string | undefined; usedBytes: number | undefined } | undefined;
  partitions: PartitionRow[];
}

/** One disk as the technician sees it in a list. */
export interface DiskRow {
  path: string;
  model: string | null;
  sizeBytes: number;
  readOnly: boolean;
  removable: boolean;
  /** What it holds, one item per line; empty when blank. */
  holds: string[];
  contents: DiskContents | undefined;
}

// PARTN (the partition number) only came with util-linux 2.39; Debian 12 has 2.38, so the
// number is read from sysfs. FSUSED is only filled in for mounted filesystems.
export const LSBLK_COLUMNS = 'NAME,PATH,SIZE,TYPE,PTTYPE,FSTYPE,LABEL,PARTLABEL,FSUSED';

interface LsblkNode {
  name?: string;
  path?: string;
  size?: number | string | null;
  type?: string;
  pttype?: string | null;
  fstype?: string | null;
  label?: string | null;
  partlabel?: string | null;
  fsused?: number | string | null;
  children?: LsblkNode[];
}

/** What `blkid --probe --output export` says about a device: TYPE, LABEL, PTTYPE, PART_ENTRY_NAME, ... */
export type BlkidProbe = Readonly<Record<string, string>>;

/**
 * Reads `lsblk --json --bytes --output LSBLK_COLUMNS DISK` output. lsblk takes filesystem types
 * and labels from the udev database, which the PE does not have: there those columns are empty,
 * and the blkid probes of each device (by path) fill them in. Partition numbers are the trailing
 * digits of the name until sysfs says better (readDiskContents).
 */
export function parseDiskContents(json: string, probes: ReadonlyMap<string, BlkidProbe> = new Map()): DiskContents {
  const data = JSON.parse(json) as { blockdevices?: LsblkNode[] };
  const disk = data.blockdevices?.[0];
  if (!disk) return { tableType: undefined, wholeDisk: undefined, partitions: [] };
  const text = (v: string | null | undefined) => (v && v.trim() ? v.trim() : undefined);
  const num = (v: number | string | null | undefined) => (v === null || v === undefined || v === '' ? undefined : Number(v));
  const probed = (node: LsblkNode) => probes.get(node.path ?? `/dev/${node.name ?? ''}`) ?? {};
  const partitions = (disk.children ?? [])
    .filter((c) => c.type === 'part')
    .map((c): PartitionRow => {
      const name = c.name ?? '';
      const p = probed(c);
      return {
        path: c.path ?? `/dev/${name}`,
        name,
        number: /(\d+)$/.test(name) ? Number(/(\d+)$/.exec(name)![1]) : undefined,
        sizeBytes: num(c.size) ?? 0,
        fsType: text(c.fstype) ?? text(p.TYPE),
        label: text(c.label) ?? text(p.LABEL),
        partLabel: text(c.partlabel) ?? text(p.PART_ENTRY_NAME),
        usedBytes: num(c.fsused),
      };
    });
  const p = probed(disk);
  const fs = text(disk.fstype) ?? text(p.TYPE);
  const usedBytes = num(disk.fsused);
  return {
    tableType: text(disk.pttype) ?? text(p.PTTYPE),
    // A mounted filesystem whose type nobody could tell still holds data.
    wholeDisk: (fs || usedBytes !== undefined) && partitions.length === 0 ? { fsType: fs ?? 'a filesystem', label: text(disk.label) ?? text(p.LABEL), usedBytes } : undefined,
    partitions,
  };
}

/** What a disk holds, in words, one item per line: [] for a blank disk. */
export function describeContents(c: DiskContents): string[] {
  const out: string[] = [];
  if (c.tableType) {
    const table = c.tableType === 'gpt' ? 'GPT' : c.tableType === 'dos' ? 'MBR' : c.tableType;
    out.push(`${table}: ${c.partitions.length} partition${c.partitions.length === 1 ? '' : 's'}`);
  }
  if (c.wholeDisk) out.push(`${filesystem(c.wholeDisk.fsType, c.wholeDisk.label, undefined)} on the whole disk${used(c.wholeDisk.usedBytes)}`);
  for (const p of c.partitions) {
    out.push(`${p.name}: ${filesystem(p.fsType, p.label, p.partLabel)} ${formatBytes(p.sizeBytes)}${used(p.usedBytes)}`);
  }
  return out;
}

function filesystem(fsType: string | undefined, label: string | undefined, partLabel: string | undefined): string {
  const kind = fsType ?? 'no filesystem';
  if (label) return `${kind} '${label}'`;
  if (partLabel) return `${kind} (${partLabel})`;
  return kind;
}

function used(bytes: number | undefined): string {
  return bytes === undefined ? '' : ` (${formatBytes(bytes)} used)`;
}

async function sysPartitionNumber(name: string): Promise<number | undefined> {
  const text = await readFile(`/sys/class/block/${name}/partition`, 'utf8').catch(() => '');
  const n = Number.parseInt(text.trim(), 10);
  return Number.isFinite(n) ? n : undefined;
}

/** Reads what one disk holds with lsblk and blkid's low-level probe; nothing is written. */
export async function readDiskContents(path: string, options: { signal?: AbortSignal } = {}): Promise<DiskContents> {
  const runOpts = (what: string): RunOptions => ({ what, timeoutMs: 30_000, ...(options.signal ? { signal: options.signal } : {}) });
  const r = await run('lsblk', ['--json', '--bytes', '--output', LSBLK_COLUMNS, path], runOpts(`reading what ${path} holds`));
  const tree = parseDiskContents(r.stdout);
  const diskPath = (JSON.parse(r.stdout) as { blockdevices?: { path?: string }[] }).blockdevices?.[0]?.path ?? path;
  const probes = new Map<string, BlkidProbe>();
  for (const node of [diskPath, ...tree.partitions.map((p) => p.path)]) probes.set(node, await probeFilesystem(node, runOpts));
  const contents = parseDiskContents(r.stdout, probes);
  for (const p of contents.partitions) p.number = (await sysPartitionNumber(p.name)) ?? p.number;
  return contents;
}

/**
 * The disks with what each holds, read-only. A disk lsblk cannot read still appears, with the
 * reason in place of its contents: the technician should see every disk the agent found.
 */
export async function describeDisks(disks: readonly Disk[], options: { signal?: AbortSignal } = {}): Promise<DiskRow[]> {
  const rows: DiskRow[] = [];
  for (const d of disks) {
    const base = { path: d.path, model: d.model, sizeBytes: d.size, readOnly: d.readOnly, removable: d.removable };
    try {
      const contents = await readDiskContents(d.path, options);
      rows.push({ ...base, holds: describeContents(contents), contents });
    } catch (e) {
      if (options.signal?.aborted) throw e;
      rows.push({ ...base, holds: [`(could not be read: ${firstLine(e)})`], contents: undefined });
    }
  }
  return rows;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}
