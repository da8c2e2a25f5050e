import { ImagepeError, isImagepeError, run } from '../../core/index.js';
import { parseBmap, type Bmap } from './bmap.js';
import { bmapCandidates, rawFormatOf, type RawFormat } from './format.js';
import { fetchRange, readTextIfExists, sourceBytes, sourceName, type RawSource } from './source.js';

/** What is known of a raw image before a byte of it is written. */
export interface RawProbe {
  format: RawFormat;
  /** Bytes as stored (file size) or served (Content-Length); undefined when the server does not say. */
  sourceBytes: number | undefined;
  /**
   * The disk image's size in bytes: the file's size (raw), the virtual size (qcow2, qemu-img
   * info), the content size a zstd frame or an xz index records; else the bmap's ImageSize;
   * else undefined (gzip, a zstd stream without content size, a server without range requests).
   */
  imageBytes: number | undefined;
  bmap: Bmap | undefined;
  /** Where the bmap was read from (path or URL), when there is one. */
  bmapFrom: string | undefined;
}

export interface ProbeRawOptions {
  signal?: AbortSignal;
  /** 'auto' (default): looked for beside the image as bmaptool does; 'none'; or where it is. */
  bmap?: 'auto' | 'none' | RawSource;
  /** The format, when the name does not tell it. */
  format?: RawFormat;
}

/**
 * Probes a raw image without reading it whole: its format (from the name unless given), sizes,
 * and bmap. For a URL, at most a HEAD, two small range requests (zstd's frame header; xz's
 * footer and index) and one GET per bmap candidate.
 *
 * Throws INVALID_INPUT (format unknown from the name, a bmap that does not parse or that is for
 * an image of another size, a bmap asked for a qcow2), NOT_FOUND (no image; an explicit bmap
 * that does not exist), REFUSED (HTTP status), CANCELLED.
 */
export async function probeRawImage(source: RawSource, opts: ProbeRawOptions = {}): Promise<RawProbe> {
  const { sizeIsFloor: _floor, ...probe } = await probeImage(source, opts);
  return probe;
}

/**
 * probeRawImage, and whether imageBytes is only a floor (a zstd frame header read over HTTP:
 * the first frame's size, which is the whole image's unless the file holds several frames).
 */
export async function probeImage(source: RawSource, opts: ProbeRawOptions = {}): Promise<RawProbe & { sizeIsFloor: boolean }> {
  const name = sourceName(source);
  const format = opts.format ?? rawFormatOf(name);
  if (!format) throw new ImagepeError('INVALID_INPUT', `cannot tell the format of ${name} from its name`, { hint: 'Name it .img/.raw/.bin, .zst, .xz, .gz or .qcow2, or pass format explicitly.' });
  const stored = await sourceBytes(source, opts.signal);
  let imageBytes: number | undefined;
  if (format === 'raw') imageBytes = stored;
  else if (format === 'qcow2') imageBytes = source.kind === 'file' ? await qcow2VirtualSize(source.path, opts.signal) : undefined;
  else if (format === 'zst') imageBytes = source.kind === 'file' ? await zstdContentSize(source.path, opts.signal) : await zstdContentSizeOverHttp(source.url, opts.signal);
  else if (format === 'xz') imageBytes = source.kind === 'file' ? await xzContentSize(source.path, opts.signal) : await xzContentSizeOverHttp(source.url, stored, opts.signal);

  const found = format === 'qcow2' && (opts.bmap ?? 'auto') === 'auto' ? undefined : await findBmap(source, opts.bmap ?? 'auto', opts.signal);
  if (found && format === 'qcow2') throw new ImagepeError('INVALID_INPUT', `a bmap describes a raw image, not the qcow2 ${name}`, { hint: 'Leave bmap out for qcow2 images: qemu-img skips their unallocated clusters on its own.' });
  const floorOnly = format === 'zst' && source.kind === 'url';
  if (found && imageBytes !== undefined && (floorOnly ? found.bmap.imageBytes < imageBytes : found.bmap.imageBytes !== imageBytes)) {
    throw new ImagepeError('INVALID_INPUT', `the bmap ${found.from} is for an image of ${found.bmap.imageBytes} bytes, but ${name} holds ${imageBytes}`, { hint: 'Use the bmap made from this very image (bmaptool create), or pass bmap: "none".' });
  }
  const sizeIsFloor = format === 'zst' && source.kind === 'url' && imageBytes !== undefined && !found;
  return { format, sourceBytes: stored, imageBytes: found && floorOnly ? found.bmap.imageBytes : (imageBytes ?? found?.bmap.imageBytes), bmap: found?.bmap, bmapFrom: found?.from, sizeIsFloor };
}

/** The bmap asked for: none, the one named (NOT_FOUND when missing), or the first of bmaptool's candidates that exists. */
async function findBmap(image: RawSource, want: 'auto' | 'none' | RawSource, signal?: AbortSignal): Promise<{ bmap: Bmap; from: string } | undefined> {
  if (want === 'none') return undefined;
  const read = async (s: RawSource) => {
    const text = await readTextIfExists(s, signal);
    if (text === undefined) return undefined;
    try {
      return { bmap: parseBmap(text), from: sourceName(s) };
    } catch (e) {
      throw isImagepeError(e) ? new ImagepeError(e.code, `${sourceName(s)}: ${e.message}`, { hint: e.hint ?? '' }) : e;
    }
  };
  if (want !== 'auto') {
    const found = await read(want);
    if (!found) throw new ImagepeError('NOT_FOUND', `the bmap ${sourceName(want)} does not exist`, { hint: 'Name the bmap file made with bmaptool create, or use bmap: "auto" or "none".' });
    return found;
  }
  const candidates: RawSource[] =
    image.kind === 'file'
      ? bmapCandidates(image.path).map((path) => ({ kind: 'file', path }))
      : bmapCandidates(image.url.pathname).map((pathname) => {
          const url = new URL(image.url.href);
          url.pathname = pathname;
          url.search = '';
          url.hash = '';
          return { kind: 'url', url };
        });
  for (const c of candidates) {
    const found = await read(c);
    if (found) return found;
  }
  return undefined;
}

