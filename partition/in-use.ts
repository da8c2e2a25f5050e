/** Mount points that mean "the running system lives here": partitioning them would destroy it. */
const SYSTEM_MOUNTS = new Set(['/', '/boot', '/boot/efi', '/efi', '/usr']);

export interface DiskUses {
  /** Set when the disk holds the running system: what is mounted where. */
  system?: string;
  /** Every other use: mounts, swap, device-mapper or RAID holders. */
  uses: string[];
}

export interface DiskUseFacts {
  /** major:minor of the disk and each partition, mapped to its /dev node. */
  devices: Map<string, string>;
  /** The text of /proc/self/mountinfo. */
  mountinfo: string;
  /** Device nodes (links resolved) of the active swap areas. */
  swaps: string[];
  /** Holders (dm-0, md0) of the disk and each partition, by /dev node. */
  holders: Map<string, string[]>;
}

/**
 * What keeps a disk from being partitioned, decided from facts gathered elsewhere. Mounts are
 * matched by device number rather than by source path, which may be a link, a by-uuid name or
 * "/dev/root".
 */
export function diskUses(facts: DiskUseFacts): DiskUses {
  const result: DiskUses = { uses: [] };
  for (const line of facts.mountinfo.split('\n')) {
    const f = line.split(' ');
    const majmin = f[2];
    const node = majmin === undefined ? undefined : facts.devices.get(majmin);
    if (!node) continue;
    const at = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (SYSTEM_MOUNTS.has(at) && result.system === undefined) result.system = `${node} is mounted at ${at}`;
    result.uses.push(`${node} on ${at}`);
  }
  const nodes = new Set(facts.devices.values());
  for (const swap of facts.swaps) if (nodes.has(swap)) result.uses.push(`${swap} as swap`);
  for (const [node, holders] of facts.holders) if (holders.length > 0) result.uses.push(`${node} held by ${holders.join(', ')}`);
  return result;
}
