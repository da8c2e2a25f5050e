import { ImagepeError } from '../core/index.js';
import type { WimImage, WimInfo } from './info.js';
import { decodeXml, parseWimXml, parseXml, type ImageProperties } from './properties.js';
import type { WimHeader } from './wim-header.js';

/** A WIM's XML data, read. */
export interface WimXml {
  /** The images as imaging.info() describes them (from `wimlib-imagex info`), in index order. */
  images: WimImage[];
  /** Each image's properties by index, as imaging.imageProperties() reads them. */
  properties: Map<number, ImageProperties>;
  /**
   * <WIM><TOTALBYTES>: what `wimlib-imagex info` prints as "Size", the bytes of the file before
   * its XML data (not the file's length). The copy at the start of a pipable WIM has none.
   */
  totalBytes: number | undefined;
}

/**
 * Reads a WIM's XML data: the bytes as the WIM stores them (UTF-16LE with a byte-order mark;
 * UTF-8 and big-endian are read too), or text already decoded. Counts and sizes are read as
 * wimlib reads them (a missing or malformed number is 0); times, like wimlib's, are whole
 * seconds. Throws WIM_CORRUPT when the XML is not well-formed or its root is not <WIM>.
 */
export function parseWimXmlData(data: Uint8Array | string): WimXml {
  const xml = typeof data === 'string' ? data : decodeXml(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const images = parseWimXml(xml).sort((a, b) => a.index - b.index);
  const total = parseXml(xml).children.find((c) => c.name === 'TOTALBYTES');
  return {
    images: images.map((i) => imageOf(i.index, i.properties)),
    properties: new Map(images.map((i) => [i.index, i.properties])),
    totalBytes: total === undefined ? undefined : count(total.text),
  };
}

/**
 * The WimInfo that `imaging.info()` would report for a WIM with this (complete) header and XML
 * data; `path` is copied. Throws WIM_CORRUPT when they disagree on the number of images, as
 * wimlib does.
 */
export function wimInfoFrom(path: string, header: WimHeader, xml: WimXml): WimInfo {
  if (xml.images.length !== header.imageCount) {
    throw new ImagepeError('WIM_CORRUPT', `${path} is damaged: its header counts ${header.imageCount} image(s), its XML data describes ${xml.images.length}`, {
      hint: 'imagepe verify WIM checks the file; copy it again from a good source.',
    });
  }
  return {
    path,
    guid: header.guid,
    version: header.version,
    imageCount: header.imageCount,
    compression: header.compression,
    chunkSize: header.chunkSize,
    partNumber: header.partNumber,
    totalParts: header.totalParts,
    bootIndex: header.bootIndex,
    sizeBytes: xml.totalBytes ?? 0,
    attributes: header.attributes,
    hasIntegrityTable: header.attributes.includes('Integrity info'),
    pipable: header.pipable,
    images: xml.images,
  };
}

function imageOf(index: number, p: ImageProperties): WimImage {
  return {
    index,
    name: p.NAME ?? '',
    description: p.DESCRIPTION ?? '',
    directoryCount: count(p.DIRCOUNT),
    fileCount: count(p.FILECOUNT),
    totalBytes: count(p.TOTALBYTES),
    hardLinkBytes: count(p.HARDLINKBYTES),
    creationTime: time(p, 'CREATIONTIME'),
    lastModificationTime: time(p, 'LASTMODIFICATIONTIME'),
    flags: p.FLAGS || undefined,
    wimbootCompatible: count(p.WIMBOOT) !== 0,
  };
}

/** wimlib reads numbers with strtoull: leading digits, else 0. */
function count(text: string | undefined): number {
  const m = /^\s*(\d+)/.exec(text ?? '');
  return m ? Number(m[1]) : 0;
}

/** A Windows FILETIME (100 ns ticks since 1601) stored as two hex halves, as ISO 8601 whole seconds. */
function time(p: ImageProperties, element: string): string {
  const half = (name: string) => {
    const m = /^\s*(?:0x)?([0-9a-f]+)/i.exec(p[`${element}/${name}`] ?? '');
    return m ? BigInt(`0x${m[1]}`) : 0n;
  };
  const ticks = (half('HIGHPART') << 32n) | half('LOWPART');
  const unixSeconds = ticks / 10_000_000n - 11_644_473_600n;
  return new Date(Number(unixSeconds) * 1000).toISOString();
}