const LONG_QUERY = { timeoutMs: 120_000 };

async function qcow2VirtualSize(path: string, signal?: AbortSignal): Promise<number> {
  const r = await run('qemu-img', ['info', '--output=json', '-f', 'qcow2', path], { ...LONG_QUERY, what: `reading the qcow2 header of ${path}`, hint: 'Is it a qcow2 image? qemu-img info tells.', ...(signal ? { signal } : {}) });
  const size = (JSON.parse(r.stdout) as { 'virtual-size'?: unknown })['virtual-size'];
  if (typeof size !== 'number') throw new ImagepeError('INVALID_INPUT', `qemu-img info gave no virtual size for ${path}`);
  return size;
}

/** `zstd -lv`'s "Decompressed Size: 16.0 MiB (16777216 B)", summed over frames by zstd itself; undefined when a frame does not record it. */
export function parseZstdList(text: string): number | undefined {
  const m = /Decompressed Size:.*\((\d+) B\)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** `xz --robot -l`'s totals line: column 5 is the uncompressed size. */
export function parseXzRobot(text: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith('totals\t'));
  const v = line?.split('\t')[4];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

async function zstdContentSize(path: string, signal?: AbortSignal): Promise<number | undefined> {
  const r = await run('zstd', ['-lv', path], { ...LONG_QUERY, what: `listing the zstd frames of ${path}`, hint: 'Is it a zstd file? zstd -lv tells.', ...(signal ? { signal } : {}) });
  return parseZstdList(r.stdout);
}

async function xzContentSize(path: string, signal?: AbortSignal): Promise<number | undefined> {
  const r = await run('xz', ['--robot', '-l', path], { ...LONG_QUERY, what: `listing the xz streams of ${path}`, hint: 'Is it an xz file? xz -l tells.', ...(signal ? { signal } : {}) });
  return parseXzRobot(r.stdout);
}

/**
 * The content size a zstd frame header records (RFC 8878 §3.1.1.1), from its first 18 bytes;
 * undefined when absent or not a zstd frame. It is the first frame's: zstd writes one frame for
 * a file, pzstd and --long-distance tools several, whose first one would undercount: the
 * size is then only a floor, used as such (the end of the device is checked block by block).
 */
export function zstdFrameContentSize(head: Buffer): number | undefined {
  if (head.length < 6 || head.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const fhd = head[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const didBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return undefined;
  const at = 5 + (single ? 0 : 1) + didBytes;
  if (head.length < at + fcsBytes) return undefined;
  switch (fcsBytes) {
    case 1:
      return head[at]!;
    case 2:
      return head.readUInt16LE(at) + 256;
    case 4:
      return head.readUInt32LE(at);
    default:
      return Number(head.readBigUInt64LE(at));
  }
}

async function zstdContentSizeOverHttp(url: URL, signal?: AbortSignal): Promise<number | undefined> {
  const head = await fetchRange(url, 0, 17, signal);
  return head ? zstdFrameContentSize(head) : undefined;
}

/** Reads an xz multibyte integer at `at`; [value, next offset]. */
function xzVarint(b: Buffer, at: number): [number, number] {
  let v = 0;
  for (let i = 0; i < 9; i++) {
    const byte = b[at + i];
    if (byte === undefined) throw new RangeError('truncated');
    v += (byte & 0x7f) * 2 ** (7 * i);
    if (!(byte & 0x80)) return [v, at + i + 1];
  }
  throw new RangeError('too long');
}

/**
 * The uncompressed size of an xz file's last stream, from its stream footer (last 12 bytes:
 * the index's size) and its index (records of unpadded and uncompressed sizes), per the
 * .xz file format §2.1.2.4 and §4. `footer` is the file's last 12 bytes, `index` the
 * index's bytes. Undefined when they do not parse.
 */
export function xzIndexContentSize(index: Buffer): number | undefined {
  try {
    if (index[0] !== 0) return undefined;
    let [count, at] = xzVarint(index, 1);
    let total = 0;
    for (; count > 0; count--) {
      const [, a] = xzVarint(index, at);
      const [size, b] = xzVarint(index, a);
      total += size;
      at = b;
    }
    return total;
  } catch {
    return undefined;
  }
}

/** The index's size in bytes, from an xz stream footer (12 bytes ending in "YZ"). */
export function xzFooterIndexBytes(footer: Buffer): number | undefined {
  if (footer.length !== 12 || footer[10] !== 0x59 || footer[11] !== 0x5a) return undefined;
  return (footer.readUInt32LE(4) + 1) * 4;
}

async function xzContentSizeOverHttp(url: URL, stored: number | undefined, signal?: AbortSignal): Promise<number | undefined> {
  // Only a single-stream file (what xz writes) is read this way; xz -l would read every stream.
  if (stored === undefined || stored < 32) return undefined;
  const footer = await fetchRange(url, stored - 12, stored - 1, signal);
  const indexBytes = footer && xzFooterIndexBytes(footer);
  if (!indexBytes || indexBytes > 16 * 1024 * 1024 || indexBytes + 12 > stored) return undefined;
  const index = await fetchRange(url, stored - 12 - indexBytes, stored - 13, signal);
  return index ? xzIndexContentSize(index) : undefined;
}

