import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, realpath, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CancelledError, ImagepeError, ignoreEvents, pathKind, run, temporarySibling, type EventSink, type RunOptions } from '../../core/index.js';
import { assertDiskFree, attachImageFile, currentNodes, detachLoop, probeFilesystem, readTable, type SfdiskTable } from '../../partition/index.js';
import { mappedBytes, parseBmap } from './bmap.js';
import { isZero } from './plan.js';

export interface CaptureRawOptions {
  /** The disk to capture: a whole block device or a disk image file. */
  disk: string;
  /** The compressed image to write, ending in .zst (out/debian.img.zst); its directory is made when missing. */
  output: string;
  /** zstd level, 1 to 22 (default 3); 20 and up use zstd --ultra and much memory. */
  level?: number;
  /** zstd worker threads (default: every core). */
  threads?: number;
  /** Where the sparse intermediate image (the disk's size, holding only its used blocks) is made; default: the output's directory. */
  scratchDir?: string;
  signal?: AbortSignal;
  /** Steps (check, table, `partition N`, bmap, compress, sha256), progress in bytes per partition, warnings. */
  events?: EventSink;
}

export interface CapturedPartition {
  number: number;
  fsType: string | undefined;
  /** How its blocks were copied: partclone.ext4 (its used blocks), header-only (swap), zero-detect (every block that is not zero). */
  method: string;
  /** Bytes copied: the filesystem's used blocks, the swap header, or the non-zero blocks. */
  usedBytes: number;
}

export interface CaptureRawResult {
  output: string;
  /** The block map beside the output where bmaptool looks for it: out/debian.img.zst → out/debian.img.bmap. */
  bmap: string;
  /** output + '.sha256', in sha256sum's format. */
  sha256File: string;
  /** sha256 of the output file (the compressed bytes), hex. */
  sha256: string;
  /** The disk's size. */
  imageBytes: number;
  /** Bytes the block map maps: what a writer writes. */
  usedBytes: number;
  outputBytes: number;
  partitions: CapturedPartition[];
  durationMs: number;
}

const OPERATION = 'capture-raw';
const LONG_MS = 24 * 3600_000;
const COPY_CHUNK = 4 * 1024 * 1024;
const ZERO_BLOCK = 4096;

/** partclone's tool for each blkid TYPE it copies block by block. */
const PARTCLONE: Readonly<Record<string, string>> = {
  ext2: 'partclone.ext4',
  ext3: 'partclone.ext4',
  ext4: 'partclone.ext4',
  xfs: 'partclone.xfs',
  btrfs: 'partclone.btrfs',
  vfat: 'partclone.fat',
  exfat: 'partclone.exfat',
  ntfs: 'partclone.ntfs',
  f2fs: 'partclone.f2fs',
  hfsplus: 'partclone.hfsplus',
};

/** How a partition with this blkid TYPE is copied (pure). */
export function captureMethodFor(fsType: string | undefined): string {
  if (fsType === 'swap') return 'header-only';
  return (fsType && PARTCLONE[fsType]) ?? 'zero-detect';
}

/**
 * The bmap path for an output: the output without .zst, plus .bmap, the second place bmaptool
 * and writeRawImage look (out/debian.img.zst → out/debian.img.bmap). Throws INVALID_INPUT for
 * an output not ending in .zst.
 */
export function bmapPathFor(output: string): string {
  if (!/\.zst$/.test(output) || basename(output) === '.zst') {
    throw new ImagepeError('INVALID_INPUT', `the output ${output} does not end in .zst`, { hint: 'Name it like out/debian.img.zst: it is zstd-compressed, and its block map goes beside it as out/debian.img.bmap.' });
  }
  return `${output.slice(0, -4)}.bmap`;
}

/**
 * The byte ranges of a disk that no partition covers (the MBR or protective MBR, the GPT and its
 * backup, a boot loader in the gap before the first partition, EBRs inside an extended
 * partition), sorted (pure). The extended partition itself counts as a gap: its own EBRs live
 * there, between its logical partitions.
 */
