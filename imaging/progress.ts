import type { Progress } from '../core/index.js';

const UNIT_BYTES: Record<string, number> = { B: 1, bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** What one meter line of wimlib-imagex says; the rate and ETA are added by the caller's RateMeter. */
export type WimlibProgress = Omit<Progress, 'rate' | 'etaSeconds'>;

/**
 * Reads one progress line of wimlib-imagex. It redraws its meter with \r, so callers split on
 * \r as well as \n. wimlib scales both numbers to one unit (KiB below 1 MiB total, and so on),
 * so `done` and `total` here are approximate to that unit; the final line has done == total.
 */
export function parseProgressLine(line: string): WimlibProgress | undefined {
  const text = line.trim();
  // "Archiving file data: 2912 KiB of 2929 KiB (99%) done"
  let m = /^(.+?): (\d+) (B|bytes|KiB|MiB|GiB|TiB) of (\d+) (B|bytes|KiB|MiB|GiB|TiB) \(\d+%\) done$/.exec(text);
  if (m) {
    return { phase: m[1]!, unit: 'bytes', done: Number(m[2]) * UNIT_BYTES[m[3]!]!, total: Number(m[4]) * UNIT_BYTES[m[5]!]! };
  }
  // "Creating files: 120 of 4000 (3%) done" and similar counts
  m = /^(.+?): (\d+) of (\d+) (?:\(\d+%\) )?done$/.exec(text);
  if (m) return { phase: m[1]!, unit: 'files', done: Number(m[2]), total: Number(m[3]) };
  // "2929 KiB scanned (4 files, 2 directories)"
  m = /^(\d+) (B|bytes|KiB|MiB|GiB|TiB) scanned \(\d+ files, \d+ directories\)$/.exec(text);
  if (m) return { phase: 'Scanning', unit: 'bytes', done: Number(m[1]) * UNIT_BYTES[m[2]!]! };
  // "Writing "foo2.swm" (part 2 of 3): 10 MiB of 20 MiB (50%) done" is caught by the first form;
  return undefined;
}
