import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, realpath, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError, ignoreEvents, pathKind, run, unmount, type EventSink, type RunOptions } from '../core/index.js';
import { listSubvolumes } from './btrfs.js';
import { attachImageFile, detachLoop } from './loop.js';
import { assertLvmReady, createPhysicalVolume, createVolumeGroups, deactivateVolumeGroups, readBackLogicalVolumes } from './lvm.js';
import { logicalVolumesOf } from './lvm-plan.js';
import { renderSfdiskScript } from './resolve.js';
import { assertDiskFree, describeContents, partitionNodes, probeFilesystem } from './target.js';
import type { ResolvedLayout, ResolvedPartition, Result } from './types.js';
import { compareWithLayout, type SfdiskJson, type SfdiskTable } from './verify.js';

export interface ApplyOptions {
  events?: EventSink;
  signal?: AbortSignal;
  /** How long to wait for the kernel to show the new partitions (default 15 s). */
  partitionWaitMs?: number;
  /** Timeout for each mkfs (default 30 min: some mkfs tools write metadata across the whole partition). */
  formatTimeoutMs?: number;
}

const OPERATION = 'partition';

type RunOptsFn = (what: string, timeoutMs?: number) => RunOptions;

function runOptsOf(signal: AbortSignal | undefined): RunOptsFn {
  return (what, timeoutMs = 60_000) => ({ what, timeoutMs, ...(signal ? { signal } : {}) });
}

function stepper(events: EventSink) {
  return (name: string, status: 'started' | 'done' | 'skipped', detail?: string) =>
    events({ type: 'step', operation: OPERATION, step: name, status, ...(detail !== undefined ? { detail } : {}) });
}

/**
 * Writes a resolved layout to its disk (`layout.disk.path`, a block device or a disk image file
 * attached for the time): checks the disk, wipes it when it holds anything, writes the table,
 * makes the filesystems, then reads both back and compares them with the layout. A disk that
 * holds anything is refused unless the layout says wipe; the disk the system runs from and disks
 * in use are always refused. Steps: attach, check, wipe, write-table, wait-partitions,
 * `format NAME` for each filesystem, verify.
 *
 * Throws REFUSED (not blank, the system disk, another disk than resolved for), DISK_IN_USE,
 * VERIFY_FAILED (the read-back differs), COMMAND_FAILED and COMMAND_TIMEOUT from the tools.
 */
export async function apply(layout: ResolvedLayout, options: ApplyOptions = {}): Promise<Result> {
  const events = options.events ?? ignoreEvents;
  const runOpts = runOptsOf(options.signal);
  const step = stepper(events);
  const shown = layout.disk.path;

  const kind = await pathKind(shown);
  let loop: string | undefined;
  try {
    let device: string;
    if (kind === 'file') {
      step('attach', 'started', shown);
      loop = await attachImageFile(shown, { sectorSize: layout.sectorSize, ...(options.signal ? { signal: options.signal } : {}) });
      device = loop;
      step('attach', 'done', loop);
    } else if (kind === 'block-device') {
      device = await realpath(shown);
    } else if (kind === 'missing') {
      throw new ImagepeError('NOT_FOUND', `disk ${shown} does not exist`);
    } else {
      throw new ImagepeError('INVALID_INPUT', `${shown} is neither a block device nor a disk image file`);
    }

    step('check', 'started', device);
    await checkGeometry(device, layout, runOpts);
    if (layout.volumeGroups.length > 0) await assertLvmReady(runOpts);
    await assertDiskFree(device, shown);
    const holds = await describeContents(device, runOpts);
    if (holds.length > 0 && !layout.wipe) {
      throw new ImagepeError('REFUSED', `${shown} is not blank: it holds ${holds.join('; ')}`, {
        hint: 'Set wipe: true in the layout to erase it, or choose another disk.',
      });
    }
    step('check', 'done');

    const nodes = await writeTable(layout, device, { ...options, wipe: holds.length > 0 });
    await formatPartitions(layout, nodes, options);
    try {
      await makeVolumeGroups(layout, nodes, options);
      step('verify', 'started');
      const result = await readBack(layout, shown, device, nodes, runOpts);
      step('verify', 'done');
      return result;
    } finally {
      // The disk is let go of (an image file's loop device detached) only with its groups inactive.
      await deactivateLayoutGroups(layout, nodes, options.signal ? { signal: options.signal } : {});
    }
  } finally {
    if (loop) {
      const attached = loop;
      await detachLoop(attached).catch(() => events({ type: 'message', operation: OPERATION, level: 'warning', text: `could not detach ${attached}; detach it with losetup -d ${attached}` }));
    }
  }
}