export function regionsOutsidePartitions(table: SfdiskTable | undefined, diskBytes: number, sectorSize: number): { offset: number; length: number }[] {
  const parts = (table?.partitions ?? [])
    .filter((p) => !(table?.label === 'dos' && [0x05, 0x0f, 0x85].includes(parseInt(p.type, 16))))
    .map((p) => ({ start: p.start * sectorSize, end: Math.min((p.start + p.size) * sectorSize, diskBytes) }))
    .sort((a, b) => a.start - b.start);
  const out: { offset: number; length: number }[] = [];
  let at = 0;
  for (const p of parts) {
    if (p.start > at) out.push({ offset: at, length: p.start - at });
    at = Math.max(at, p.end);
  }
  if (at < diskBytes) out.push({ offset: at, length: diskBytes - at });
  return out;
}

/** The swap header's size: the page size whose last 10 bytes hold mkswap's signature, or undefined (pure). */
export function swapHeaderBytes(head: Uint8Array): number | undefined {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  for (const page of [4096, 8192, 16384, 65536]) {
    if (buf.length >= page && buf.toString('latin1', page - 10, page) === 'SWAPSPACE2') return page;
  }
  return undefined;
}

/** The bytes in use partclone reports ("Space in use: 35.5 MB = 34713 Blocks", "Block size: 1024 Byte"), or undefined (pure). */
export function partcloneUsedBytes(output: string): number | undefined {
  const blocks = /Space in use:.*=\s*(\d+)\s+Blocks/i.exec(output)?.[1];
  const size = /Block size:\s*(\d+)\s*Byte/i.exec(output)?.[1];
  return blocks !== undefined && size !== undefined ? Number(blocks) * Number(size) : undefined;
}

const IEC: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** The bytes zstd --progress says it has read ("Read:  72.0 MiB /   300 MiB ==>  0%"), or undefined (pure). */
export function zstdReadBytes(line: string): number | undefined {
  const m = /Read\s*:\s*([\d.]+)\s*(B|KiB|MiB|GiB|TiB)\b/.exec(line);
  return m ? Math.round(Number(m[1]) * IEC[m[2]!]!) : undefined;
}

/**
 * Captures a disk as a raw image of its used blocks only, like partclone/Clonezilla but as a
 * plain sparse disk image: a sparse intermediate file of the disk's size gets the table areas
 * and gaps (zero blocks skipped), each filesystem's used blocks (partclone in device-to-device
 * mode, which leaves free blocks unwritten), a swap partition's header only, and every non-zero
 * block of anything else; then `bmaptool create` maps it to OUTPUT's bmap, zstd compresses it to
 * OUTPUT, and OUTPUT's sha256 goes to OUTPUT.sha256. The intermediate is removed on every path;
 * the outputs appear only complete (written under temporary names, then renamed).
 *
 * The disk must be quiet: a mounted filesystem, active swap or a holder on it is refused with
 * DISK_IN_USE (a live filesystem makes an inconsistent image). A disk image file is attached
 * read-only (or its existing loop device is used). A filesystem partclone refuses (a dirty
 * journal) is copied with zero detection instead, with a warning event.
 *
 * Throws INVALID_INPUT (output name, level), NOT_FOUND (disk), REFUSED (output exists, the
 * system disk, a partition), DISK_IN_USE, CANCELLED, and the tools' COMMAND_FAILED /
 * COMMAND_TIMEOUT.
 */
