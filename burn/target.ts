import { existsSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ImagepeError, formatBytes, run, type ErrorCode, type RunOptions } from '../core/index.js';
import { diskUses, type DiskUses } from '../partition/in-use.js';
import { flag, type LsblkDevice } from '../partition/disks.js';
import { probeFilesystem } from '../partition/index.js';

/** A partition of the target as it stands before the burn. */
export interface TargetPartition {
  path: string;
  sizeBytes: number;
  /** What blkid finds on it: ext4, vfat, ntfs...; absent when nothing is recognised. */
  fsType?: string;
  label?: string;
  mountPoints: string[];
}

/**
 * What a burn target is and holds, read without writing (lsblk, blkid, /proc). The CLI shows it
 * before asking; the refusals (burnRefusals) are decided from it.
 */
export interface TargetDescription {
  /** The device as the user named it (a /dev/disk/by-id/... link stays a link here). */
  path: string;
  /** The kernel's node, links resolved: /dev/sdb. */
  device: string;
  vendor?: string;
  model?: string;
  serial?: string;
  sizeBytes: number;
  /** Logical sector size, bytes: the unit of every O_DIRECT transfer. */
  sectorSize: number;
  /** lsblk's TRAN: usb, sata, nvme...; absent for loop and virtual devices. */
  transport?: string;
  /** lsblk RM=1, or transport usb (USB sticks and disks are not always flagged removable). */
  removable: boolean;
  readOnly: boolean;
  /** The partition table blkid finds on the whole device: gpt, dos... */
  partitionTable?: string;
  /** A filesystem on the whole device, no table (iso9660 from an ISO written before, a superfloppy vfat). */
  fsType?: string;
  label?: string;
  partitions: TargetPartition[];
  /** What uses the device or its partitions right now (partition/in-use.ts): the running system, mounts, swap, holders. */
  uses: DiskUses;
}

const text = (v: string | null | undefined) => (v?.trim() ? v.trim() : undefined);

/** The facts of one device that describeTarget gathers besides lsblk's; a test passes its own. */
export interface TargetProbes {
  /** blkid's low-level probe of a node: TYPE, LABEL, PTTYPE... */
  probe(node: string): Promise<Record<string, string>>;
  mountinfo(): Promise<string>;
  /** Active swap areas, /dev nodes with links resolved. */
  swaps(): Promise<string[]>;
}

/**
 * Reads one device's `lsblk --json --bytes --output-all DEVICE` plus blkid probes into a
 * description. The in-use facts come from partition/in-use.ts's diskUses: mounts matched by
 * device number, swap by node, and holders (dm-crypt, LVM, RAID) from lsblk's tree below the
 * disk and its partitions.
 */
export async function targetFromLsblk(path: string, json: string, probes: TargetProbes): Promise<TargetDescription> {
  const disk = ((JSON.parse(json) as { blockdevices?: LsblkDevice[] }).blockdevices ?? [])[0];
  if (!disk) throw new ImagepeError('NOT_FOUND', `lsblk does not know ${path}`);
  const device = disk.path ?? `/dev/${disk.name}`;
  const parts = (disk.children ?? []).filter((c) => c.type === 'part');
  const devices = new Map<string, string>();
  const holders = new Map<string, string[]>();
  for (const node of [disk, ...parts]) {
    const p = node.path ?? `/dev/${node.name}`;
    if (node['maj:min']) devices.set(node['maj:min'], p);
    holders.set(p, (node.children ?? []).filter((c) => c.type !== 'part').map((c) => c.name ?? '?'));
  }
  const uses = diskUses({ devices, mountinfo: await probes.mountinfo(), swaps: await probes.swaps(), holders });
  const whole = await probes.probe(device);
  const partitions: TargetPartition[] = [];
  for (const p of parts) {
    const node = p.path ?? `/dev/${p.name}`;
    const info = await probes.probe(node);
    const part: TargetPartition = { path: node, sizeBytes: Number(p.size ?? 0), mountPoints: (p.mountpoints ?? []).filter((m): m is string => !!m) };
    if (info.TYPE) part.fsType = info.TYPE;
    if (info.LABEL) part.label = info.LABEL;
    partitions.push(part);
  }
  const tran = text(disk.tran);
  const out: TargetDescription = {
    path,
    device,
    sizeBytes: Number(disk.size ?? 0),
    sectorSize: Number(disk['log-sec'] ?? 512),
    removable: flag(disk.rm) || tran === 'usb',
    readOnly: flag(disk.ro),
    partitions,
    uses,
  };
  const optional = { vendor: text(disk.vendor), model: text(disk.model), serial: text(disk.serial), transport: tran, partitionTable: whole.PTTYPE, fsType: whole.TYPE, label: whole.LABEL };
  for (const [k, v] of Object.entries(optional)) if (v) Object.assign(out, { [k]: v });
  return out;
}

export interface DescribeTargetOptions {
  signal?: AbortSignal;
}

/**
 * What DEVICE is and what it holds, as data: vendor, model, size, transport, removable,
 * partition table, partitions with their filesystems, labels, sizes and mounts, and its uses.
 * Reads only. Throws NOT_FOUND (no such path), INVALID_INPUT (not a block device), REFUSED (a
 * partition, not a whole disk).
 */
