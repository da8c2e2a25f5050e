import { existsSync } from 'node:fs';
import { readFile, readdir, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImagepeError, ignoreEvents, pathKind, run, type EventSink, type RunOptions } from '../core/index.js';
import { diskUses } from './in-use.js';
import { renderSfdiskScript } from './planner.js';
import type { Plan, PlannedPartition, Result } from './types.js';
import { compareWithPlan, type SfdiskJson } from './verify.js';

export interface ApplyOptions {
  events?: EventSink;
  signal?: AbortSignal;
  /** How long to wait for the kernel to show the new partitions (default 15 s). */
  partitionWaitMs?: number;
  /** Timeout for each mkfs (default 30 min: some mkfs tools write metadata across the whole partition). */
  formatTimeoutMs?: number;
}

const OPERATION = 'partition';

/**
 * Writes the planned table and filesystems to the disk, then reads both back and compares them
 * with the plan. A disk that holds anything is refused unless the plan says wipe; the disk the
 * system runs from and disks with mounted filesystems are always refused.
 */
export async function apply(plan: Plan, options: ApplyOptions = {}): Promise<Result> {
  const events = options.events ?? ignoreEvents;
  const runOpts = (what: string, timeoutMs = 60_000): RunOptions => ({ what, timeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
  const step = (name: string, status: 'started' | 'done' | 'skipped', detail?: string) =>
    events({ type: 'step', operation: OPERATION, step: name, status, ...(detail !== undefined ? { detail } : {}) });

  const kind = await pathKind(plan.disk.path);
  let loop: string | undefined;
  try {
    let device: string;
    if (kind === 'file') {
      const attached = (await run('losetup', ['--associated', plan.disk.path, '--noheadings', '--output', 'NAME'], runOpts('checking loop devices'))).stdout.trim();
      if (attached) {
        throw new ImagepeError('DISK_IN_USE', `disk image ${plan.disk.path} is already attached as ${attached.split('\n').join(', ')}`, {
          hint: 'Detach it (losetup -d) after unmounting whatever uses it.',
        });
      }
      step('attach', 'started', plan.disk.path);
      const args = ['--find', '--show', '--partscan', ...(plan.sectorSize !== 512 ? ['--sector-size', String(plan.sectorSize)] : []), plan.disk.path];
      loop = (await run('losetup', args, runOpts(`attaching ${plan.disk.path}`))).stdout.trim();
      device = loop;
      step('attach', 'done', loop);
    } else if (kind === 'block-device') {
      device = await realpath(plan.disk.path);
    } else if (kind === 'missing') {
      throw new ImagepeError('NOT_FOUND', `disk ${plan.disk.path} does not exist`);
    } else {
      throw new ImagepeError('INVALID_INPUT', `${plan.disk.path} is neither a block device nor a disk image file`);
    }

    step('check', 'started', device);
    await checkGeometry(device, plan, runOpts);
    await refuseInUse(device, plan.disk.path);
    // The kernel's idea of the partitions may be stale (no udev, or a scan skipped at attach).
    await run('partx', ['--update', device], { ...runOpts(`reading the partitions of ${device}`), okExitCodes: [0, 1] });
    const holds = await whatItHolds(device, runOpts);
    if (holds.length > 0 && !plan.wipe) {
      throw new ImagepeError('REFUSED', `${plan.disk.path} is not blank: it holds ${holds.join('; ')}`, {
        hint: 'Set wipe: true in the layout to erase it, or choose another disk.',
      });
    }
    step('check', 'done');

    if (holds.length > 0) {
      step('wipe', 'started', holds.join('; '));
      for (const node of await partitionNodes(device)) {
        await run('wipefs', ['--all', '--quiet', node], runOpts(`erasing signatures on ${node}`));
      }
      await run('wipefs', ['--all', '--quiet', device], runOpts(`erasing signatures on ${device}`));
      step('wipe', 'done');
    } else {
      step('wipe', 'skipped', 'the disk is blank');
    }

    step('write-table', 'started', `${plan.table}, ${plan.partitions.length} partitions`);
    await run('sfdisk', ['--wipe', 'always', '--wipe-partitions', 'always', device], {
      ...runOpts(`writing the partition table on ${device}`, 120_000),
      input: renderSfdiskScript(plan),
    });
    step('write-table', 'done');

    step('wait-partitions', 'started');
    const nodes = await waitForPartitions(device, plan.partitions.map((p) => p.number), options.partitionWaitMs ?? 15_000, runOpts);
    step('wait-partitions', 'done', [...nodes.values()].join(' '));

    const toFormat = plan.partitions.filter((p) => p.format !== 'none');
    let done = 0;
    for (const part of toFormat) {
      const node = nodes.get(part.number)!;
      step(`format ${part.name}`, 'started', `${part.format} on ${node}`);
      await format(part, node, plan, runOpts(`formatting ${part.name} (${node}) as ${part.format}`, options.formatTimeoutMs ?? 30 * 60_000));
      done++;
      events({ type: 'progress', operation: OPERATION, phase: 'Formatting', unit: 'parts', done, total: toFormat.length });
      step(`format ${part.name}`, 'done');
    }

    step('verify', 'started');
    const result = await readBack(plan, plan.disk.path, device, nodes, runOpts);
    step('verify', 'done');
    return result;
  } finally {
    if (loop) await detach(loop, events);
  }
}

type RunOptsFn = (what: string, timeoutMs?: number) => RunOptions;

async function checkGeometry(device: string, plan: Plan, runOpts: RunOptsFn): Promise<void> {
  const size = Number((await run('blockdev', ['--getsize64', device], runOpts(`reading the size of ${device}`))).stdout.trim());
  const ss = Number((await run('blockdev', ['--getss', device], runOpts(`reading the sector size of ${device}`))).stdout.trim());
  if (ss !== plan.sectorSize || Math.floor(size / ss) !== plan.totalSectors) {
    throw new ImagepeError(
      'REFUSED',
      `${plan.disk.path} is not the disk the plan was made for: it has ${Math.floor(size / ss)} sectors of ${ss} bytes, the plan ${plan.totalSectors} of ${plan.sectorSize}`,
      { hint: 'Plan again against the disk as it is now.' },
    );
  }
}

/** The kernel names of the partitions of `device` that exist right now, as /dev paths. */
async function partitionNodes(device: string): Promise<string[]> {
  const name = basename(device);
  const dir = `/sys/block/${name}`;
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries.filter((e) => e.startsWith(name) && existsSync(join(dir, e, 'partition'))).map((e) => `/dev/${e}`);
}

/** major:minor of the disk and each of its partitions, as /proc/self/mountinfo and sysfs write them. */
async function deviceNumbers(device: string): Promise<Map<string, string>> {
  const name = basename(device);
  const out = new Map<string, string>();
  const own = await readFile(`/sys/block/${name}/dev`, 'utf8').catch(() => undefined);
  if (own) out.set(own.trim(), device);
  for (const node of await partitionNodes(device)) {
    const dev = await readFile(`/sys/block/${name}/${basename(node)}/dev`, 'utf8').catch(() => undefined);
    if (dev) out.set(dev.trim(), node);
  }
  return out;
}

/**
 * Refuses a partition (only whole disks are partitioned), the disk the system runs from, and any
 * disk with a mounted filesystem, active swap or a device-mapper/RAID holder on it.
 */
async function refuseInUse(device: string, shown: string): Promise<void> {
  const name = basename(device);
  if (existsSync(`/sys/class/block/${name}/partition`)) {
    throw new ImagepeError('REFUSED', `${shown} is a partition, not a disk`, { hint: 'Name the whole disk: /dev/sda, not /dev/sda1.' });
  }
  if (!existsSync(`/sys/block/${name}`)) {
    throw new ImagepeError('REFUSED', `${shown} is not a whole disk the kernel knows (/sys/block/${name} is missing)`);
  }
  const devices = await deviceNumbers(device);
  const swaps: string[] = [];
  const swapText = await readFile('/proc/swaps', 'utf8').catch(() => '');
  for (const line of swapText.split('\n').slice(1)) {
    const file = line.split(/\s+/)[0];
    if (file) swaps.push(await realpath(file).catch(() => file));
  }
  const holders = new Map<string, string[]>();
  for (const node of devices.values()) {
    holders.set(node, await readdir(`/sys/class/block/${basename(node)}/holders`).catch(() => [] as string[]));
  }
  const uses = diskUses({ devices, mountinfo: await readFile('/proc/self/mountinfo', 'utf8'), swaps, holders });
  if (uses.system) {
    throw new ImagepeError('REFUSED', `${shown} is the disk the system runs from (${uses.system})`, {
      hint: 'Partition another disk; imagepe never rewrites the running system.',
    });
  }
  if (uses.uses.length > 0) {
    throw new ImagepeError('DISK_IN_USE', `${shown} is in use: ${uses.uses.join(', ')}`, { hint: 'Unmount, swapoff or deactivate what uses it first.' });
  }
}

/** Names what a disk holds, in words: its partition table and the filesystems on its partitions. */
async function whatItHolds(device: string, runOpts: RunOptsFn): Promise<string[]> {
  const out: string[] = [];
  const sigs = await signatures(device, runOpts);
  const table = sigs.find((s) => s === 'gpt' || s === 'dos' || s === 'PMBR');
  const parts = await partitionNodes(device);
  if (table) out.push(`a ${table === 'dos' ? 'MBR' : 'GPT'} partition table with ${parts.length} partition${parts.length === 1 ? '' : 's'}`);
  for (const s of sigs.filter((s) => s !== 'gpt' && s !== 'dos' && s !== 'PMBR')) out.push(`a ${s} signature on the whole disk`);
  for (const node of parts) {
    const info = await probe(node, runOpts);
    if (info.TYPE) out.push(`${info.TYPE}${info.LABEL ? ` "${info.LABEL}"` : ''} on ${node}`);
  }
  return out;
}

async function signatures(device: string, runOpts: RunOptsFn): Promise<string[]> {
  const r = await run('wipefs', ['--json', device], runOpts(`reading signatures on ${device}`));
  if (!r.stdout.trim()) return [];
  const data = JSON.parse(r.stdout) as { signatures?: { type?: string }[] };
  return [...new Set((data.signatures ?? []).map((s) => s.type ?? '?'))];
}

/** blkid's low-level probe: reads the device itself, never a cache that may be stale. */
export async function probe(node: string, runOpts: RunOptsFn): Promise<Record<string, string>> {
  const r = await run('blkid', ['--probe', '--output', 'export', node], { ...runOpts(`probing ${node}`), okExitCodes: [0, 2] });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
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

async function format(part: PlannedPartition, node: string, plan: Plan, opts: RunOptions): Promise<void> {
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
    case 'ntfs':
      // Windows boots NTFS only when the boot sector knows where the partition starts.
      await run(
        'mkfs.ntfs',
        ['--fast', '--quiet', '--force', '--sector-size', String(plan.sectorSize), '--partition-start', String(part.start), '--heads', '255', '--sectors-per-track', '63', ...(label ? ['--label', label] : []), node],
        opts,
      );
      if (uuid) await run('ntfslabel', [`--new-serial=${uuid}`, node], opts);
      return;
    case 'swap':
      await run('mkswap', [...(label ? ['-L', label] : []), ...(uuid ? ['-U', uuid] : []), node], opts);
      return;
    case 'none':
      return;
  }
}

/** Reads the table and filesystems back; any way they differ from the plan is an error. */
async function readBack(plan: Plan, disk: string, device: string, nodes: Map<number, string>, runOpts: RunOptsFn): Promise<Result> {
  const json = JSON.parse((await run('sfdisk', ['--json', device], runOpts(`reading the partition table of ${device}`))).stdout) as SfdiskJson;
  const table = json.partitiontable;
  const filesystems = new Map<number, Record<string, string>>();
  for (const part of plan.partitions) {
    const node = nodes.get(part.number);
    if (node) filesystems.set(part.number, await probe(node, runOpts));
  }
  const { differences, partitions } = compareWithPlan(plan, table, filesystems, nodes);
  if (differences.length > 0) {
    throw new ImagepeError('VERIFY_FAILED', `${disk} does not match the plan after partitioning:\n${differences.map((d) => `  - ${d}`).join('\n')}`, {
      hint: 'Something else may have written to the disk meanwhile, or a tool ignored an option; check dmesg and try again.',
    });
  }
  return { disk, device, table: plan.table, diskId: table.id ?? '', sectorSize: plan.sectorSize, partitions, warnings: plan.warnings };
}

async function detach(loop: string, events: EventSink): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await run('losetup', ['--detach', loop], { what: `detaching ${loop}`, timeoutMs: 30_000 });
      return;
    } catch {
      await sleep(200 * (attempt + 1));
    }
  }
  events({ type: 'message', operation: OPERATION, level: 'warning', text: `could not detach ${loop}; detach it with losetup -d ${loop}` });
}
