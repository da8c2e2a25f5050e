import { open } from 'node:fs/promises';
import { ImagepeError } from '../core/index.js';

/** What the dynamic loader needs to run an ELF file: its interpreter and the libraries it names. */
export interface ElfDynamicInfo {
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; undefined for static binaries and libraries. */
  interpreter: string | undefined;
  /** DT_NEEDED sonames in file order. */
  needed: string[];
  soname: string | undefined;
  /** DT_RUNPATH, or DT_RPATH when there is no RUNPATH, split on ':'. */
  runpath: string[];
}

/** Reads `length` bytes at `offset`; returns fewer only at end of file. */
export type ByteReader = (offset: number, length: number) => Buffer | Promise<Buffer>;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** True when the bytes start with the ELF magic. */
export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/**
 * Parses the program headers and the dynamic section of a 64-bit little-endian ELF file. Only
 * the bytes the loader itself looks at are read, so this costs the same for a 100 MB binary as
 * for a small one, and it needs neither readelf nor ldd (which would run the binary's loader).
 */
export async function readElfDynamic(read: ByteReader, name = 'ELF file'): Promise<ElfDynamicInfo> {
  const header = await read(0, 64);
  if (!isElf(header)) throw notElf(name, 'no ELF magic');
  if (header[4] !== 2) throw notElf(name, 'not a 64-bit ELF file');
  if (header[5] !== 1) throw notElf(name, 'not little-endian');
  const phoff = Number(header.readBigUInt64LE(32));
  const phentsize = header.readUInt16LE(54);
  const phnum = header.readUInt16LE(56);
  const phdrs = await read(phoff, phentsize * phnum);
  if (phdrs.length < phentsize * phnum) throw notElf(name, 'program headers are truncated');

  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let interpreter: string | undefined;
  let dynamic: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const base = i * phentsize;
    const type = phdrs.readUInt32LE(base);
    const offset = Number(phdrs.readBigUInt64LE(base + 8));
    const vaddr = Number(phdrs.readBigUInt64LE(base + 16));
    const filesz = Number(phdrs.readBigUInt64LE(base + 32));
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_INTERP) interpreter = cString(await read(offset, filesz), 0);
    else if (type === PT_DYNAMIC) dynamic = { offset, size: filesz };
  }
  const info: ElfDynamicInfo = { interpreter, needed: [], soname: undefined, runpath: [] };
  if (!dynamic) return info;

  const dyn = await read(dynamic.offset, dynamic.size);
  const entries: { tag: number; value: number }[] = [];
  let strtabAddr: number | undefined;
  for (let p = 0; p + 16 <= dyn.length; p += 16) {
    const tag = Number(dyn.readBigInt64LE(p));
    const value = Number(dyn.readBigUInt64LE(p + 8));
    if (tag === DT_NULL) break;
    if (tag === DT_STRTAB) strtabAddr = value;
    entries.push({ tag, value });
  }
  if (strtabAddr === undefined) return info;
  // DT_STRTAB holds a virtual address; the loadable segment that covers it gives the file offset.
  const seg = loads.find((l) => strtabAddr! >= l.vaddr && strtabAddr! < l.vaddr + l.filesz);
  if (!seg) throw notElf(name, 'the dynamic string table lies outside every loadable segment');
  const strtabOffset = seg.offset + (strtabAddr - seg.vaddr);
  const strtab = await read(strtabOffset, seg.offset + seg.filesz - strtabOffset);

  let rpath: string[] = [];
  for (const { tag, value } of entries) {
    if (tag === DT_NEEDED) info.needed.push(cString(strtab, value));
    else if (tag === DT_SONAME) info.soname = cString(strtab, value);
    else if (tag === DT_RUNPATH) info.runpath = cString(strtab, value).split(':').filter(Boolean);
    else if (tag === DT_RPATH) rpath = cString(strtab, value).split(':').filter(Boolean);
  }
  if (info.runpath.length === 0) info.runpath = rpath;
  return info;
}

/** readElfDynamic on a file, reading only the parts it needs. */
export async function readElfFile(path: string): Promise<ElfDynamicInfo> {
  const handle = await open(path, 'r');
  try {
    return await readElfDynamic(async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    }, path);
  } finally {
    await handle.close();
  }
}

/** Whether a file is ELF, reading its first four bytes only. */
export async function fileIsElf(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    await handle.read(buf, 0, 4, 0);
    return isElf(buf);
  } finally {
    await handle.close();
  }
}

function cString(buf: Buffer, offset: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 ? buf.length : end);
}

function notElf(name: string, why: string): ImagepeError {
  return new ImagepeError('INVALID_INPUT', `${name} is not a usable ELF file: ${why}`, {
    hint: 'Only x86-64 Linux binaries can go into the PE.',
  });
}

/**
 * The file cut after the last byte any program header covers, with the section header table
 * dropped (what ELFkickers' sstrip does). The loader reads program headers only, so the binary
 * runs the same; what goes is debug info and symbol tables: 12 MB of Debian's node. Returns
 * undefined when there is nothing to cut or the file is not a 64-bit little-endian ELF.
 */
export function stripToLoadedBytes(file: Buffer): Buffer | undefined {
  if (!isElf(file) || file[4] !== 2 || file[5] !== 1) return undefined;
  const phoff = Number(file.readBigUInt64LE(32));
  const phentsize = file.readUInt16LE(54);
  const phnum = file.readUInt16LE(56);
  let end = phoff + phentsize * phnum;
  for (let i = 0; i < phnum; i++) {
    const base = phoff + i * phentsize;
    end = Math.max(end, Number(file.readBigUInt64LE(base + 8)) + Number(file.readBigUInt64LE(base + 32)));
  }
  if (end >= file.length) return undefined;
  const out = Buffer.from(file.subarray(0, end));
  out.writeBigUInt64LE(0n, 40); // e_shoff
  out.writeUInt16LE(0, 58); // e_shentsize
  out.writeUInt16LE(0, 60); // e_shnum
  out.writeUInt16LE(0, 62); // e_shstrndx
  return out;
}
