import { run, type RunOptions } from '../core/index.js';

type RunOptsFn = (what: string) => RunOptions;

/**
 * The subvolume paths of the btrfs filesystem `dir` is in, as `btrfs subvolume list` prints them
 * (from the top level when `dir` is the top level mounted with subvolid=5: @, @home, @/srv).
 * `node` names the device in messages. Throws COMMAND_FAILED when btrfs cannot list them.
 */
export async function listSubvolumes(dir: string, node: string, runOpts: RunOptsFn): Promise<string[]> {
  const r = await run('btrfs', ['subvolume', 'list', dir], runOpts(`listing the subvolumes of ${node}`));
  return r.stdout.split('\n').flatMap((l) => subvolumePath(l) ?? []);
}

/** The path of the filesystem's default subvolume, or undefined when it is the top level ("ID 5 (FS_TREE)"). */
export async function defaultSubvolume(dir: string, node: string, runOpts: RunOptsFn): Promise<string | undefined> {
  const r = await run('btrfs', ['subvolume', 'get-default', dir], runOpts(`reading the default subvolume of ${node}`));
  return subvolumePath(r.stdout.trim());
}

// "ID 256 gen 9 top level 5 path @": the path is the rest of the line after " path ".
function subvolumePath(line: string): string | undefined {
  return / path (.+)$/.exec(line)?.[1];
}
