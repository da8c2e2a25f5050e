import { existsSync } from 'node:fs';
import { readFile, readdir, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ImagepeError, run, type RunOptions } from '../core/index.js';
import { diskUses } from './in-use.js';

type RunOptsFn = (what: string, timeoutMs?: number) => RunOptions;

/** The kernel names of the partitions of `device` that exist right now, as /dev paths. */
export async function partitionNodes(device: string): Promise<string[]> {
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
 * disk with a mounted filesystem, active swap or a device-mapper/RAID holder on it: REFUSED for
 * the first two, DISK_IN_USE with every use named for the rest. `shown` is the disk as the user
 * named it (an image file rather than its loop device).
 */
export async function assertDiskFree(device: string, shown: string): Promise<void> {
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
      hint: 'Choose another disk; imagepe never rewrites the running system.',
    });
  }
  if (uses.uses.length > 0) {
    throw new ImagepeError('DISK_IN_USE', `${shown} is in use: ${uses.uses.join(', ')}`, { hint: 'Unmount, swapoff or deactivate what uses it first.' });
  }
}

/**
 * Looks into one filesystem for what a caller knows to recognise (the agent: an unfinished or a
 * finished deploy of its own) and says it in words, or undefined. It must not write.
 */
export type ContentProbe = (node: string, fsType: string) => Promise<string | undefined>;

/**
 * What a disk holds, in words, read without writing: its partition table with the number of
 * partitions, a signature on the whole disk, and each partition's filesystem with its label,
 * plus what `look` recognises inside. Empty for a blank disk. The kernel's view of the
 * partitions is refreshed first (no udev in the PE, or a scan skipped at attach).
 *
 * One line each: `a GPT partition table with 3 partitions`, `ext4 on /dev/sda3 labelled "root"`,
 * `xfs on the whole disk`.
 */
export async function describeContents(device: string, runOpts: RunOptsFn, look?: ContentProbe): Promise<string[]> {
  await run('partx', ['--update', device], { ...runOpts(`reading the partitions of ${device}`), okExitCodes: [0, 1] });
  const out: string[] = [];
  const sigs = await signatures(device, runOpts);
  const isTable = (s: string) => s === 'gpt' || s === 'dos' || s === 'PMBR';
  const table = sigs.find((s) => s === 'gpt' || s === 'dos') ?? sigs.find(isTable);
  const parts = await partitionNodes(device);
  if (table) out.push(`${table === 'dos' ? 'an MBR' : 'a GPT'} partition table with ${parts.length} partition${parts.length === 1 ? '' : 's'}`);
  for (const s of sigs.filter((s) => !isTable(s))) out.push(`${s} on the whole disk`);
  for (const node of parts) {
    const info = await probeFilesystem(node, runOpts);
    if (!info.TYPE) continue;
    out.push(`${info.TYPE} on ${node}${info.LABEL ? ` labelled "${info.LABEL}"` : ''}`);
    const found = look ? await look(node, info.TYPE) : undefined;
    if (found) out.push(`${found} on ${node}`);
  }
  return out;
}

async function signatures(device: string, runOpts: RunOptsFn): Promise<string[]> {
  const r = await run('wipefs', ['--json', device], runOpts(`reading signatures on ${device}`));
  if (!r.stdout.trim()) return [];
  const data = JSON.parse(r.stdout) as { signatures?: { type?: string }[] };
  return [...new Set((data.signatures ?? []).map((s) => s.type ?? '?'))];
}

/** blkid's low-level probe of one device: TYPE, LABEL, UUID, PARTUUID...; reads the device itself, never a cache that may be stale. */
export async function probeFilesystem(node: string, runOpts: RunOptsFn): Promise<Record<string, string>> {
  const r = await run('blkid', ['--probe', '--output', 'export', node], { ...runOpts(`probing ${node}`), okExitCodes: [0, 2] });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}