/**
 * Erases what identifies the disk's old contents: the signatures of every partition the kernel
 * knows (filesystems, swap, RAID, LVM), then the disk's own (the partition table, a GPT's backup
 * header at the end included), with wipefs --all. The caller has checked the disk is not in use.
 */
export async function wipeSignatures(device: string, runOpts: RunOptsFn): Promise<void> {
  for (const node of await partitionNodes(device)) await run('wipefs', ['--all', '--quiet', node], runOpts(`erasing signatures on ${node}`));
  await run('wipefs', ['--all', '--quiet', device], runOpts(`erasing signatures on ${device}`));
}

/**
 * The first write to a disk: its old signatures erased (with `wipe`, on the disk and every
 * partition the kernel knows), the layout's table written by sfdisk, and the kernel's partition
 * nodes waited for. Returns the node of each partition by number. Steps: wipe, write-table,
 * wait-partitions. The caller has checked the disk (assertDiskFree, describeContents).
 */
export async function writeTable(layout: ResolvedLayout, device: string, options: ApplyOptions & { wipe: boolean }): Promise<Map<number, string>> {
  const runOpts = runOptsOf(options.signal);
  const step = stepper(options.events ?? ignoreEvents);
  if (options.wipe) {
    step('wipe', 'started');
    await wipeSignatures(device, runOpts);
    step('wipe', 'done');
  } else {
    step('wipe', 'skipped', 'the disk is blank');
  }
  step('write-table', 'started', `${layout.table}, ${layout.partitions.length} partitions`);
  await run('sfdisk', ['--wipe', 'always', '--wipe-partitions', 'always', device], { ...runOpts(`writing the partition table on ${device}`, 120_000), input: renderSfdiskScript(layout) });
  step('write-table', 'done');
  step('wait-partitions', 'started');
  const nodes = await waitForPartitions(device, layout.partitions.map((p) => p.number), options.partitionWaitMs ?? 15_000, runOpts);
  step('wait-partitions', 'done', [...nodes.values()].join(' '));
  return nodes;
}

/** Makes each partition's filesystem (the layout's format, label and UUID); steps `format NAME`, progress in parts. */
export async function formatPartitions(layout: ResolvedLayout, nodes: Map<number, string>, options: ApplyOptions = {}): Promise<void> {
  const events = options.events ?? ignoreEvents;
  const runOpts = runOptsOf(options.signal);
  const step = stepper(events);
  const toFormat = layout.partitions.filter((p) => p.format !== 'none');
  let done = 0;
  for (const part of toFormat) {
    const node = nodes.get(part.number);
    if (!node) throw new ImagepeError('NOT_FOUND', `partition ${part.number} (${part.name}) has no device node`);
    step(`format ${part.name}`, 'started', `${part.format} on ${node}`);
    await format(part, node, layout.sectorSize, runOpts(`formatting ${part.name} (${node}) as ${part.format}`, options.formatTimeoutMs ?? 30 * 60_000));
    done++;
    events({ type: 'progress', operation: OPERATION, phase: 'Formatting', unit: 'parts', done, total: toFormat.length });
    step(`format ${part.name}`, 'done');
  }
}

/**
 * The layout's LVM volume groups and logical volumes made on the physical volumes formatPartitions
 * made (step `volume-groups`), then each logical volume's filesystem (steps `format VG/LV`).
 * Returns the logical volumes' nodes by VG/LV; they stay active (deactivateLayoutGroups lets go).
 */
export async function makeVolumeGroups(layout: ResolvedLayout, nodes: Map<number, string>, options: ApplyOptions = {}): Promise<Map<string, string>> {
  const runOpts = runOptsOf(options.signal);
  const step = stepper(options.events ?? ignoreEvents);
  if (layout.volumeGroups.length === 0) return new Map();
  step('volume-groups', 'started', layout.volumeGroups.map((g) => `${g.name}: ${g.logicalVolumes.map((lv) => lv.lvName).join(', ')}`).join('; '));
  const lvNodes = await createVolumeGroups(layout, nodes, runOpts);
  step('volume-groups', 'done');
  for (const lv of logicalVolumesOf(layout)) {
    if (lv.format === 'none') continue;
    const node = lvNodes.get(lv.name)!;
    step(`format ${lv.name}`, 'started', `${lv.format} on ${node}`);
    await format(lv, node, layout.sectorSize, runOpts(`formatting ${lv.name} (${node}) as ${lv.format}`, options.formatTimeoutMs ?? 30 * 60_000));
    step(`format ${lv.name}`, 'done');
  }
  return lvNodes;
}

