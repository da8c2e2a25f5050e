import { open, readFile, realpath, rm, rmdir, stat, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ImagepeError, ignoreEvents, pathKind, run, unmount, type EventSink, type RunOptions } from '../core/index.js';
import { readTable, waitForPartitions } from './apply.js';
import { attachImageFile, detachLoop } from './loop.js';
import { assertDiskFree, probeFilesystem } from './target.js';
import { partitionNumber, type SfdiskTable } from './verify.js';

type RunOptsFn = (what: string, timeoutMs?: number) => RunOptions;
type TablePartition = NonNullable<SfdiskTable['partitions']>[number];

export interface GrowOptions {
  /** The partition to grow, by number. Default: the last one on the disk, skipping swap partitions at the end. */
  partition?: number;
  /** false: only move the GPT's backup to the disk's end (a disk whose backup header is not there is reported damaged by firmware and tools); no partition is grown. Default true. */
  resize?: boolean;
  signal?: AbortSignal;
  /** Options for each tool call (what it is for, its timeout); default: the signal and 60 s (30 min for filesystem tools). */
  runOpts?: RunOptsFn;
  /** Steps: relocate-backup, `move-swap N`, grow-partition, grow-filesystem, verify. */
  events?: EventSink;
}

export interface MovedSwap {
  number: number;
  /** The swap area's UUID, given to mkswap again so fstab and resume= still find it. */
  uuid: string | undefined;
  /** Sectors. */
  fromStart: number;
  toStart: number;
}

export interface GrowResult {
  /** Whether the GPT backup header was moved to the disk's last sector (always false for MBR). */
  backupHeaderMoved: boolean;
  partition: number;
  /** blkid's TYPE of the grown partition. */
  fsType: string | undefined;
  /** The partition's size before and after, in bytes (equal when there was nothing to do). */
  fromBytes: number;
  toBytes: number;
  filesystemGrown: boolean;
  movedSwap: MovedSwap[];
  /** What was not done or is worth knowing, in words. */
  notes: string[];
}

/** The table facts the plan needs, sizes in sectors. */
export interface GrowPlanInput {
  table: SfdiskTable;
  /** The last sector a partition may use (GPT: the table's last usable LBA after relocation; MBR: the disk's last sector, at most 2^32 - 1). */
  lastUsable: number;
  sectorSize: number;
  /** blkid's TYPE by partition number. */
  fsTypes: ReadonlyMap<number, string | undefined>;
  partition?: number;
}

export interface GrowPlan {
  partition: number;
  start: number;
  /** Sectors. */
  fromSize: number;
  toSize: number;
  /** Swap partitions moved to the end, the last one first so no step overlaps a partition not yet moved. */
  moves: { number: number; size: number; fromStart: number; toStart: number }[];
  nothingToDo: boolean;
}

const GPT_SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F';
const MBR_EXTENDED = [0x05, 0x0f, 0x85];
const MBR_SWAP = 0x82;
const FS_TIMEOUT_MS = 30 * 60_000;

function isExtended(table: SfdiskTable, p: TablePartition): boolean {
  return table.label === 'dos' && MBR_EXTENDED.includes(parseInt(p.type, 16));
}

function isSwap(table: SfdiskTable, p: TablePartition, fsType: string | undefined): boolean {
  if (fsType !== undefined) return fsType === 'swap';
  return table.label === 'gpt' ? p.type.toUpperCase() === GPT_SWAP : parseInt(p.type, 16) === MBR_SWAP;
}

function describe(table: SfdiskTable, p: TablePartition, fsType: string | undefined): string {
  const n = partitionNumber(p.node);
  if (isExtended(table, p)) return `partition ${n} (an extended partition)`;
  const name = p.name ? ` "${p.name}"` : '';
  return `partition ${n}${name} (${fsType ?? 'no filesystem'}, type ${p.type})`;
}

