import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpioMember, sortedPaths, withParentDirectories, writeCpio, type FileTree } from './cpio.js';

/** Reads a newc archive back: name, mode, mtime, rdev and data of each member. */
function readNewc(buf: Buffer) {
  const out: { name: string; mode: number; mtime: number; ino: number; rdev: [number, number]; data: Buffer }[] = [];
  let p = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    const h = buf.toString('ascii', p, p + 110);
    expect(h.slice(0, 6)).toBe('070701');
    const f = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = f(11);
    const size = f(6);
    const name = buf.toString('utf8', p + 110, p + 110 + nameSize - 1);
    const dataStart = align(p + 110 + nameSize);
    if (name === 'TRAILER!!!') break;
    out.push({ name, mode: f(1), mtime: f(5), ino: f(0), rdev: [f(9), f(10)], data: buf.subarray(dataStart, dataStart + size) });
    p = align(dataStart + size);
  }
  return out;
}

describe('cpio newc writer', () => {
  it('pads header+name and data to 4 bytes', () => {
    const parts = cpioMember('ab', { kind: 'data', data: Buffer.from('xyz'), mode: 0o644 }, 1, 0, Buffer.from('xyz'));
    const total = Buffer.concat(parts);
    expect((110 + 3) % 4).not.toBe(0);
    expect(total.length % 4).toBe(0);
    expect(total.toString('ascii', 0, 6)).toBe('070701');
  });

  it('adds parent directories and sorts parents first', () => {
    const tree: FileTree = new Map([
      ['usr/bin/sh', { kind: 'symlink', target: 'busybox' }],
      ['a-b', { kind: 'dir' }],
    ]);
    expect(sortedPaths(withParentDirectories(tree))).toEqual(['a-b', 'usr', 'usr/bin', 'usr/bin/sh']);
  });

  it('writes the same bytes for the same tree, with fixed mtimes and device nodes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cpio-test-'));
    try {
      const src = join(dir, 'src.txt');
      await (await import('node:fs/promises')).writeFile(src, 'hello world');
      const tree: FileTree = new Map([
        ['init', { kind: 'data', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 }],
        ['dev/console', { kind: 'char', major: 5, minor: 1, mode: 0o600 }],
        ['etc/greeting', { kind: 'file', source: src, size: 11, mode: 0o644 }],
        ['bin', { kind: 'symlink', target: 'usr/bin' }],
      ]);
      await writeCpio(tree, join(dir, 'a.cpio'), 1_700_000_000);
      await writeCpio(new Map([...tree].reverse()), join(dir, 'b.cpio'), 1_700_000_000);
      const a = await readFile(join(dir, 'a.cpio'));
      expect(a.equals(await readFile(join(dir, 'b.cpio')))).toBe(true);
      const members = readNewc(a);
      expect(members.map((m) => m.name)).toEqual(['bin', 'dev', 'dev/console', 'etc', 'etc/greeting', 'init']);
      expect(members.every((m) => m.mtime === 1_700_000_000)).toBe(true);
      const byName = Object.fromEntries(members.map((m) => [m.name, m]));
      expect(byName['etc/greeting']!.data.toString()).toBe('hello world');
      expect(byName['bin']!.data.toString()).toBe('usr/bin');
      expect(byName['bin']!.mode).toBe(0o120777);
      expect(byName['dev/console']!.mode).toBe(0o020600);
      expect(byName['dev/console']!.rdev).toEqual([5, 1]);
      expect(byName['init']!.mode).toBe(0o100755);
      expect(new Set(members.map((m) => m.ino)).size).toBe(members.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
