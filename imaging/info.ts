import { ImagepeError } from '../core/index.js';

export type Compression = 'none' | 'xpress' | 'lzx' | 'lzms';

export interface WimImage {
  index: number;
  name: string;
  description: string;
  directoryCount: number;
  fileCount: number;
  totalBytes: number;
  hardLinkBytes: number;
  creationTime: string | undefined;
  lastModificationTime: string | undefined;
  flags: string | undefined;
  wimbootCompatible: boolean;
}

export interface WimInfo {
  path: string;
  guid: string;
  version: number;
  imageCount: number;
  compression: Compression;
  chunkSize: number;
  partNumber: number;
  totalParts: number;
  bootIndex: number;
  /**
   * wimlib's "Size": the WIM's own <TOTALBYTES> in its XML data, which wimlib sets to the bytes
   * before the XML data, so it is a little less than the file's length.
   */
  sizeBytes: number;
  attributes: string[];
  hasIntegrityTable: boolean;
  /** wimlib's pipable format (magic WLPWM): applies from a stream read once from start to end. */
  pipable: boolean;
  images: WimImage[];
}

/**
 * Parses `wimlib-imagex info WIM` output: a header block of "Key: value" lines, then one block
 * per image starting at "Index:". Values are copied as wimlib prints them; times become ISO 8601.
 */
export function parseWimInfo(text: string): WimInfo {
  const [headerPart, imagesPart = ''] = text.split(/\nAvailable Images:\n-+\n/);
  const header = keyValues(headerPart ?? '');
  const need = (key: string): string => {
    const v = header.get(key);
    if (v === undefined) throw new ImagepeError('WIM_CORRUPT', `wimlib-imagex info printed no "${key}" field`, { hint: 'The WIM or the installed wimlib may be unusual; run wimlib-imagex info on it to see.' });
    return v;
  };
  const [partNumber, totalParts] = (header.get('Part Number') ?? '1/1').split('/').map(Number);
  const attributes = (header.get('Attributes') ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const images = imagesPart
    .split(/\n(?=Index:)/)
    .map((block) => block.trim())
    .filter((block) => block.startsWith('Index:'))
    .map(parseImage);
  return {
    path: need('Path'),
    guid: need('GUID'),
    version: Number(need('Version')),
    imageCount: Number(need('Image Count')),
    compression: normalizeCompression(need('Compression')),
    chunkSize: Number((header.get('Chunk Size') ?? '0').split(' ')[0]),
    partNumber: partNumber ?? 1,
    totalParts: totalParts ?? 1,
    bootIndex: Number(header.get('Boot Index') ?? 0),
    sizeBytes: Number((header.get('Size') ?? '0').split(' ')[0]),
    attributes,
    hasIntegrityTable: attributes.includes('Integrity info'),
    pipable: attributes.includes('Pipable'),
    images,
  };
}

function parseImage(block: string): WimImage {
  const kv = keyValues(block);
  const num = (key: string) => Number((kv.get(key) ?? '0').split(' ')[0]);
  return {
    index: num('Index'),
    name: kv.get('Name') ?? '',
    description: kv.get('Description') ?? '',
    directoryCount: num('Directory Count'),
    fileCount: num('File Count'),
    totalBytes: num('Total Bytes'),
    hardLinkBytes: num('Hard Link Bytes'),
    creationTime: toIso(kv.get('Creation Time')),
    lastModificationTime: toIso(kv.get('Last Modification Time')),
    flags: kv.get('Flags'),
    wimbootCompatible: kv.get('WIMBoot compatible') === 'yes',
  };
}

function keyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z ]*?):\s(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.trim());
    else {
      const bare = /^([A-Za-z][A-Za-z ]*?):$/.exec(line);
      if (bare) out.set(bare[1]!, '');
    }
  }
  return out;
}

function normalizeCompression(text: string): Compression {
  const t = text.toLowerCase();
  if (t === 'none') return 'none';
  if (t === 'xpress') return 'xpress';
  if (t === 'lzx') return 'lzx';
  if (t === 'lzms') return 'lzms';
  throw new ImagepeError('WIM_CORRUPT', `unknown compression type "${text}" in WIM header`);
}

/** "Wed Nov 25 21:13:37 2026 UTC" -> "2026-11-25T21:13:37.000Z" */
function toIso(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const d = new Date(text.replace(/ UTC$/, ' GMT'));
  return Number.isNaN(d.getTime()) ? text : d.toISOString();
}

/** Finds an image by 1-based index or exact name; the error lists what the WIM holds. */
export function selectImage(info: WimInfo, selector: number | string): WimImage {
  const wanted = typeof selector === 'number' || /^\d+$/.test(selector) ? { index: Number(selector) } : { name: selector };
  const found = info.images.find((img) => ('index' in wanted ? img.index === wanted.index : img.name === wanted.name));
  if (found) return found;
  const list = info.images.map((img) => `${img.index} "${img.name}"`).join(', ') || 'none';
  throw new ImagepeError('IMAGE_NOT_FOUND', `${info.path} has no image ${typeof selector === 'string' && !/^\d+$/.test(selector) ? `named "${selector}"` : `with index ${selector}`}; it holds: ${list}`, {
    hint: 'Name an image by its index (1-based) or its exact name; imagepe info WIM lists them.',
  });
}
