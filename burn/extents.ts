import { ImagepeError, isImagepeError, run } from '../core/index.js';

/** A byte range of the image: `offset` and `length` in bytes. */
export interface Extent {
  offset: number;
  length: number;
}

/**
 * Reads `xfs_io -r -c 'seek -a -r 0' FILE` (every SEEK_DATA / SEEK_HOLE answer from offset 0)
 * into the file's data extents, in order. The output is a header line then one `DATA N` or
 * `HOLE N` per line, alternating; each DATA extent runs to the next HOLE, the last one to the
 * end of the file (xfs_io prints the implicit hole at end of file as `HOLE <size>`). An empty
 * file prints `DATA EOF`; a file that is one hole prints only `HOLE 0`. Offsets past `fileSize`
 * (the file grew meanwhile) are clamped to it.
 *
 * Throws INVALID_INPUT on a line it does not know, so a changed output format is noticed
 * instead of read as "no data".
 */
export function parseSeekOutput(text: string, fileSize: number): Extent[] {
  const marks: { kind: 'DATA' | 'HOLE'; at: number }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || /^Whence\s+Result$/.test(line)) continue;
    const m = /^(DATA|HOLE)\s+(\d+|EOF)$/.exec(line);
    if (!m) throw new ImagepeError('INVALID_INPUT', `unexpected line in xfs_io's seek output: "${line}"`);
    if (m[2] === 'EOF') continue;
    marks.push({ kind: m[1] as 'DATA' | 'HOLE', at: Math.min(Number(m[2]), fileSize) });
  }
  const out: Extent[] = [];
  for (const [i, mark] of marks.entries()) {
    if (mark.kind !== 'DATA') continue;
    const end = marks.slice(i + 1).find((m) => m.kind === 'HOLE')?.at ?? fileSize;
    if (end > mark.at) out.push({ offset: mark.at, length: end - mark.at });
  }
  return out;
}

/**
 * Extents widened to whole `granule`s (the device's logical sector size: O_DIRECT writes
 * nothing smaller) and merged where they touch, sorted. The end is capped at `fileSize`, so the
 * last extent of an image whose size is not a multiple of the granule ends at the image's end
 * (the caller writes that partial sector on its own). Widening only ever adds bytes from holes,
 * which read as zeros, so the bytes written are still exactly the image's.
 */
export function roundExtents(extents: readonly Extent[], granule: number, fileSize: number): Extent[] {
  const widened = extents
    .filter((e) => e.length > 0)
    .map((e) => ({ start: Math.floor(e.offset / granule) * granule, end: Math.min(fileSize, Math.ceil((e.offset + e.length) / granule) * granule) }))
    .sort((a, b) => a.start - b.start);
  const out: Extent[] = [];
  for (const w of widened) {
    const last = out[out.length - 1];
    if (last && w.start <= last.offset + last.length) last.length = Math.max(last.length, w.end - last.offset);
    else out.push({ offset: w.start, length: w.end - w.start });
  }
  return out;
}

export interface DataExtents {
  extents: Extent[];
  /** False when the holes could not be found and the whole image counts as data. */
  sparseAware: boolean;
  /** Why the whole image counts as data, when it does although holes were asked for. */
  warning?: string;
}

/**
 * Where a file's data is, from the kernel's SEEK_DATA / SEEK_HOLE. Node.js has no lseek(), so
 * xfs_io (xfsprogs) asks; its seek command works on any filesystem (ext4, tmpfs, btrfs, xfs;
 * one that knows no holes answers "all data"). If xfs_io is missing, fails, or prints what we
 * cannot read, the whole file counts as data and `warning` says why: slower, never wrong.
 * Cancellation (CANCELLED) is thrown.
 */
export async function findDataExtents(path: string, fileSize: number, signal?: AbortSignal): Promise<DataExtents> {
  const dense = (warning: string): DataExtents => ({ extents: fileSize > 0 ? [{ offset: 0, length: fileSize }] : [], sparseAware: false, warning });
  try {
    const r = await run('xfs_io', ['-r', '-c', 'seek -a -r 0', path], { what: `finding the holes of ${path}`, timeoutMs: 60_000, ...(signal ? { signal } : {}) });
    return { extents: parseSeekOutput(r.stdout, fileSize), sparseAware: true };
  } catch (e) {
    if (isImagepeError(e) && e.code === 'CANCELLED') throw e;
    const why = isImagepeError(e) && e.code === 'TOOL_MISSING' ? 'xfs_io is not installed (apt-get install xfsprogs)' : `xfs_io could not list its holes (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
    return dense(`every byte of ${path} is written: ${why}`);
  }
}
