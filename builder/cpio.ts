import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** One entry of the initramfs, by its path inside the archive (no leading slash). */
export type TreeEntry =
  | { kind: 'dir'; mode?: number }
  | { kind: 'file'; source: string; size: number; mode: number }
  | { kind: 'data'; data: Buffer; mode: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'char'; major: number; minor: number; mode: number };

export type FileTree = Map<string, TreeEntry>;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * Adds the directories above every entry, so the archive never relies on the kernel to make
 * them (it does not, and a file under a missing directory is silently dropped).
 */
export function withParentDirectories(tree: FileTree): FileTree {
  const out: FileTree = new Map(tree);
  for (const path of tree.keys()) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!out.has(dir)) out.set(dir, { kind: 'dir' });
    }
  }
  return out;
}

/** Archive order: byte order of the paths, which puts every directory before what it holds. */
export function sortedPaths(tree: FileTree): string[] {
  return [...tree.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function header(fields: { ino: number; mode: number; nlink: number; mtime: number; size: number; rdevMajor: number; rdevMinor: number; nameSize: number }): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0').toUpperCase();
  const text =
    '070701' +
    hex(fields.ino) +
    hex(fields.mode) +
    hex(0) + // uid: everything in the PE belongs to root
    hex(0) +
    hex(fields.nlink) +
    hex(fields.mtime) +
    hex(fields.size) +
    hex(0) +
    hex(0) +
    hex(fields.rdevMajor) +
    hex(fields.rdevMinor) +
    hex(fields.nameSize) +
    hex(0);
  return Buffer.from(text, 'ascii');
}

function pad4(length: number): Buffer {
  const rem = length % 4;
  return Buffer.alloc(rem === 0 ? 0 : 4 - rem);
}

/** One archive member: header, name, and (for files and links) its data, each padded to 4 bytes. */
export function cpioMember(name: string, entry: TreeEntry | 'trailer', ino: number, mtime: number, data: Buffer = Buffer.alloc(0)): Buffer[] {
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  let mode = 0;
  let nlink = 1;
  let rdevMajor = 0;
  let rdevMinor = 0;
  let size = 0;
  if (entry !== 'trailer') {
    switch (entry.kind) {
      case 'dir':
        mode = S_IFDIR | (entry.mode ?? 0o755);
        nlink = 2;
        break;
      case 'file':
        mode = S_IFREG | entry.mode;
        size = entry.size;
        break;
      case 'data':
        mode = S_IFREG | entry.mode;
        size = entry.data.length;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        size = Buffer.byteLength(entry.target);
        break;
      case 'char':
        mode = S_IFCHR | entry.mode;
        rdevMajor = entry.major;
        rdevMinor = entry.minor;
        break;
    }
  }
  const head = header({ ino, mode, nlink, mtime: entry === 'trailer' ? 0 : mtime, size, rdevMajor, rdevMinor, nameSize: nameBuf.length });
  const parts = [head, nameBuf, pad4(head.length + nameBuf.length)];
  if (entry !== 'trailer' && entry.kind !== 'file' && size > 0) parts.push(data, pad4(size));
  return parts;
}

async function write(out: Writable, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/**
 * Writes a newc archive with sorted names, inode numbers in that order, one mtime for all
 * members and root ownership, so the same tree always gives the same bytes (cpio(1) would take
 * inode numbers and times from the staging directory).
 */
export async function writeCpio(tree: FileTree, outPath: string, mtime: number): Promise<void> {
  const out = createWriteStream(outPath);
  const full = withParentDirectories(tree);
  let ino = 1;
  for (const path of sortedPaths(full)) {
    const entry = full.get(path)!;
    const data = entry.kind === 'data' ? entry.data : entry.kind === 'symlink' ? Buffer.from(entry.target) : undefined;
    for (const part of cpioMember(path, entry, ino++, mtime, data)) await write(out, part);
    if (entry.kind === 'file') {
      let copied = 0;
      for await (const chunk of createReadStream(entry.source)) {
        copied += (chunk as Buffer).length;
        await write(out, chunk as Buffer);
      }
      if (copied !== entry.size) throw new Error(`${entry.source} changed size while it was being archived`);
      await write(out, pad4(entry.size));
    }
  }
  for (const part of cpioMember('TRAILER!!!', 'trailer', 0, 0)) await write(out, part);
  out.end();
  await once(out, 'finish');
}