export async function describeTarget(device: string, options: DescribeTargetOptions = {}): Promise<TargetDescription> {
  const node = await realpath(device).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new ImagepeError('NOT_FOUND', `${device} does not exist`, { hint: 'Plug the stick in and name it as lsblk lists it (/dev/sdX), or by /dev/disk/by-id/.' });
    throw e;
  });
  if (!(await stat(node)).isBlockDevice()) {
    throw new ImagepeError('INVALID_INPUT', `${device} is not a block device`, { hint: 'imagepe burn writes to a disk such as /dev/sdb; to copy an image to a file, use cp.' });
  }
  if (existsSync(`/sys/class/block/${basename(node)}/partition`)) {
    throw new ImagepeError('REFUSED', `${device} is a partition, not a whole disk`, { hint: `A bootable image goes onto the whole stick: name the disk (lsblk -no PKNAME ${node} names it).` });
  }
  const runOpts = (what: string): RunOptions => ({ what, timeoutMs: 30_000, ...(options.signal ? { signal: options.signal } : {}) });
  const lsblk = await run('lsblk', ['--json', '--bytes', '--output-all', node], runOpts(`describing ${node}`));
  return targetFromLsblk(device, lsblk.stdout, systemProbes(runOpts));
}

function systemProbes(runOpts: (what: string) => RunOptions): TargetProbes {
  return {
    probe: (node) => probeFilesystem(node, runOpts),
    mountinfo: () => readFile('/proc/self/mountinfo', 'utf8'),
    async swaps() {
      const lines = (await readFile('/proc/swaps', 'utf8').catch(() => '')).split('\n').slice(1);
      const files = lines.map((l) => l.split(/\s+/)[0]).filter((f): f is string => !!f);
      return Promise.all(files.map((f) => realpath(f).catch(() => f)));
    },
  };
}

/** Why a burn must not go ahead, with what to do about it. */
export interface Refusal {
  code: ErrorCode;
  reason: string;
  hint: string;
}

/** What the refusals need to know beside the target; every path with links resolved. */
export interface RefusalContext {
  imageBytes: number;
  /** The whole disks the image file is stored on (through partitions, device-mapper and loop devices). */
  imageDisks: readonly string[];
  /** Media the running environment booted from (the PE's stick). */
  bootMedia: readonly string[];
  /** `--force DEVICE`: allows a non-removable target when it names the target again. */
  force?: string | undefined;
  /**
   * Devices to treat as removable although the kernel does not say so. A test hook: loop
   * devices are never removable, and the integration tests burn to loop devices.
   */
  treatAsRemovable: readonly string[];
}

/**
 * Every reason to refuse this burn, most serious first; empty when it may go ahead (after the
 * user's confirmation). The rules, from the issue that asked for burn: never the running
 * system's disk (whatever holds /, /boot, /usr, the ESP: REFUSED), never the boot medium or the
 * disk holding the image (REFUSED: the image would be overwritten as it is read), never a disk in
 * use (mounted, swap, held by dm/LVM/RAID: DISK_IN_USE), never a write-protected one (REFUSED),
 * a non-removable one only when `--force` names it again (REFUSED), and never one smaller than
 * the image (NO_SPACE, both sizes).
 */
export function burnRefusals(t: TargetDescription, ctx: RefusalContext): Refusal[] {
  const out: Refusal[] = [];
  const dev = t.device;
  if (t.uses.system) out.push({ code: 'REFUSED', reason: `the running system lives on it (${t.uses.system})`, hint: 'Name the USB stick, not the disk this system runs from; lsblk lists the disks.' });
  if (ctx.bootMedia.includes(dev)) out.push({ code: 'REFUSED', reason: 'it is the boot medium this environment started from', hint: 'Burn to another stick; imagepe never overwrites the medium it booted from.' });
  if (ctx.imageDisks.includes(dev)) out.push({ code: 'REFUSED', reason: 'the image file itself is stored on it', hint: 'Copy the image to another disk first, then burn it from there.' });
  // The running system's own mounts are already said by the first refusal.
  const busy = t.uses.system ? [] : t.uses.uses;
  if (busy.length > 0) out.push({ code: 'DISK_IN_USE', reason: `it is in use: ${busy.join(', ')}`, hint: `Unmount its filesystems first (umount ${dev}*, swapoff, or close what holds it), then burn again.` });
  if (t.readOnly) out.push({ code: 'REFUSED', reason: 'it is read-only (write-protected)', hint: "Slide the stick's lock switch off, or use another stick." });
  if (t.sizeBytes <= 0) out.push({ code: 'NOT_FOUND', reason: 'it has no medium (size 0)', hint: 'Insert the card or stick into the reader.' });
  const named = ctx.treatAsRemovable.includes(dev);
  if (!t.removable && !named && ctx.force !== dev) {
    out.push({
      code: 'REFUSED',
      reason: `it is not removable (${t.transport ? `transport ${t.transport}` : 'no transport'}, RM=0)`,
      hint: `A USB stick reports itself as removable or as USB; this looks like an internal disk. If you are sure, add --force ${t.path}.`,
    });
  }
  if (t.sizeBytes > 0 && t.sizeBytes < ctx.imageBytes) {
    out.push({
      code: 'NO_SPACE',
      reason: `it holds ${formatBytes(t.sizeBytes)} (${t.sizeBytes} bytes) and the image is ${formatBytes(ctx.imageBytes)} (${ctx.imageBytes} bytes)`,
      hint: 'Use a stick at least as large as the image.',
    });
  }
  return out;
}

/** The refusals as one error: the first one's code, every reason in the message, the first one's hint. */
export function refusalError(t: TargetDescription, refusals: readonly Refusal[]): ImagepeError {
  const first = refusals[0]!;
  const reasons = refusals.length === 1 ? ` ${first.reason}` : refusals.map((r) => `\n  - ${r.reason}`).join('');
  return new ImagepeError(first.code, `not burning to ${t.path}:${reasons}`, { hint: first.hint });
}
