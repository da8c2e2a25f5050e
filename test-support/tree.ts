import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { run } from '../core/index.js';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `imagepe-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A sparse file of `size` bytes: a blank disk image that costs no space until written. */
export async function sparseFile(path: string, size: number): Promise<string> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
  return path;
}

/**
 * A tree with every kind of thing a Linux root holds, so a capture/apply round trip that loses
 * any metadata shows up: owners, odd modes, setuid, symlinks (relative, absolute, dangling), hard
 * links, xattrs in the user and trusted namespaces, a POSIX ACL, device nodes, a FIFO, a sparse
 * file, empty directories, and names that are not ASCII. Needs root (mknod, chown, trusted.*).
 */
export async function makeRichTree(root: string): Promise<void> {
  await mkdir(join(root, 'etc/ssh'), { recursive: true });
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await mkdir(join(root, 'var/empty/deeper'), { recursive: true });
  await mkdir(join(root, 'dev'), { recursive: true });
  await mkdir(join(root, 'home/ünïcødé ✓'), { recursive: true });
  await writeFile(join(root, 'etc/hostname'), 'reference\n');
  await writeFile(join(root, 'etc/ssh/sshd_config'), 'PermitRootLogin no\n');
  await chmod(join(root, 'etc/ssh'), 0o700);
  await writeFile(join(root, 'usr/bin/tool'), '#!/bin/sh\necho tool\n');
  // chown clears the setuid bit, so it comes first.
  await chown(join(root, 'usr/bin/tool'), 0, 50);
  await chmod(join(root, 'usr/bin/tool'), 0o4755);
  await writeFile(join(root, 'home/ünïcødé ✓/naïve résumé.txt'), 'Grüße, 世界\n');
  await chown(join(root, 'home/ünïcødé ✓'), 1000, 1000);
  await chown(join(root, 'home/ünïcødé ✓/naïve résumé.txt'), 1000, 1000);
  await chmod(join(root, 'home/ünïcødé ✓/naïve résumé.txt'), 0o600);
  await symlink('hostname', join(root, 'etc/hostname.link'));
  await symlink('/etc/hostname', join(root, 'etc/absolute.link'));
  await symlink('does-not-exist', join(root, 'etc/dangling.link'));
  await link(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-hardlink'));
  // 3 MiB of data that compresses poorly, and a duplicate of it that a WIM stores once.
  const random = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < random.length; i += 4) random.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  await writeFile(join(root, 'usr/bin/blob'), random);
  await writeFile(join(root, 'var/blob-copy'), random);
  // Sparse: 64 MiB of holes around a little data.
  await writeFile(join(root, 'var/sparse.img'), 'start');
  await truncate(join(root, 'var/sparse.img'), 64 * 1024 * 1024);
  await run('setfattr', ['-n', 'user.origin', '-v', 'reference', join(root, 'etc/hostname')]);
  await run('setfattr', ['-n', 'trusted.imagepe', '-v', '0x00ff10', join(root, 'etc/hostname')]);
  await run('setfacl', ['-m', 'u:1000:r', join(root, 'etc/ssh/sshd_config')]);
  await run('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
  await run('mknod', [join(root, 'dev/loop9'), 'b', '7', '9']);
  await run('mkfifo', [join(root, 'dev/initctl')]);
  const when = new Date('2024-02-29T12:34:56.789Z');
  await utimes(join(root, 'etc/hostname'), when, when);
}

export interface EntrySnapshot {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: number;
  mtimeMs?: number;
  /** Other paths of the tree that are the same inode. */
  hardLinks?: string[];
  xattrs: Record<string, string>;
}

/** Everything that a faithful copy of a tree must keep, keyed by path relative to the root. */
export async function snapshotTree(root: string): Promise<Record<string, EntrySnapshot>> {
  const out: Record<string, EntrySnapshot> = {};
  const inodes = new Map<string, string[]>();
  const xattrs = await readXattrs(root);
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const s = await lstat(path);
      const type = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : s.isFIFO() ? 'fifo' : 'socket';
      const e: EntrySnapshot = { type, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, xattrs: xattrs[rel] ?? {} };
      if (type === 'file') {
        e.size = s.size;
        e.sha256 = createHash('sha256').update(await readFile(path)).digest('hex');
        e.mtimeMs = Math.floor(s.mtimeMs);
        if (s.nlink > 1) inodes.set(String(s.ino), [...(inodes.get(String(s.ino)) ?? []), rel]);
      }
      if (type === 'symlink') e.target = await readlink(path);
      if (type === 'char' || type === 'block') e.rdev = s.rdev;
      out[rel] = e;
      if (type === 'dir') await walk(path);
    }
  };
  await walk(root);
  for (const group of inodes.values()) for (const p of group) out[p]!.hardLinks = group.filter((q) => q !== p);
  return out;
}

async function readXattrs(root: string): Promise<Record<string, Record<string, string>>> {
  const r = await run('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { okExitCodes: [0, 1] });
  const out: Record<string, Record<string, string>> = {};
  let current: string | undefined;
  for (const line of r.stdout.split('\n')) {
    const file = /^# file: (.*)$/.exec(line);
    if (file) {
      current = relative(root, unescapeGetfattr(file[1]!));
      continue;
    }
    const kv = /^([^=]+)=(.*)$/.exec(line);
    if (kv && current !== undefined) (out[current] ??= {})[kv[1]!] = kv[2]!;
  }
  return out;
}

function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    const esc = /^\\([0-7]{3})/.exec(s.slice(i, i + 4));
    if (esc) {
      bytes.push(parseInt(esc[1]!, 8));
      i += 4;
    } else {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Allocated bytes of a file: a sparse file allocates far less than its size. */
export async function allocatedBytes(path: string): Promise<number> {
  const s = await lstat(path);
  return s.blocks * 512;
}
