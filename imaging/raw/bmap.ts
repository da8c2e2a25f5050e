import { ImagepeError } from '../../core/index.js';

/**
 * A block map as bmaptool writes it (format 1.x and 2.x): which blocks of the image hold data.
 * Blocks outside `ranges` are free blocks of the image's filesystems: bmaptool neither writes
 * nor verifies them, and neither does writeRawImage. `first`/`last` are block numbers,
 * inclusive; `sha256` is the range's checksum when the bmap has sha256 ones (format 2.x with
 * ChecksumType sha256; 1.x sha1 checksums are not kept).
 */
export interface Bmap {
  /** Bytes per block (4096 as bmaptool makes them). */
  blockSize: number;
  imageBytes: number;
  mappedBlocks: number;
  ranges: { first: number; last: number; sha256?: string }[];
}

/**
 * Reads bmaptool's XML. Only the handful of elements that carry data are read, with regular
 * expressions: the format is flat and machine-written, and the project has no XML parser.
 *
 * Throws INVALID_INPUT naming what is wrong: not a bmap, an unsupported major version,
 * a missing or non-numeric ImageSize/BlockSize, a malformed, reversed or overlapping range, a
 * range past the image's end, or a MappedBlocksCount that does not match the ranges.
 */
export function parseBmap(xml: string): Bmap {
  const bad = (what: string) => new ImagepeError('INVALID_INPUT', `not a usable bmap: ${what}`, { hint: 'Make it again with bmaptool create IMAGE > IMAGE.bmap, or pass bmap: "none".' });
  const text = xml.replace(/<!--[\s\S]*?-->/g, '');
  const version = /<bmap\s+version\s*=\s*"(\d+)\.(\d+)"\s*>/.exec(text);
  if (!version) throw bad('no <bmap version="..."> element');
  const major = Number(version[1]);
  if (major < 1 || major > 2) throw bad(`format version ${version[1]}.${version[2]} is not 1.x or 2.x`);
  const number = (tag: string): number => {
    const m = new RegExp(`<${tag}>\\s*([^<]*?)\\s*</${tag}>`).exec(text);
    if (!m) throw bad(`no <${tag}>`);
    if (!/^\d+$/.test(m[1]!)) throw bad(`<${tag}> is "${m[1]}", not a whole number`);
    return Number(m[1]);
  };
  const imageBytes = number('ImageSize');
  const blockSize = number('BlockSize');
  if (blockSize === 0 || blockSize % 512 !== 0) throw bad(`<BlockSize> ${blockSize} is not a positive multiple of 512`);
  const mappedBlocks = number('MappedBlocksCount');
  const checksumType = /<ChecksumType>\s*([^<]*?)\s*<\/ChecksumType>/.exec(text)?.[1]?.toLowerCase() ?? (major >= 2 ? 'sha256' : 'sha1');
  const blockMap = /<BlockMap>([\s\S]*?)<\/BlockMap>/.exec(text);
  if (!blockMap) throw bad('no <BlockMap>');
  const blocks = Math.ceil(imageBytes / blockSize);
  const ranges: Bmap['ranges'] = [];
  let count = 0;
  for (const m of blockMap[1]!.matchAll(/<Range([^>]*)>([^<]*)<\/Range>/g)) {
    const body = m[2]!.trim();
    const r = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(body);
    if (!r) throw bad(`range "${body}" is not N or N-M`);
    const first = Number(r[1]);
    const last = r[2] === undefined ? first : Number(r[2]);
    if (last < first) throw bad(`range ${body} ends before it starts`);
    if (last >= blocks) throw bad(`range ${body} is past the image's last block (${blocks - 1})`);
    const prev = ranges[ranges.length - 1];
    if (prev && first <= prev.last) throw bad(`range ${body} overlaps or precedes range ${prev.first}-${prev.last}`);
    const sum = /(?:chksum|sha1)\s*=\s*"([0-9a-fA-F]+)"/.exec(m[1]!)?.[1];
    ranges.push(checksumType === 'sha256' && sum && sum.length === 64 ? { first, last, sha256: sum.toLowerCase() } : { first, last });
    count += last - first + 1;
  }
  if (count !== mappedBlocks) throw bad(`<MappedBlocksCount> is ${mappedBlocks} but the ranges hold ${count} blocks`);
  return { blockSize, imageBytes, mappedBlocks, ranges };
}

/** A byte span of the image and whether the bmap maps it (pure). */
export interface Span {
  offset: number;
  length: number;
  mapped: boolean;
}

/**
 * Cuts [offset, offset + length) of the image at the bmap's range boundaries. Without a bmap
 * the whole span is mapped. Mapped ranges are clamped to `imageBytes` (the last block of an
 * image whose size is not a multiple of the block size is partial).
 */
export function spansOf(offset: number, length: number, bmap: Bmap | undefined): Span[] {
  const end = offset + length;
  if (!bmap) return length > 0 ? [{ offset, length, mapped: true }] : [];
  const out: Span[] = [];
  let at = offset;
  const bs = bmap.blockSize;
  // Ranges are sorted: binary search for the first one that ends after `offset`.
  let lo = 0;
  let hi = bmap.ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((bmap.ranges[mid]!.last + 1) * bs <= offset) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < bmap.ranges.length && at < end; i++) {
    const r = bmap.ranges[i]!;
    const rs = Math.max(r.first * bs, at);
    const re = Math.min((r.last + 1) * bs, end);
    if (rs >= end) break;
    if (rs > at) out.push({ offset: at, length: rs - at, mapped: false });
    if (re > rs) out.push({ offset: rs, length: re - rs, mapped: true });
    at = Math.max(at, re);
  }
  if (at < end) out.push({ offset: at, length: end - at, mapped: false });
  return out;
}

/** Bytes the bmap maps, its last block clamped to the image's size. */
export function mappedBytes(bmap: Bmap): number {
  let n = 0;
  for (const r of bmap.ranges) n += Math.min((r.last + 1) * bmap.blockSize, bmap.imageBytes) - r.first * bmap.blockSize;
  return n;
}