export async function captureRaw(options: CaptureRawOptions): Promise<CaptureRawResult> {
  const started = Date.now();
  const { disk, output, signal } = options;
  const events = options.events ?? ignoreEvents;
  const step = (name: string, status: 'started' | 'done' | 'skipped', detail?: string) =>
    events({ type: 'step', operation: OPERATION, step: name, status, ...(detail !== undefined ? { detail } : {}) });
  const runOpts = (what: string, timeoutMs = 60_000): RunOptions => ({ what, timeoutMs, ...(signal ? { signal } : {}) });

  const bmap = bmapPathFor(output);
  const level = options.level ?? 3;
  if (!Number.isInteger(level) || level < 1 || level > 22) throw new ImagepeError('INVALID_INPUT', `zstd level ${level} is not a whole number from 1 to 22`, { hint: '3 (the default) is fast; 19 is small and slow.' });
  const threads = options.threads ?? availableParallelism();
  for (const path of [output, bmap, `${output}.sha256`]) {
    if ((await pathKind(path)) !== 'missing') throw new ImagepeError('REFUSED', `${path} exists already`, { hint: 'Remove it, or name another output.' });
  }

  const kind = await pathKind(disk);
  if (kind === 'missing') throw new ImagepeError('NOT_FOUND', `disk ${disk} does not exist`);
  if (kind !== 'file' && kind !== 'block-device') throw new ImagepeError('INVALID_INPUT', `${disk} is neither a block device nor a disk image file`);

  step('check', 'started', disk);
  let ownLoop: string | undefined;
  let device: string;
  // Loop devices the image file has already: a mount through any of them is a use, and one of them is read.
  let existing: string[] = [];
  if (kind === 'file') {
    existing = (await run('losetup', ['--associated', disk, '--noheadings', '--output', 'NAME'], runOpts('checking loop devices'))).stdout.trim().split('\n').filter(Boolean);
    if (existing.length > 0) device = existing[0]!;
    else {
      ownLoop = await attachImageFile(disk, { readOnly: true, ...(signal ? { signal } : {}) });
      device = ownLoop;
    }
  } else {
    device = await realpath(disk);
  }

  const intermediate = temporarySibling(join(options.scratchDir ?? dirname(output), basename(output).slice(0, -4)));
  const log = `${intermediate}.partclone.log`;
  let scratchLoop: string | undefined;
  const temps: string[] = [];
  try {
    await run('partx', ['--update', device], { ...runOpts(`reading the partitions of ${disk}`), okExitCodes: [0, 1] });
    await assertDiskFree(device, disk);
    for (const other of existing.slice(1)) await assertDiskFree(other, disk);
    const diskBytes = Number((await run('blockdev', ['--getsize64', device], runOpts(`reading the size of ${disk}`))).stdout.trim());
    const sectorSize = Number((await run('blockdev', ['--getss', device], runOpts(`reading the sector size of ${disk}`))).stdout.trim());
    const table = await readTable(device, runOpts);
    step('check', 'done', `${diskBytes} bytes, ${table ? `${table.label} table with ${table.partitions?.length ?? 0} partitions` : 'no partition table'}`);

    await mkdir(dirname(output), { recursive: true });
    if (options.scratchDir) await mkdir(options.scratchDir, { recursive: true });
    const fh = await open(intermediate, 'wx');
    temps.push(intermediate, log);
    await fh.truncate(diskBytes);
    step('table', 'started', 'the table areas and the gaps between partitions');
    try {
      const src = await open(device, 'r');
      try {
        for (const r of regionsOutsidePartitions(table, diskBytes, sectorSize)) await copyNonZero(src, r.offset, fh, r.offset, r.length, signal);
      } finally {
        await src.close();
      }
    } finally {
      await fh.close();
    }
    step('table', 'done');

    const partitions: CapturedPartition[] = [];
    const parts = (table?.partitions ?? []).filter((p) => !(table?.label === 'dos' && [0x05, 0x0f, 0x85].includes(parseInt(p.type, 16))));
    if (parts.length > 0) {
      const numbers = parts.map((p) => Number(/(\d+)$/.exec(p.node)?.[1]));
      scratchLoop = await attachImageFile(intermediate, { sectorSize, ...(signal ? { signal } : {}) });
      const srcNodes = await currentNodes(device, numbers, runOpts);
      const dstNodes = await currentNodes(scratchLoop, numbers, runOpts);
      for (const n of numbers) {
        const part = parts.find((p) => Number(/(\d+)$/.exec(p.node)?.[1]) === n)!;
        const src = srcNodes.get(n)!;
        const dst = dstNodes.get(n)!;
        const fsType = (await probeFilesystem(src, runOpts)).TYPE;
        const bytes = part.size * sectorSize;
        const phase = `partition ${n} (${fsType ?? 'no filesystem'})`;
        step(`partition ${n}`, 'started', `${fsType ?? 'no filesystem'}, ${captureMethodFor(fsType)}`);
        const progress = (done: number) => events({ type: 'progress', operation: OPERATION, phase, unit: 'bytes', done, total: bytes });
        const got = await copyPartition(src, dst, fsType, bytes, log, runOpts, progress, (text) => events({ type: 'message', operation: OPERATION, level: 'warning', text }), signal);
        progress(bytes);
        partitions.push({ number: n, fsType, ...got });
        step(`partition ${n}`, 'done', `${got.method}, ${got.usedBytes} bytes`);
      }
      await detachLoop(scratchLoop);
      scratchLoop = undefined;
    } else if (!table) {
      events({ type: 'message', operation: OPERATION, level: 'warning', text: `${disk} has no partition table; it was copied whole with zero detection` });
    }

    step('bmap', 'started', bmap);
    const bmapTemp = temporarySibling(bmap);
    temps.push(bmapTemp);
    await run('bmaptool', ['create', '-o', bmapTemp, intermediate], runOpts(`mapping the used blocks of ${intermediate}`, LONG_MS));
    const usedBytes = mappedBytes(parseBmap(await readFile(bmapTemp, 'utf8')));
    step('bmap', 'done', `${usedBytes} bytes mapped`);

    step('compress', 'started', `zstd -${level} with ${threads} threads`);
    const outTemp = temporarySibling(output);
    temps.push(outTemp);
    await run('zstd', ['--progress', `-T${threads}`, ...(level > 19 ? ['--ultra'] : []), `-${level}`, intermediate, '-o', outTemp], {
      ...runOpts(`compressing ${intermediate} to ${output}`, LONG_MS),
      onStderrLine: (line) => {
        const done = zstdReadBytes(line);
        if (done !== undefined) events({ type: 'progress', operation: OPERATION, phase: 'Compressing', unit: 'bytes', done, total: diskBytes });
      },
    });
    events({ type: 'progress', operation: OPERATION, phase: 'Compressing', unit: 'bytes', done: diskBytes, total: diskBytes });
    await rm(intermediate, { force: true });
    const outputBytes = (await stat(outTemp)).size;
    step('compress', 'done', `${outputBytes} bytes`);

    step('sha256', 'started');
    const sha256 = await sha256Of(outTemp, signal);
    const sumTemp = temporarySibling(`${output}.sha256`);
    temps.push(sumTemp);
    await writeFile(sumTemp, `${sha256}  ${basename(output)}\n`);
    await rename(bmapTemp, bmap);
    await rename(outTemp, output);
    await rename(sumTemp, `${output}.sha256`);
    step('sha256', 'done', sha256);

    return { output, bmap, sha256File: `${output}.sha256`, sha256, imageBytes: diskBytes, usedBytes, outputBytes, partitions, durationMs: Date.now() - started };
  } finally {
    if (scratchLoop) await detachLoop(scratchLoop).catch(() => undefined);
    if (ownLoop) await detachLoop(ownLoop).catch(() => events({ type: 'message', operation: OPERATION, level: 'warning', text: `could not detach ${ownLoop}; detach it with losetup -d ${ownLoop}` }));
    for (const t of temps) await rm(t, { force: true }).catch(() => undefined);
  }
}