/**
 * Decides how to grow one partition into the free space at the end of the disk (pure). The
 * partition keeps its start; its end and any swap partitions after it are aligned to 1 MiB, the
 * swaps packed at the end of the disk in their order. Never shrinks: a partition already at the
 * end gives `nothingToDo`.
 *
 * Throws NOT_FOUND (no such partition), UNSUPPORTED (an MBR logical partition), REFUSED (a
 * partition other than swap after it, or one that ends beyond the disk).
 */
export function planGrow(input: GrowPlanInput): GrowPlan {
  const { table, lastUsable, sectorSize } = input;
  const grain = Math.max(1, Math.floor((1024 * 1024) / sectorSize));
  const fsOf = (p: TablePartition) => input.fsTypes.get(partitionNumber(p.node));
  const parts = [...(table.partitions ?? [])].sort((a, b) => a.start - b.start);
  if (parts.length === 0) throw new ImagepeError('NOT_FOUND', 'the disk has a partition table without partitions', { hint: 'There is nothing to grow; write the image to the disk first.' });
  const beyond = parts.find((p) => p.start + p.size - 1 > lastUsable);
  if (beyond) {
    throw new ImagepeError('REFUSED', `${describe(table, beyond, fsOf(beyond))} ends at sector ${beyond.start + beyond.size - 1}, beyond the disk's last usable sector ${lastUsable}`, {
      hint: 'The disk is smaller than the image written to it; write the image to a disk at least as large.',
    });
  }

  let chosen: TablePartition | undefined;
  if (input.partition !== undefined) {
    chosen = parts.find((p) => partitionNumber(p.node) === input.partition);
    if (!chosen) throw new ImagepeError('NOT_FOUND', `the disk has no partition ${input.partition}`, { hint: `Its partitions are ${parts.map((p) => partitionNumber(p.node)).join(', ')}.` });
  } else {
    const candidates = parts.filter((p) => !isExtended(table, p));
    let i = candidates.length - 1;
    while (i > 0 && isSwap(table, candidates[i]!, fsOf(candidates[i]!))) i--;
    chosen = candidates[i];
    if (!chosen) throw new ImagepeError('NOT_FOUND', 'the disk has only an extended partition', { hint: 'There is nothing to grow.' });
  }
  const number = partitionNumber(chosen.node);
  if (isExtended(table, chosen)) throw new ImagepeError('UNSUPPORTED', `partition ${number} is an extended partition; grow a partition that holds a filesystem`);
  if (table.label === 'dos' && number > 4) {
    throw new ImagepeError('UNSUPPORTED', `partition ${number} is a logical partition inside an MBR extended partition; only primary partitions are grown`, {
      hint: 'Grow the extended partition and then the logical one with fdisk or parted, or use a GPT image.',
    });
  }

  const after = parts.filter((p) => p.start > chosen.start);
  const inTheWay = after.filter((p) => isExtended(table, p) || !isSwap(table, p, fsOf(p)));
  if (inTheWay.length > 0) {
    throw new ImagepeError('REFUSED', `cannot grow partition ${number}: ${inTheWay.map((p) => describe(table, p, fsOf(p))).join(', ')} ${inTheWay.length === 1 ? 'lies' : 'lie'} after it`, {
      hint: 'Only swap partitions after it are moved to the end of the disk. Grow the last partition instead (leave out the partition number), or move what is in the way first.',
    });
  }

  // The swaps are packed at the end, last first; one that cannot move right stays where it is.
  const moves: GrowPlan['moves'] = [];
  let cursor = Math.floor((lastUsable + 1) / grain) * grain;
  for (const p of [...after].reverse()) {
    const toStart = Math.floor((cursor - p.size) / grain) * grain;
    if (toStart > p.start) {
      moves.push({ number: partitionNumber(p.node), size: p.size, fromStart: p.start, toStart });
      cursor = toStart;
    } else {
      cursor = p.start;
    }
  }
  const toSize = Math.max(chosen.size, cursor - chosen.start);
  return { partition: number, start: chosen.start, fromSize: chosen.size, toSize, moves, nothingToDo: moves.length === 0 && toSize === chosen.size };
}