/** Deactivates the layout's volume groups on the disk whose partitions are `nodes`, so the disk can be let go of. */
export async function deactivateLayoutGroups(layout: ResolvedLayout, nodes: ReadonlyMap<number, string>, options: { signal?: AbortSignal } = {}): Promise<void> {
  if (layout.volumeGroups.length === 0) return;
  await deactivateVolumeGroups(layout.volumeGroups.map((g) => g.name), [...nodes.values()], runOptsOf(options.signal));
}

async function checkGeometry(device: string, layout: ResolvedLayout, runOpts: RunOptsFn): Promise<void> {
  const size = Number((await run('blockdev', ['--getsize64', device], runOpts(`reading the size of ${device}`))).stdout.trim());
  const ss = Number((await run('blockdev', ['--getss', device], runOpts(`reading the sector size of ${device}`))).stdout.trim());
  if (ss !== layout.sectorSize || Math.floor(size / ss) !== layout.totalSectors) {
    throw new ImagepeError(
      'REFUSED',
      `${layout.disk.path} is not the disk the plan was made for: it has ${Math.floor(size / ss)} sectors of ${ss} bytes, the plan ${layout.totalSectors} of ${layout.sectorSize}`,
      { hint: 'Resolve the layout again against the disk as it is now.' },
    );
  }
}

/**
 * Makes the kernel read the new table and waits for each partition's node. Without udev (the PE
 * runs busybox) nothing may react to the kernel's uevents, so partx updates the kernel's view,
 * and a node that devtmpfs does not create is made from the numbers in sysfs.
 */
export async function waitForPartitions(device: string, numbers: number[], waitMs: number, runOpts: RunOptsFn): Promise<Map<number, string>> {
  await run('partx', ['--update', device], { ...runOpts(`telling the kernel about the partitions of ${device}`), okExitCodes: [0, 1] });
  const name = basename(device);
  const deadline = Date.now() + waitMs;
  let triedAdd = false;
  for (;;) {
    const found = new Map<number, string>();
    const entries = await readdir(`/sys/block/${name}`).catch(() => [] as string[]);
    for (const e of entries) {
      const num = await readFile(`/sys/block/${name}/${e}/partition`, 'utf8').catch(() => undefined);
      if (num !== undefined) found.set(Number(num.trim()), e);
    }
    const missing = numbers.filter((n) => !found.has(n));
    if (missing.length === 0) {
      const nodes = new Map<number, string>();
      for (const n of numbers) {
        const part = found.get(n)!;
        const node = `/dev/${part}`;
        if (!existsSync(node)) {
          if (Date.now() < deadline - waitMs / 2) {
            await sleep(100);
            break;
          }
          const majmin = (await readFile(`/sys/block/${name}/${part}/dev`, 'utf8')).trim().split(':');
          await run('mknod', [node, 'b', majmin[0]!, majmin[1]!], runOpts(`creating ${node}`));
        }
        nodes.set(n, node);
      }
      if (nodes.size === numbers.length) return nodes;
      continue;
    }
    if (Date.now() > deadline) {
      throw new ImagepeError('COMMAND_TIMEOUT', `the kernel did not show partition${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${device} within ${Math.round(waitMs / 1000)} s`, {
        hint: 'Check dmesg; the disk may be in use, or its driver may not support partitions (loop devices need --partscan).',
      });
    }
    if (!triedAdd && Date.now() > deadline - (waitMs * 2) / 3) {
      triedAdd = true;
      await run('partx', ['--add', device], { ...runOpts(`adding the partitions of ${device}`), okExitCodes: [0, 1] });
    }
    await sleep(100);
  }
}

/** What makes a filesystem: a partition's or a logical volume's settings (ntfs only on partitions, which have a start). */
type FormatTarget = Pick<ResolvedPartition, 'name' | 'label' | 'uuid' | 'subvolumes' | 'defaultSubvolume'> & { format: ResolvedPartition['format']; type?: string; start?: number };