async function copyPartition(
  src: string,
  dst: string,
  fsType: string | undefined,
  bytes: number,
  log: string,
  runOpts: (what: string, timeoutMs?: number) => RunOptions,
  progress: (done: number) => void,
  warn: (text: string) => void,
  signal: AbortSignal | undefined,
): Promise<{ method: string; usedBytes: number }> {
  const method = captureMethodFor(fsType);
  if (method === 'header-only') {
    const head = Buffer.alloc(Math.min(65536, bytes));
    const fh = await open(src, 'r');
    try {
      await fh.read(head, 0, head.length, 0);
    } finally {
      await fh.close();
    }
    const page = swapHeaderBytes(head);
    if (page !== undefined) {
      // The rest of a swap area is pages that mean nothing once the system is off.
      await withHandles(src, dst, (s, d) => copyNonZero(s, 0, d, 0, page, signal));
      return { method, usedBytes: page };
    }
    warn(`${src} says it is swap but has no swap header where mkswap writes it; copied with zero detection`);
  } else if (method !== 'zero-detect') {
    try {
      const r = await run(method, ['-b', '-s', src, '-o', dst, '-L', log], {
        ...runOpts(`copying the used blocks of ${src} with ${method}`, LONG_MS),
        idleTimeoutMs: 30 * 60_000,
        onStderrLine: (line) => {
          const pct = /Completed:\s*([\d.]+)%/.exec(line)?.[1];
          if (pct !== undefined) progress(Math.floor((Number(pct) / 100) * bytes));
        },
      });
      const used = partcloneUsedBytes(`${r.stdout}\n${r.stderr}`);
      return { method, usedBytes: used ?? bytes };
    } catch (e) {
      if (e instanceof CancelledError || signal?.aborted) throw e;
      // partclone refuses a filesystem it finds inconsistent (a journal not replayed); every non-zero block is still a faithful copy.
      warn(`${method} could not copy ${src} (${(e as Error).message.split('\n')[0]}); copied every non-zero block instead`);
    }
  }
  const written = await withHandles(src, dst, (s, d) => copyNonZero(s, 0, d, 0, bytes, signal, progress));
  return { method: 'zero-detect', usedBytes: written };
}