/**
 * After a raw disk image was written to a larger disk: moves the GPT backup header to the disk's
 * end, moves swap partitions that follow the grown partition to the end of the disk (same type,
 * GPT name, PARTUUID and size; the swap area made again with its old UUID and label), grows the
 * partition to the free space (1 MiB aligned) and its filesystem (ext2/3/4 with e2fsck and
 * resize2fs; xfs and btrfs mounted on a temporary directory), then reads table and filesystem
 * back. `device` is a whole disk (block device) or a disk image file, attached for the time.
 * Other filesystems (vfat, ntfs, swap, none) get the table change only, with a note.
 *
 * Throws NOT_FOUND, INVALID_INPUT (no partition table), REFUSED (something other than swap after
 * the partition, the system disk, a disk smaller than its table), UNSUPPORTED (MBR logical
 * partitions), DISK_IN_USE (mounted, swap in use), VERIFY_FAILED (the read-back differs), and the
 * tools' COMMAND_FAILED / COMMAND_TIMEOUT.
 */
export async function growToDisk(device: string, options: GrowOptions = {}): Promise<GrowResult> {
  const kind = await pathKind(device);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `disk ${device} does not exist`);
  if (kind === 'file') {
    const loop = await attachImageFile(device, options.signal ? { signal: options.signal } : {});
    let ok = false;
    try {
      const result = await growDevice(loop, device, options);
      ok = true;
      return result;
    } finally {
      await detachLoop(loop).catch((e: unknown) => {
        if (ok) throw e;
      });
    }
  }
  if (kind !== 'block-device') throw new ImagepeError('INVALID_INPUT', `${device} is neither a block device nor a disk image file`);
  return growDevice(await realpath(device), device, options);
}

