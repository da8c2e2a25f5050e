import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run } from '../../core/index.js';
import { pathInside as inside } from '../system/paths.js';

export interface LinuxSpecialize {
  hostname?: string;
  machineId: 'new' | 'keep' | 'empty';
  removeSshHostKeys: boolean;
  files: readonly { path: string; content?: string | undefined; base64?: string | undefined; mode: number | string }[];
}

export interface SpecializeResult {
  hostname: string | undefined;
  machineId: string | undefined;
  removed: string[];
  written: string[];
}

/** A fresh machine id in the form systemd and D-Bus use: 32 lower-case hex digits, a v4 UUID without dashes. */
export function newMachineId(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b.toString('hex');
}

/** The hosts file with the 127.0.1.1 line (Debian's convention for the own name) naming `hostname`. */
export function hostsWithName(text: string, hostname: string): string {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const line = `127.0.1.1\t${hostname}`;
  const at = lines.findIndex((l) => /^127\.0\.1\.1\s/.test(l));
  if (at >= 0) lines[at] = line;
  else {
    const localhost = lines.findIndex((l) => /^127\.0\.0\.1\s/.test(l));
    lines.splice(localhost >= 0 ? localhost + 1 : lines.length, 0, line);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Makes the applied tree at `root` this machine: its hostname, a machine id of its own, no SSH
 * host keys shared with every other copy, and the plan's files. Paths are joined under root
 * after checking that no symlink in the image leads them outside it.
 */
export async function specializeLinux(root: string, spec: LinuxSpecialize): Promise<SpecializeResult> {
  const result: SpecializeResult = { hostname: spec.hostname, machineId: undefined, removed: [], written: [] };
  if (spec.hostname) {
    await writeInside(root, '/etc/hostname', `${spec.hostname}\n`, 0o644);
    const hosts = await readFile(await inside(root, '/etc/hosts'), 'utf8').catch(() => '127.0.0.1\tlocalhost\n');
    await writeInside(root, '/etc/hosts', hostsWithName(hosts, spec.hostname), 0o644);
    result.written.push('/etc/hostname', '/etc/hosts');
  }
  if (spec.machineId !== 'keep') {
    const id = spec.machineId === 'new' ? newMachineId() : '';
    await writeInside(root, '/etc/machine-id', id ? `${id}\n` : '', 0o444);
    result.written.push('/etc/machine-id');
    // D-Bus keeps its own copy on older systems; a stale one would differ from /etc/machine-id.
    // Only the folder is resolved: the file itself is often a link to /etc/machine-id, and
    // following it would remove the id just written.
    const dbus = join(await inside(root, '/var/lib/dbus'), 'machine-id');
    const st = await lstat(dbus).catch(() => undefined);
    if (st?.isFile()) {
      await rm(dbus);
      result.removed.push('/var/lib/dbus/machine-id');
    }
    if (id) result.machineId = id;
  }
  if (spec.removeSshHostKeys) {
    const sshDir = await inside(root, '/etc/ssh');
    for (const name of await readdir(sshDir).catch(() => [] as string[])) {
      if (name.startsWith('ssh_host_')) {
        await rm(join(sshDir, name), { force: true });
        result.removed.push(`/etc/ssh/${name}`);
      }
    }
  }
  for (const f of spec.files) {
    const data = f.base64 !== undefined ? Buffer.from(f.base64, 'base64') : Buffer.from(f.content ?? '', 'utf8');
    await writeInside(root, f.path, data, parseMode(f.mode));
    result.written.push(f.path);
  }
  return result;
}

export function parseMode(mode: number | string): number {
  return typeof mode === 'number' ? mode : parseInt(mode, 8);
}

async function writeInside(root: string, path: string, data: string | Buffer, mode: number): Promise<void> {
  const host = await inside(root, path);
  await mkdir(dirname(host), { recursive: true });
  await rm(host, { force: true });
  await writeFile(host, data, { mode });
  await chmod(host, mode);
}

/**
 * Places the Windows answer file at Windows/Panther/unattend.xml on an NTFS volume, through an
 * ntfs-3g (FUSE) mount: Windows setup reads it there in the specialize and oobeSystem passes.
 */
export async function placeUnattend(ntfsNode: string, xml: string, signal?: AbortSignal): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-ntfs-'));
  const opts = { timeoutMs: 60_000, ...(signal ? { signal } : {}) };
  try {
    await run('mount', ['-t', 'ntfs-3g', ntfsNode, dir], { ...opts, what: `mounting ${ntfsNode} to place unattend.xml` });
    try {
      // NTFS is case-insensitive but ntfs-3g is not: use the Windows directory as the image spells it.
      const entries = await readdir(dir);
      const windows = entries.find((e) => e.toLowerCase() === 'windows') ?? 'Windows';
      const panther = join(dir, windows, 'Panther');
      await mkdir(panther, { recursive: true });
      await writeFile(join(panther, 'unattend.xml'), xml, 'utf8');
    } finally {
      await run('umount', [dir], { ...opts, what: `unmounting ${ntfsNode}` });
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
  return 'Windows/Panther/unattend.xml';
}