async function format(part: FormatTarget, node: string, sectorSize: number, opts: RunOptions): Promise<void> {
  const label = part.label;
  const uuid = part.uuid;
  switch (part.format) {
    case 'vfat':
      // UEFI requires FAT32 on the ESP; elsewhere mkfs.vfat picks the FAT size that fits.
      await run('mkfs.vfat', [...(part.type === 'esp' ? ['-F', '32'] : []), ...(label ? ['-n', label] : []), ...(uuid ? ['-i', uuid.replace('-', '')] : []), node], opts);
      return;
    case 'ext4':
      await run('mkfs.ext4', ['-F', '-q', ...(label ? ['-L', label] : []), ...(uuid ? ['-U', uuid] : []), node], opts);
      return;
    case 'xfs':
      await run('mkfs.xfs', ['-f', '-q', ...(label ? ['-L', label] : []), ...(uuid ? ['-m', `uuid=${uuid}`] : []), node], opts);
      return;
    case 'btrfs':
      await run('mkfs.btrfs', ['-f', '-q', ...(label ? ['-L', label] : []), ...(uuid ? ['-U', uuid] : []), node], opts);
      if (part.subvolumes?.length) await makeSubvolumes(part, node, opts);
      return;
    case 'ntfs':
      // Windows boots NTFS only when the boot sector knows where the partition starts.
      await run(
        'mkfs.ntfs',
        ['--fast', '--quiet', '--force', '--sector-size', String(sectorSize), '--partition-start', String(part.start ?? 0), '--heads', '255', '--sectors-per-track', '63', ...(label ? ['--label', label] : []), node],
        opts,
      );
      if (uuid) await run('ntfslabel', [`--new-serial=${uuid}`, node], opts);
      return;
    case 'swap':
      await run('mkswap', [...(label ? ['-L', label] : []), ...(uuid ? ['-U', uuid] : []), node], opts);
      return;
    case 'lvm':
      await createPhysicalVolume(node, opts);
      return;
    case 'none':
      return;
  }
}

/**
 * The layout's btrfs subvolumes, made in order (parents first) on the new filesystem mounted at
 * its top level, then the default one set; read back with `btrfs subvolume list` before the
 * filesystem is unmounted again.
 */
async function makeSubvolumes(part: FormatTarget, node: string, opts: RunOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-btrfs-'));
  try {
    await run('mount', ['-t', 'btrfs', '-o', 'subvolid=5', node, dir], { ...opts, what: `mounting ${node} to make its subvolumes` });
    try {
      for (const v of part.subvolumes!) {
        // A nested subvolume's parent directories inside its parent subvolume (@/var/lib for @/var/lib/machines).
        await mkdir(dirname(join(dir, v.name)), { recursive: true });
        await run('btrfs', ['subvolume', 'create', join(dir, v.name)], { ...opts, what: `making subvolume ${v.name} on ${node}` });
      }
      if (part.defaultSubvolume) await run('btrfs', ['subvolume', 'set-default', join(dir, part.defaultSubvolume)], { ...opts, what: `making ${part.defaultSubvolume} the default subvolume of ${node}` });
      const have = new Set(await listSubvolumes(dir, node, (what) => ({ ...opts, what })));
      const missing = part.subvolumes!.filter((v) => !have.has(v.name)).map((v) => v.name);
      if (missing.length) throw new ImagepeError('VERIFY_FAILED', `${node} lacks subvolume${missing.length > 1 ? 's' : ''} ${missing.join(', ')} after they were made`);
    } finally {
      await unmount(dir, { strict: true, warn: () => undefined });
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

/** `sfdisk --json` of a disk, or undefined when it has no partition table. */
export async function readTable(device: string, runOpts: RunOptsFn): Promise<SfdiskTable | undefined> {
  const r = await run('sfdisk', ['--json', device], { ...runOpts(`reading the partition table of ${device}`), okExitCodes: [0, 1] });
  if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
  return (JSON.parse(r.stdout) as SfdiskJson).partitiontable;
}

/**
 * Reads the table and filesystems back and compares them with the layout; any difference is
 * VERIFY_FAILED. `shown` is the disk as the user named it, `nodes` the partition nodes by number.
 */
export async function readBack(layout: ResolvedLayout, shown: string, device: string, nodes: Map<number, string>, runOpts: RunOptsFn): Promise<Result> {
  const table = await readTable(device, runOpts);
  if (!table) throw new ImagepeError('VERIFY_FAILED', `${shown} has no partition table after partitioning`);
  const filesystems = new Map<number, Record<string, string>>();
  for (const part of layout.partitions) {
    const node = nodes.get(part.number);
    if (node) filesystems.set(part.number, await probeFilesystem(node, runOpts));
  }
  const { differences, partitions } = compareWithLayout(layout, table, filesystems, nodes);
  const lvs = await readBackLogicalVolumes(layout, nodes, (node) => probeFilesystem(node, runOpts), runOpts);
  differences.push(...lvs.differences);
  partitions.push(...lvs.volumes);
  if (differences.length > 0) {
    throw new ImagepeError('VERIFY_FAILED', `${shown} does not match the layout after partitioning:\n${differences.map((d) => `  - ${d}`).join('\n')}`, {
      hint: 'Something else may have written to the disk meanwhile, or a tool ignored an option; check dmesg and try again.',
    });
  }
  return { disk: shown, device, table: layout.table, diskId: table.id ?? '', sectorSize: layout.sectorSize, partitions, warnings: layout.warnings };
}