async function growDevice(device: string, shown: string, options: GrowOptions): Promise<GrowResult> {
  const signal = options.signal;
  const runOpts: RunOptsFn = options.runOpts ?? ((what, timeoutMs = 60_000) => ({ what, timeoutMs, ...(signal ? { signal } : {}) }));
  const events = options.events ?? ignoreEvents;
  const step = (name: string, status: 'started' | 'done' | 'skipped', detail?: string) =>
    events({ type: 'step', operation: 'grow', step: name, status, ...(detail !== undefined ? { detail } : {}) });
  const notes: string[] = [];

  await assertDiskFree(device, shown);
  const size = Number((await run('blockdev', ['--getsize64', device], runOpts(`reading the size of ${shown}`))).stdout.trim());
  const sectorSize = Number((await run('blockdev', ['--getss', device], runOpts(`reading the sector size of ${shown}`))).stdout.trim());
  const totalSectors = Math.floor(size / sectorSize);
  let table = await readTable(device, runOpts);
  if (!table) throw new ImagepeError('INVALID_INPUT', `${shown} has no partition table`, { hint: 'Write the raw disk image to it first.' });

  if (table.label !== 'gpt' && table.label !== 'dos') throw new ImagepeError('UNSUPPORTED', `${shown} has a ${table.label} partition table; only GPT and MBR are grown`);
  // Planned before anything is written, against where the relocated backup will leave the last usable sector, so a refusal changes nothing.
  const gpt = table.label === 'gpt' ? await readGptHeader(device, sectorSize) : undefined;
  const lastUsable = gpt ? totalSectors - 2 - gpt.entriesSectors : Math.min(totalSectors, 2 ** 32) - 1;
  if (table.label === 'dos' && totalSectors > 2 ** 32) notes.push(`an MBR table addresses only the first ${2 ** 32} sectors; the rest of the disk stays unused (GPT has no such limit)`);

  const numbers = (table.partitions ?? []).map((p) => partitionNumber(p.node));
  let nodes = await currentNodes(device, numbers, runOpts, true);
  const probes = new Map<number, Record<string, string>>();
  for (const n of numbers) if (!isExtended(table, byNumber(table, n))) probes.set(n, await probeFilesystem(nodes.get(n)!, runOpts));
  const fsTypes = new Map([...probes].map(([n, p]) => [n, p.TYPE]));
  const plan = options.resize === false ? undefined : planGrow({ table, lastUsable, sectorSize, fsTypes, ...(options.partition !== undefined ? { partition: options.partition } : {}) });

  let backupHeaderMoved = false;
  if (gpt && gpt.alternateLba !== totalSectors - 1) {
    step('relocate-backup', 'started', `from sector ${gpt.alternateLba} to ${totalSectors - 1}`);
    await run('sfdisk', ['--relocate', 'gpt-bak-std', device], runOpts(`moving the backup GPT of ${shown} to its end`));
    backupHeaderMoved = true;
    table = (await readTable(device, runOpts))!;
    const lastlba = (table as SfdiskTable & { lastlba?: number }).lastlba;
    if (lastlba !== lastUsable) throw new ImagepeError('VERIFY_FAILED', `after moving the backup GPT of ${shown} its last usable sector is ${lastlba}, not ${lastUsable}`, { hint: 'Check the table with sgdisk -v.' });
    step('relocate-backup', 'done');
  }
  if (!plan) {
    notes.push('no partition grown (resize: false)');
    return { backupHeaderMoved, partition: 0, fsType: undefined, fromBytes: 0, toBytes: 0, filesystemGrown: false, movedSwap: [], notes };
  }
  const fsType = fsTypes.get(plan.partition);
  const result: GrowResult = { backupHeaderMoved, partition: plan.partition, fsType, fromBytes: plan.fromSize * sectorSize, toBytes: plan.toSize * sectorSize, filesystemGrown: false, movedSwap: [], notes };
  if (plan.nothingToDo) {
    notes.push(`partition ${plan.partition} already reaches the end of the usable space; nothing to grow`);
    return result;
  }
  const before = table;

  for (const move of plan.moves) {
    const probe = probes.get(move.number) ?? {};
    step(`move-swap ${move.number}`, 'started', `sector ${move.fromStart} to ${move.toStart}`);
    await setPartition(device, move.number, move.toStart, move.size, runOpts);
    nodes = await currentNodes(device, numbers, runOpts, true);
    if (probe.TYPE === 'swap') {
      await run('mkswap', [...(probe.UUID ? ['-U', probe.UUID] : []), ...(probe.LABEL ? ['-L', probe.LABEL] : []), nodes.get(move.number)!], runOpts(`making the swap area of partition ${move.number} again`));
    } else {
      notes.push(`partition ${move.number} has a swap partition type but no swap area; it was moved without making one`);
    }
    result.movedSwap.push({ number: move.number, uuid: probe.UUID, fromStart: move.fromStart, toStart: move.toStart });
    step(`move-swap ${move.number}`, 'done');
  }

  if (plan.toSize > plan.fromSize) {
    step('grow-partition', 'started', `partition ${plan.partition} to ${plan.toSize} sectors`);
    await setPartition(device, plan.partition, plan.start, plan.toSize, runOpts);
    nodes = await currentNodes(device, numbers, runOpts, true);
    step('grow-partition', 'done');
    const node = nodes.get(plan.partition)!;
    step('grow-filesystem', 'started', `${fsType ?? 'no filesystem'} on ${node}`);
    result.filesystemGrown = await growFilesystem(node, fsType, runOpts, notes);
    step('grow-filesystem', result.filesystemGrown ? 'done' : 'skipped', fsType);
  }

  step('verify', 'started');
  await verifyGrown(device, shown, before, plan, nodes, fsType, probes, result, sectorSize, runOpts);
  step('verify', 'done');
  return result;
}

function byNumber(table: SfdiskTable, n: number): TablePartition {
  return (table.partitions ?? []).find((p) => partitionNumber(p.node) === n)!;
}

/** From the primary GPT header: where it says the backup header is, and the sectors its partition entry array takes. */
async function readGptHeader(device: string, sectorSize: number): Promise<{ alternateLba: number; entriesSectors: number }> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(512);
    await fh.read(buf, 0, 512, sectorSize);
    if (buf.toString('latin1', 0, 8) !== 'EFI PART') throw new ImagepeError('INVALID_INPUT', `${device} has no primary GPT header at sector 1`, { hint: 'Repair the table with sgdisk or gdisk first.' });
    const entriesBytes = buf.readUInt32LE(80) * buf.readUInt32LE(84);
    return { alternateLba: Number(buf.readBigUInt64LE(32)), entriesSectors: Math.ceil(entriesBytes / sectorSize) };
  } finally {
    await fh.close();
  }
}

