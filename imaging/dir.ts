export interface WimDirEntry {
  path: string;
  attributes: number;
  isDirectory: boolean;
  isReparsePoint: boolean;
  linkCount: number;
  linkGroupId: string | undefined;
  size: number;
  sha1: string | undefined;
  lastWriteTime: string | undefined;
  unix: { uid: number; gid: number; mode: number; rdev: number } | undefined;
}

const FILE_ATTRIBUTE_DIRECTORY = 0x10;
const FILE_ATTRIBUTE_REPARSE_POINT = 0x400;
const NULL_HASH = /^0x0+$/;

/** Parses `wimlib-imagex dir --detailed`: blocks separated by a rule of dashes, "Key = value" lines. */
export function parseDirDetailed(text: string): WimDirEntry[] {
  return text
    .split(/^-{20,}$/m)
    .map((block) => block.trim())
    .filter((block) => block.includes('Full Path'))
    .map(parseEntry);
}

function parseEntry(block: string): WimDirEntry {
  const kv = new Map<string, string>();
  let sizeSeen = false;
  let size = 0;
  let sha1: string | undefined;
  for (const raw of block.split('\n')) {
    const m = /^\s*([A-Za-z][A-Za-z -]*?)\s*=\s?(.*)$/.exec(raw);
    if (!m) continue;
    const key = m[1]!;
    const value = m[2]!.trim();
    // The first data stream listed is the unnamed (main) one; named streams follow.
    if (key === 'Uncompressed size' && !sizeSeen) {
      size = Number(value.split(' ')[0]);
      sizeSeen = true;
    } else if (key === 'Hash' && sha1 === undefined) {
      sha1 = NULL_HASH.test(value) ? undefined : value.replace(/^0x/, '');
    } else if (!kv.has(key)) kv.set(key, value);
  }
  const attributes = Number(kv.get('Attributes') ?? '0');
  const unixText = kv.get('UNIX Data');
  let unix: WimDirEntry['unix'];
  if (unixText) {
    const u = /uid:(\d+) gid:(\d+) mode:(\d+) rdev:(0x[0-9a-f]+|\d+)/i.exec(unixText);
    if (u) unix = { uid: Number(u[1]), gid: Number(u[2]), mode: parseInt(u[3]!, 8), rdev: Number(u[4]) };
  }
  const full = kv.get('Full Path') ?? '';
  const lastWrite = kv.get('Last Write Time');
  return {
    path: full.replace(/^"(.*)"$/, '$1'),
    attributes,
    isDirectory: (attributes & FILE_ATTRIBUTE_DIRECTORY) !== 0,
    isReparsePoint: (attributes & FILE_ATTRIBUTE_REPARSE_POINT) !== 0,
    linkCount: Number(kv.get('Link Count') ?? '1'),
    linkGroupId: kv.get('Link Group ID'),
    size,
    sha1,
    lastWriteTime: lastWrite ? new Date(lastWrite.replace(/ UTC$/, ' GMT')).toISOString() : undefined,
    unix,
  };
}

/** Plain `wimlib-imagex dir` prints one absolute path a line. */
export function parseDirPlain(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}
