import { ImagepeError } from '../core/index.js';
import type { Compression } from './info.js';

/** Bytes of a WIM header on disk (wimlib's struct wim_header_disk). */
export const WIM_HEADER_SIZE = 208;

/** Where a resource of the WIM lies (wimlib's struct wim_reshdr_disk): offsets and sizes in bytes. */
export interface ResourceHeader {
  offset: number;
  /** Bytes the resource takes in the file. */
  storedSize: number;
  /** Bytes once decompressed (the blob table, XML data and integrity table are never compressed). */
  originalSize: number;
  /** RESOURCE_FLAGS bits: 0x2 metadata, 0x4 compressed, 0x10 solid. */
  flags: number;
}

export interface WimHeader {
  /** Normal WIMs start "MSWIM\0\0\0", wimlib's pipable ones "WLPWM\0\0\0". */
  pipable: boolean;
  headerSize: number;
  /** 68864 (0x10d00) normally, 3584 (0xe00) for solid (LZMS "ESD") WIMs, as `wimlib-imagex info` prints it. */
  version: number;
  /** WIM_HEADER_FLAGS bits; compression, integrity table and the like are read from them below. */
  flags: number;
  compression: Compression;
  /** Bytes per compressed chunk. */
  chunkSize: number;
  /** "0x" and 32 hex digits in file order, as `wimlib-imagex info` prints it. */
  guid: string;
  /** Split WIMs (.swm) are parts 1..totalParts; a whole WIM is part 1 of 1. */
  partNumber: number;
  totalParts: number;
  imageCount: number;
  blobTable: ResourceHeader;
  xmlData: ResourceHeader;
  bootMetadata: ResourceHeader;
  /** 0 when no image is marked bootable. */
  bootIndex: number;
  /** offset 0 when the WIM has none. */
  integrityTable: ResourceHeader;
  /** `wimlib-imagex info`'s "Attributes", in its order: Pipable, Integrity info, Relative path junction, ... */
  attributes: string[];
}

const MAGIC = 'MSWIM\0\0\0';
const PIPABLE_MAGIC = 'WLPWM\0\0\0';

// wimlib's WIM_HDR_FLAG_* values.
const FLAG = {
  compression: 0x2,
  readonly: 0x4,
  resourceOnly: 0x10,
  metadataOnly: 0x20,
  rpFix: 0x80,
  xpress: 0x20000,
  lzx: 0x40000,
  lzms: 0x80000,
} as const;

/**
 * Reads the first 208 bytes of a WIM (more are ignored). A pipable WIM carries this header
 * twice: the copy at offset 0 is written before anything else and has zeros for every resource
 * header (wimlib never goes back to fill it in, whether it wrote to a file or to a pipe); the
 * complete one is the last 208 bytes of the file. `where` names the source in errors. Throws
 * WIM_CORRUPT when the buffer is shorter than a header, has no WIM magic, states another header
 * size, or holds a size or offset past 2^53 or an unknown compression type.
 */
export function parseWimHeader(bytes: Uint8Array, where = 'the data'): WimHeader {
  if (bytes.length < WIM_HEADER_SIZE) throw notAWim(where, `it ends after ${bytes.length} bytes, inside the ${WIM_HEADER_SIZE}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, WIM_HEADER_SIZE);
  const magic = new TextDecoder('latin1').decode(bytes.subarray(0, 8));
  if (magic !== MAGIC && magic !== PIPABLE_MAGIC) throw notAWim(where, 'its header has no WIM signature');
  const headerSize = view.getUint32(8, true);
  if (headerSize !== WIM_HEADER_SIZE) throw damaged(where, `it says it is ${headerSize} bytes, not ${WIM_HEADER_SIZE}`);
  const flags = view.getUint32(16, true);
  const resource = (at: number) => resourceAt(view, at, where);
  const integrityTable = resource(124);
  const pipable = magic === PIPABLE_MAGIC;
  return {
    pipable,
    headerSize,
    version: view.getUint32(12, true),
    flags,
    compression: compressionOf(flags, where),
    chunkSize: view.getUint32(20, true),
    guid: `0x${Buffer.from(bytes.subarray(24, 40)).toString('hex')}`,
    partNumber: view.getUint16(40, true),
    totalParts: view.getUint16(42, true),
    imageCount: view.getUint32(44, true),
    blobTable: resource(48),
    xmlData: resource(72),
    bootMetadata: resource(96),
    bootIndex: view.getUint32(120, true),
    integrityTable,
    attributes: [
      ...(pipable ? ['Pipable'] : []),
      ...(integrityTable.offset !== 0 ? ['Integrity info'] : []),
      ...(flags & FLAG.rpFix ? ['Relative path junction'] : []),
      ...(flags & FLAG.resourceOnly ? ['Resource only'] : []),
      ...(flags & FLAG.metadataOnly ? ['Metadata only'] : []),
      ...(flags & FLAG.readonly ? ['Readonly'] : []),
    ],
  };
}

/** 7 bytes stored size, 1 byte flags, 8 bytes offset, 8 bytes original size, all little-endian. */
function resourceAt(view: DataView, at: number, where: string): ResourceHeader {
  const safe = (n: bigint) => {
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw damaged(where, `it holds an impossible size or offset (${n})`);
    return Number(n);
  };
  return {
    offset: safe(view.getBigUint64(at + 8, true)),
    storedSize: Number(view.getBigUint64(at, true) & 0xff_ffff_ffff_ffffn),
    originalSize: safe(view.getBigUint64(at + 16, true)),
    flags: view.getUint8(at + 7),
  };
}

function compressionOf(flags: number, where: string): Compression {
  if (!(flags & FLAG.compression)) return 'none';
  if (flags & FLAG.xpress) return 'xpress';
  if (flags & FLAG.lzx) return 'lzx';
  if (flags & FLAG.lzms) return 'lzms';
  throw damaged(where, `it names no compression type wimlib knows (flags 0x${flags.toString(16)})`);
}

const HINT = 'Check that the path or URL names a .wim file and that it was copied completely.';

function notAWim(where: string, why: string): ImagepeError {
  return new ImagepeError('WIM_CORRUPT', `${where} is not a WIM file: ${why}`, { hint: HINT });
}

function damaged(where: string, why: string): ImagepeError {
  return new ImagepeError('WIM_CORRUPT', `${where} has a damaged WIM header: ${why}`, { hint: HINT });
}

/**
 * Bytes of the header before each resource in a pipable WIM (wimlib's struct pwm_blob_hdr):
 * magic, uncompressed size, SHA-1, flags. The first follows the header at offset 0 and precedes
 * the copy of the XML data wimlib writes there for readers of a pipe.
 */
export const PIPABLE_BLOB_HEADER_SIZE = 40;
const PIPABLE_BLOB_MAGIC = 0x2b9b9ba2443db9d8n;

/** The uncompressed size in bytes of the resource that follows a pipable WIM's blob header. Throws WIM_CORRUPT without its magic. */
export function parsePipableBlobHeader(bytes: Uint8Array, where = 'the data'): { size: number } {
  if (bytes.length < PIPABLE_BLOB_HEADER_SIZE) throw notAWim(where, `it ends inside the header of its first resource`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, PIPABLE_BLOB_HEADER_SIZE);
  if (view.getBigUint64(0, true) !== PIPABLE_BLOB_MAGIC) throw damaged(where, 'the resource after it does not start with the pipable-WIM signature');
  const size = view.getBigUint64(8, true);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw damaged(where, `its first resource has an impossible size (${size})`);
  return { size: Number(size) };
}