/**
 * Changes one partition's start and size and nothing else: sfdisk -N keeps the fields a line
 * does not give (type, PARTUUID, name, attributes), and re-reads the table on an unused disk.
 */
async function setPartition(device: string, number: number, start: number, size: number, runOpts: RunOptsFn): Promise<void> {
  await run('sfdisk', ['--no-reread', '-N', String(number), device], { ...runOpts(`setting partition ${number} of ${device} to ${size} sectors at ${start}`), input: `${start}, ${size}\n` });
}

/**
 * The partition nodes by number, each checked against the kernel's device number: after a table
 * change (or a loop device number reused for another file) the kernel may give a partition
 * another minor, and without udev an old node would then open a different partition. `forget`
 * drops the kernel's partitions first, for a table whose partitions moved.
 */
export async function currentNodes(device: string, numbers: number[], runOpts: RunOptsFn, forget = false): Promise<Map<number, string>> {
  // partx --update resizes in place but cannot move a start; deleting first makes it add afresh.
  if (forget) await run('partx', ['--delete', device], { ...runOpts(`forgetting the old partitions of ${device}`), okExitCodes: [0, 1] });
  const nodes = await waitForPartitions(device, numbers, 15_000, runOpts);
  const name = basename(device);
  for (const node of nodes.values()) {
    const want = (await readFile(`/sys/block/${name}/${basename(node)}/dev`, 'utf8')).trim();
    const s = await stat(node).catch(() => undefined);
    const have = s ? `${Math.floor(s.rdev / 256) & 0xfff}:${(s.rdev & 0xff) | ((s.rdev >> 12) & 0xfff00)}` : undefined;
    if (have !== want) {
      await rm(node, { force: true });
      const [major, minor] = want.split(':');
      await run('mknod', [node, 'b', major!, minor!], runOpts(`creating ${node}`));
    }
  }
  return nodes;
}

async function growFilesystem(node: string, fsType: string | undefined, runOpts: RunOptsFn, notes: string[]): Promise<boolean> {
  switch (fsType) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      // resize2fs refuses a filesystem not checked since its last mount; e2fsck exits 1 when it fixed something.
      await run('e2fsck', ['-f', '-y', node], { ...runOpts(`checking ${node} before growing it`, FS_TIMEOUT_MS), okExitCodes: [0, 1] });
      await run('resize2fs', [node], runOpts(`growing the ${fsType} filesystem on ${node}`, FS_TIMEOUT_MS));
      return true;
    case 'xfs':
      await withMounted(node, 'xfs', runOpts, (dir) => run('xfs_growfs', [dir], runOpts(`growing the xfs filesystem on ${node}`, FS_TIMEOUT_MS)));
      return true;
    case 'btrfs':
      await withMounted(node, 'btrfs', runOpts, (dir) => run('btrfs', ['filesystem', 'resize', 'max', dir], runOpts(`growing the btrfs filesystem on ${node}`, FS_TIMEOUT_MS)));
      return true;
    case undefined:
      notes.push(`${node} holds no filesystem blkid knows; only its partition was grown`);
      return false;
    default:
      notes.push(`${fsType} on ${node} is not grown by imagepe; only its partition was grown${fsType === 'swap' ? ' (run mkswap with its UUID to use the new size)' : fsType === 'ntfs' ? ' (ntfsresize grows it)' : ''}`);
      return false;
  }
}

