import { open } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { ImagepeError, pathKind } from '../core/index.js';
import { parseWimHeader, WIM_HEADER_SIZE, type WimHeader } from './wim-header.js';

/**
 * The file names wimlib-imagex split gives the parts of a split WIM whose first part is
 * `first`: part 1 is `first` itself, part N (N >= 2) is the stem with N before the extension
 * (`install.swm`, `install2.swm`, ... `install10.swm`; `x` without an extension: `x2`, `x3`).
 * `totalParts` counts part 1. Pure.
 */
export function splitPartNames(first: string, totalParts: number): string[] {
  const dir = dirname(first);
  const name = basename(first);
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  const out = [first];
  for (let n = 2; n <= totalParts; n++) out.push(join(dir, `${stem}${n}${ext}`));
  return out;
}

/**
 * Every part of the split WIM whose first part is `wimPath`, in part order, first part
 * included; `[wimPath]` for a WIM that is not split. The other parts are looked for beside the
 * first, named as wimlib-imagex split names them (splitPartNames), and each one's header is read
 * to check it is that part of the same WIM (same GUID). Nothing is written.
 *
 * Throws INVALID_INPUT when `wimPath` is a later part (name the first one), NOT_FOUND naming
 * every missing part, WIM_CORRUPT when a file in a part's place is not a WIM, and INVALID_INPUT
 * when it is another WIM's part or another part number.
 */
export async function splitParts(wimPath: string): Promise<string[]> {
  const first = await readHeader(wimPath);
  if (first.totalParts <= 1) return [wimPath];
  if (first.partNumber !== 1) {
    throw new ImagepeError('INVALID_INPUT', `${wimPath} is part ${first.partNumber} of a split WIM (${first.totalParts} parts); name its first part`, {
      hint: 'Give the first .swm file (install.swm, not install2.swm): the other parts are found beside it.',
    });
  }
  const names = splitPartNames(wimPath, first.totalParts);
  const missing: string[] = [];
  for (const p of names.slice(1)) if ((await pathKind(p)) !== 'file') missing.push(p);
  if (missing.length > 0) {
    throw new ImagepeError('NOT_FOUND', `${wimPath} is part 1 of a split WIM of ${first.totalParts} parts, and ${missing.length === 1 ? 'part' : 'parts'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`, {
      hint: `Copy every part of the split WIM into ${dirname(wimPath)} with the names imagepe split gave them (${basename(names[1]!)}, ...).`,
    });
  }
  for (const [i, p] of names.entries()) {
    if (i === 0) continue;
    const h = await readHeader(p);
    if (h.guid !== first.guid || h.partNumber !== i + 1 || h.totalParts !== first.totalParts) {
      throw new ImagepeError('INVALID_INPUT', `${p} is not part ${i + 1} of ${wimPath}: it is ${h.totalParts > 1 ? `part ${h.partNumber} of ${h.totalParts} of ${h.guid === first.guid ? 'the same' : 'another'} split WIM` : 'a whole WIM'}`, {
        hint: 'The parts beside the first come from another split: copy the parts of one split together again.',
      });
    }
  }
  return names;
}

/** wimlib-imagex arguments that name the other parts of a split WIM (none for a whole WIM). */
export function refArgs(parts: readonly string[]): string[] {
  return parts.slice(1).map((p) => `--ref=${p}`);
}

/** A typed refusal for a verb that would write into a split WIM, which wimlib cannot modify. */
export function splitWimUnsupported(wimPath: string, what: string): ImagepeError {
  return new ImagepeError('UNSUPPORTED', `${wimPath} is part of a split WIM, which cannot be ${what}`, {
    hint: `Join the parts into one WIM first: imagepe export ${wimPath} all WHOLE.wim (the other parts are found beside the first).`,
  });
}

async function readHeader(path: string): Promise<WimHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(WIM_HEADER_SIZE);
    const { bytesRead } = await fh.read(buf, 0, WIM_HEADER_SIZE, 0);
    return parseWimHeader(buf.subarray(0, bytesRead), path);
  } finally {
    await fh.close();
  }
}
