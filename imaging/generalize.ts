import { lstat, readdir, readlink, rm, stat, truncate, unlink } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { ImagepeError } from '../core/index.js';

/**
 * The sysprep step for a Linux reference system mounted at ROOT: remove what makes the copy
 * one particular machine. What each deployed machine then has of its own comes from systemd on
 * first boot (machine-id, random seed, leases) or from imagepe's specialize (SSH host keys, which
 * Debian does not make again on boot).
 */
export type GeneralizeAction = 'empty' | 'remove' | 'truncate';

export interface GeneralizeItem {
  /** Path inside the reference system, absolute from its root: "/etc/machine-id". */
  path: string;
  action: GeneralizeAction;
  reason: string;
}

export interface GeneralizeOptions {
  dryRun?: boolean;
}

export interface GeneralizeResult {
  root: string;
  dryRun: boolean;
  items: GeneralizeItem[];
}

interface Rule {
  /** A path or a glob with `*` in its last components, inside the reference system. */
  pattern: string;
  action: GeneralizeAction;
  reason: string;
}

// systemd treats an empty /etc/machine-id as "not yet set" and writes a fresh one on first boot;
// removing the file instead would leave a read-only root without one.
const RULES: readonly Rule[] = [
  { pattern: '/etc/machine-id', action: 'empty', reason: 'machine id (systemd makes a new one on first boot)' },
  { pattern: '/var/lib/dbus/machine-id', action: 'remove', reason: 'D-Bus machine id' },
  { pattern: '/etc/ssh/ssh_host_*', action: 'remove', reason: 'SSH host key (every copy would share it; imagepe deploy makes each machine its own)' },
  { pattern: '/var/lib/systemd/random-seed', action: 'remove', reason: 'systemd random seed' },
  { pattern: '/var/lib/systemd/credential.secret', action: 'remove', reason: 'systemd credential secret' },
  { pattern: '/var/lib/dhcp/*', action: 'remove', reason: 'DHCP lease' },
  { pattern: '/var/lib/dhclient/*', action: 'remove', reason: 'DHCP lease' },
  { pattern: '/var/lib/NetworkManager/*.lease', action: 'remove', reason: 'DHCP lease' },
  { pattern: '/var/lib/NetworkManager/secret_key', action: 'remove', reason: 'NetworkManager host secret' },
  { pattern: '/var/lib/systemd/network/*', action: 'remove', reason: 'systemd-networkd lease' },
  { pattern: '/etc/udev/rules.d/70-persistent-net.rules', action: 'remove', reason: 'persistent network interface names of the reference hardware' },
  { pattern: '/etc/udev/rules.d/70-persistent-cd.rules', action: 'remove', reason: 'persistent CD names of the reference hardware' },
  { pattern: '/var/lib/cloud/instance', action: 'remove', reason: 'cloud-init instance state' },
  { pattern: '/var/lib/cloud/instances', action: 'remove', reason: 'cloud-init instance state' },
  { pattern: '/var/lib/cloud/data', action: 'remove', reason: 'cloud-init instance state' },
  { pattern: '/var/lib/cloud/sem', action: 'remove', reason: 'cloud-init instance state' },
  { pattern: '/var/log/journal/*', action: 'remove', reason: 'journal of the reference machine' },
  { pattern: '/root/.*_history', action: 'remove', reason: 'shell history' },
  { pattern: '/home/*/.*_history', action: 'remove', reason: 'shell history' },
  { pattern: '/root/.lesshst', action: 'remove', reason: 'shell history' },
  { pattern: '/home/*/.lesshst', action: 'remove', reason: 'shell history' },
];

// Log files are truncated, not removed: daemons and logrotate expect them to exist with their
// owners and modes. Rotated copies are removed.
const ROTATED_LOG = /(\.\d+|\.gz|\.xz|\.zst|\.bz2|\.old|-\d{8})$/;