async function withMounted<T>(node: string, fsType: string, runOpts: RunOptsFn, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-grow-'));
  try {
    await run('mount', ['-t', fsType, node, dir], runOpts(`mounting ${node} to grow it`));
    try {
      return await body(dir);
    } finally {
      await unmount(dir, { strict: true, warn: () => undefined });
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

/** The filesystem's size in bytes as its own tools report it, or undefined for one imagepe does not grow. */
export async function filesystemBytes(node: string, fsType: string | undefined, runOpts: RunOptsFn): Promise<number | undefined> {
  switch (fsType) {
    case 'ext2':
    case 'ext3':
    case 'ext4': {
      const out = (await run('dumpe2fs', ['-h', node], runOpts(`reading the size of ${node}`))).stdout;
      const blocks = Number(/^Block count:\s+(\d+)/m.exec(out)?.[1]);
      const bsize = Number(/^Block size:\s+(\d+)/m.exec(out)?.[1]);
      return blocks * bsize;
    }
    case 'xfs': {
      // xfs_db reads the unmounted superblock: data blocks times block size.
      const out = (await run('xfs_db', ['-r', '-c', 'sb 0', '-c', 'print blocksize dblocks', node], runOpts(`reading the size of ${node}`))).stdout;
      return Number(/blocksize = (\d+)/.exec(out)?.[1]) * Number(/dblocks = (\d+)/.exec(out)?.[1]);
    }
    case 'btrfs': {
      const out = (await run('btrfs', ['inspect-internal', 'dump-super', node], runOpts(`reading the size of ${node}`))).stdout;
      return Number(/^dev_item\.total_bytes\s+(\d+)/m.exec(out)?.[1]);
    }
    default:
      return undefined;
  }
}

async function verifyGrown(
  device: string,
  shown: string,
  before: SfdiskTable,
  plan: GrowPlan,
  nodes: Map<number, string>,
  fsType: string | undefined,
  probes: Map<number, Record<string, string>>,
  result: GrowResult,
  sectorSize: number,
  runOpts: RunOptsFn,
): Promise<void> {
  const after = await readTable(device, runOpts);
  const diffs: string[] = [];
  if (!after) throw new ImagepeError('VERIFY_FAILED', `${shown} has no partition table after growing`);
  const want = new Map((before.partitions ?? []).map((p) => [partitionNumber(p.node), { ...p }]));
  want.get(plan.partition)!.size = plan.toSize;
  for (const m of plan.moves) want.get(m.number)!.start = m.toStart;
  for (const [n, w] of want) {
    const got = byNumber(after, n);
    if (!got) {
      diffs.push(`partition ${n} is missing`);
      continue;
    }
    if (got.start !== w.start || got.size !== w.size) diffs.push(`partition ${n} is at ${got.start}+${got.size}, not ${w.start}+${w.size}`);
    if (got.type !== w.type || got.uuid !== w.uuid || got.name !== w.name || got.attrs !== w.attrs) diffs.push(`partition ${n} changed its type, PARTUUID, name or attributes`);
  }
  for (const m of plan.moves) {
    const probe = await probeFilesystem(nodes.get(m.number)!, runOpts);
    const old = probes.get(m.number) ?? {};
    if (old.TYPE === 'swap' && (probe.TYPE !== 'swap' || probe.UUID !== old.UUID || probe.LABEL !== old.LABEL)) diffs.push(`the moved swap partition ${m.number} holds ${probe.TYPE ?? 'nothing'} with UUID ${probe.UUID ?? '(none)'}, not swap with UUID ${old.UUID}`);
  }
  if (result.filesystemGrown) {
    const fsBytes = await filesystemBytes(nodes.get(plan.partition)!, fsType, runOpts);
    const partBytes = plan.toSize * sectorSize;
    // A filesystem ends on its own block (ext4 may also drop a last block group too small to hold its metadata).
    const slack = 4 * 1024 * 1024;
    if (fsBytes === undefined || !(fsBytes <= partBytes && partBytes - fsBytes <= slack)) diffs.push(`the ${fsType} filesystem has ${fsBytes} bytes, the partition ${partBytes}`);
  }
  if (diffs.length > 0) {
    throw new ImagepeError('VERIFY_FAILED', `${shown} is not as planned after growing:\n${diffs.map((d) => `  - ${d}`).join('\n')}`, { hint: 'Something else may have written to the disk meanwhile; check dmesg, then sfdisk -d and the filesystem.' });
  }
}
