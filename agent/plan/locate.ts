import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { ImagepeError } from '../../core/index.js';
import { mapShare, parseSourceUrl, type MapOptions } from '../share/index.js';

export interface PlanText {
  text: string;
  /** Where it came from, for messages: a path or the URL. */
  source: string;
}

/** Whether reaching `location` (a plan, an image source or a capture destination) needs the network up first. */
export function planNeedsNetwork(location: string): boolean {
  return /^(smb|nfs|https?):/.test(location);
}

/**
 * Reads a plan from where imagepe.plan= says: a path inside the PE (the embedded plan, or a
 * file on the boot medium already mounted), or a URL of the same kinds as an image source:
 * smb://server/share/folder/plan.yaml (guest access), nfs://, http(s)://, media:/plan.yaml.
 * The share is unmounted again once the plan is read; the deploy maps its own source later.
 */
export async function readPlanText(location: string, options: MapOptions = {}): Promise<PlanText> {
  if (location.startsWith('/')) return { text: await readFile(location, 'utf8'), source: location };
  const loc = parseSourceUrl(location);
  if (loc.kind === 'http') {
    const response = await fetch(loc.url, { signal: options.signal ?? AbortSignal.timeout(60_000) });
    if (!response.ok) throw new ImagepeError('NOT_FOUND', `the plan at ${location} could not be fetched: HTTP ${response.status}`);
    return { text: await response.text(), source: location };
  }
  // The file's folder is mapped like an image source, and the file read from it.
  const cut = location.lastIndexOf('/');
  const folder = location.slice(0, cut);
  const file = location.slice(cut + 1);
  if (!file || posix.basename(file) !== file) throw new ImagepeError('INVALID_INPUT', `imagepe.plan=${location} does not name a file`);
  const share = await mapShare({ url: folder.endsWith(':') ? `${folder}/` : folder, image: file }, options);
  try {
    return { text: await readFile(share.imagePath!, 'utf8'), source: location };
  } finally {
    await share.release();
  }
}