/** Lists (dry run) or removes the machine-specific state of the Linux system mounted at `root`. */
export async function generalize(root: string, options: GeneralizeOptions = {}): Promise<GeneralizeResult> {
  const absRoot = resolve(root);
  await assertNotLiveRoot(absRoot);
  const items: GeneralizeItem[] = [];
  for (const rule of RULES) {
    for (const path of await expand(absRoot, rule.pattern)) items.push({ path, action: rule.action, reason: rule.reason });
  }
  for (const path of await logFiles(absRoot)) {
    if (items.some((i) => path.startsWith(`${i.path}/`) || i.path === path)) continue;
    items.push(ROTATED_LOG.test(path) ? { path, action: 'remove', reason: 'rotated log' } : { path, action: 'truncate', reason: 'log file' });
  }
  const dryRun = options.dryRun ?? false;
  if (dryRun) return { root: absRoot, dryRun, items };
  for (const item of items) {
    const real = await inside(absRoot, item.path, false);
    if (real === undefined) continue;
    if (item.action === 'remove') {
      const s = await lstat(real);
      if (s.isDirectory()) await rm(real, { recursive: true, force: true });
      else await unlink(real);
    } else {
      const s = await lstat(real);
      if (s.isFile()) await truncate(real, 0);
    }
  }
  return { root: absRoot, dryRun, items };
}

async function assertNotLiveRoot(absRoot: string): Promise<void> {
  let target;
  let live;
  try {
    target = await stat(absRoot);
    live = await stat('/');
  } catch (e) {
    throw new ImagepeError('NOT_FOUND', `${absRoot} does not exist`, { cause: e });
  }
  if (!target.isDirectory()) throw new ImagepeError('INVALID_INPUT', `${absRoot} is not a directory`);
  if (target.dev === live.dev && target.ino === live.ino) {
    throw new ImagepeError('REFUSED', `refusing to generalize the running system (${absRoot} is /)`, {
      hint: 'Generalize a reference system mounted elsewhere, for example from the PE: imagepe generalize /mnt/reference',
    });
  }
}

/**
 * Resolves a path of the reference system the way a chroot would: an absolute link inside it
 * points into the reference system, never into the host running imagepe. Returns the host path,
 * or undefined when it does not exist. The last component itself is not followed when
 * `followLast` is false, so a link is acted on, not its target.
 */
async function inside(root: string, guestPath: string, followLast: boolean): Promise<string | undefined> {
  const parts = guestPath.split('/').filter(Boolean);
  let resolved: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = join(root, ...resolved, part);
    let s;
    try {
      s = await lstat(host);
    } catch {
      return undefined;
    }
    if (s.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++hops > 40) return undefined;
      const link = await readlink(host);
      if (isAbsolute(link)) resolved = [];
      parts.unshift(...link.split('/').filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return join(root, ...resolved);
}

/** Expands `*` in a pattern's components against the reference system; dotfiles match only patterns that start with a dot. */
async function expand(root: string, pattern: string): Promise<string[]> {
  let current = ['/'];
  for (const comp of pattern.split('/').filter(Boolean)) {
    const next: string[] = [];
    for (const dir of current) {
      if (!comp.includes('*')) {
        const candidate = posix.join(dir, comp);
        if ((await inside(root, candidate, false)) !== undefined) next.push(candidate);
        continue;
      }
      const hostDir = await inside(root, dir, true);
      if (hostDir === undefined) continue;
      let names: string[];
      try {
        names = await readdir(hostDir);
      } catch {
        continue;
      }
      const re = globToRegExp(comp);
      for (const name of names.sort()) if (re.test(name)) next.push(posix.join(dir, name));
    }
    current = next;
  }
  return current;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '[^/]*');
  return new RegExp(`^${body}$`);
}

async function logFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (guestDir: string): Promise<void> => {
    const hostDir = await inside(root, guestDir, true);
    if (hostDir === undefined) return;
    let names: string[];
    try {
      names = await readdir(hostDir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const guest = posix.join(guestDir, name);
      const s = await lstat(join(hostDir, name));
      if (s.isDirectory()) await walk(guest);
      else if (s.isFile()) out.push(guest);
    }
  };
  await walk('/var/log');
  return out;
}