async function withHandles<T>(src: string, dst: string, body: (s: FileHandle, d: FileHandle) => Promise<T>): Promise<T> {
  const s = await open(src, 'r');
  try {
    const d = await open(dst, 'r+');
    try {
      const result = await body(s, d);
      await d.sync();
      return result;
    } finally {
      await d.close();
    }
  } finally {
    await s.close();
  }
}

/**
 * Copies [from, from + length) of `src` to `to` of `dst`, writing only 4 KiB blocks that are not
 * all zero so the destination stays sparse. Returns the bytes written.
 */
async function copyNonZero(src: FileHandle, from: number, dst: FileHandle, to: number, length: number, signal?: AbortSignal, progress?: (done: number) => void): Promise<number> {
  const buf = Buffer.alloc(COPY_CHUNK);
  const zeros = Buffer.alloc(ZERO_BLOCK);
  let written = 0;
  for (let done = 0; done < length; ) {
    if (signal?.aborted) throw new CancelledError(OPERATION);
    const want = Math.min(COPY_CHUNK, length - done);
    const { bytesRead } = await src.read(buf, 0, want, from + done);
    if (bytesRead === 0) throw new ImagepeError('COMMAND_FAILED', `reading the disk ended early at byte ${from + done}`);
    // Runs of non-zero blocks go out as one write.
    let runStart = -1;
    for (let b = 0; b < bytesRead + ZERO_BLOCK; b += ZERO_BLOCK) {
      const nonZero = b < bytesRead && !isZero(buf.subarray(b, Math.min(b + ZERO_BLOCK, bytesRead)), zeros);
      if (nonZero && runStart < 0) runStart = b;
      if (!nonZero && runStart >= 0) {
        const stop = Math.min(b, bytesRead);
        await dst.write(buf, runStart, stop - runStart, to + done + runStart);
        written += stop - runStart;
        runStart = -1;
      }
    }
    done += bytesRead;
    progress?.(done);
  }
  return written;
}

async function sha256Of(path: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: COPY_CHUNK, ...(signal ? { signal } : {}) })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
