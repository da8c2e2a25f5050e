import { isElf, readElfDynamic } from './elf.js';

/** A minimal 64-bit ELF: one PT_LOAD covering the file, PT_INTERP, PT_DYNAMIC with a string table. */
function makeElf(opts: { interp?: string; needed: string[]; runpath?: string; rpath?: string; soname?: string; vaddrBase?: number }): Buffer {
  const vbase = opts.vaddrBase ?? 0x400000;
  const strings: string[] = ['', ...(opts.interp ? [] : []), ...opts.needed];
  if (opts.runpath) strings.push(opts.runpath);
  if (opts.rpath) strings.push(opts.rpath);
  if (opts.soname) strings.push(opts.soname);
  const strtab = Buffer.from(strings.join('\0') + '\0');
  const offsetOf = (s: string) => strtab.indexOf(Buffer.from(`\0${s}\0`)) + 1;
  const phnum = 3 + (opts.interp ? 1 : 0);
  const phoff = 64;
  const interpOff = phoff + 56 * phnum;
  const interp = Buffer.from(`${opts.interp ?? ''}\0`);
  const strtabOff = interpOff + interp.length;
  const dynEntries: [number, number][] = [];
  for (const n of opts.needed) dynEntries.push([1, offsetOf(n)]);
  if (opts.soname) dynEntries.push([14, offsetOf(opts.soname)]);
  if (opts.runpath) dynEntries.push([29, offsetOf(opts.runpath)]);
  if (opts.rpath) dynEntries.push([15, offsetOf(opts.rpath)]);
  dynEntries.push([5, vbase + strtabOff], [0, 0]);
  const dynOff = strtabOff + strtab.length + ((8 - ((strtabOff + strtab.length) % 8)) % 8);
  const dyn = Buffer.alloc(16 * dynEntries.length);
  dynEntries.forEach(([t, v], i) => {
    dyn.writeBigInt64LE(BigInt(t), i * 16);
    dyn.writeBigUInt64LE(BigInt(v), i * 16 + 8);
  });
  const total = dynOff + dyn.length;
  const b = Buffer.alloc(total);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2;
  b[5] = 1;
  b.writeBigUInt64LE(BigInt(phoff), 32);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(phnum, 56);
  let ph = phoff;
  const phdr = (type: number, off: number, vaddr: number, size: number) => {
    b.writeUInt32LE(type, ph);
    b.writeBigUInt64LE(BigInt(off), ph + 8);
    b.writeBigUInt64LE(BigInt(vaddr), ph + 16);
    b.writeBigUInt64LE(BigInt(size), ph + 32);
    ph += 56;
  };
  phdr(6, phoff, vbase + phoff, 56 * phnum); // PT_PHDR, ignored
  if (opts.interp) phdr(3, interpOff, vbase + interpOff, interp.length);
  phdr(1, 0, vbase, total);
  phdr(2, dynOff, vbase + dynOff, dyn.length);
  interp.copy(b, interpOff);
  strtab.copy(b, strtabOff);
  dyn.copy(b, dynOff);
  return b;
}

const reader = (b: Buffer) => (offset: number, length: number) => b.subarray(offset, offset + length);

describe('readElfDynamic', () => {
  it('reads the interpreter and DT_NEEDED in order', async () => {
    const elf = makeElf({ interp: '/lib64/ld-linux-x86-64.so.2', needed: ['libz.so.1', 'libc.so.6'] });
    const info = await readElfDynamic(reader(elf));
    expect(info.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(info.needed).toEqual(['libz.so.1', 'libc.so.6']);
    expect(info.runpath).toEqual([]);
  });

  it('reads SONAME and RUNPATH, preferring RUNPATH over RPATH', async () => {
    const info = await readElfDynamic(reader(makeElf({ needed: ['libm.so.6'], soname: 'libfoo.so.1', runpath: '$ORIGIN/../lib:/opt/x', rpath: '/old' })));
    expect(info.interpreter).toBeUndefined();
    expect(info.soname).toBe('libfoo.so.1');
    expect(info.runpath).toEqual(['$ORIGIN/../lib', '/opt/x']);
  });

  it('falls back to RPATH', async () => {
    const info = await readElfDynamic(reader(makeElf({ needed: [], rpath: '/old/lib' })));
    expect(info.runpath).toEqual(['/old/lib']);
  });

  it('rejects files that are not ELF', async () => {
    await expect(readElfDynamic(reader(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(80))), 'script')).rejects.toThrow(/script is not a usable ELF file/);
    expect(isElf(Buffer.from('#!/b'))).toBe(false);
  });

  it('rejects 32-bit ELF', async () => {
    const elf = makeElf({ needed: [] });
    elf[4] = 1;
    await expect(readElfDynamic(reader(elf))).rejects.toThrow(/64-bit/);
  });
});

describe('stripToLoadedBytes', () => {
  it('cuts what no program header covers and drops the section table', async () => {
    const elf = makeElf({ interp: '/lib64/ld-linux-x86-64.so.2', needed: ['libc.so.6'] });
    const withDebug = Buffer.concat([elf, Buffer.alloc(1000, 0xaa)]);
    withDebug.writeBigUInt64LE(BigInt(elf.length + 10), 40);
    withDebug.writeUInt16LE(12, 60);
    const { stripToLoadedBytes } = await import('./elf.js');
    const out = stripToLoadedBytes(withDebug)!;
    expect(out.length).toBe(elf.length);
    expect(out.readBigUInt64LE(40)).toBe(0n);
    expect(out.readUInt16LE(60)).toBe(0);
    expect((await readElfDynamic(reader(out))).needed).toEqual(['libc.so.6']);
    expect(stripToLoadedBytes(out)).toBeUndefined();
    expect(stripToLoadedBytes(Buffer.from('not elf at all'))).toBeUndefined();
  });
});
