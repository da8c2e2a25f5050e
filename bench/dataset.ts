import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Dataset {
  root: string;
  bytes: number;
  files: number;
}

const WORDS = 'the of and to in is was for that on with as by at from boot disk image partition kernel module library share volume'.split(' ');

/**
 * A tree shaped like an OS image: many small compressible files (configs, scripts), large
 * binaries that compress partly, and duplicated files (the same library in two places), so
 * compression and single-instancing both matter. About `targetBytes` in all.
 */
export async function makeDataset(root: string, targetBytes: number): Promise<Dataset> {
  let bytes = 0;
  let files = 0;
  const smallShare = Math.floor(targetBytes * 0.15);
  for (let dir = 0; bytes < smallShare; dir++) {
    const d = join(root, 'etc', `pkg${dir}`);
    await mkdir(d, { recursive: true });
    for (let i = 0; i < 50 && bytes < smallShare; i++) {
      const size = 512 + ((dir * 50 + i) * 7919) % (24 * 1024);
      const text = textOf(size, dir * 50 + i);
      await writeFile(join(d, `file${i}.conf`), text);
      bytes += text.length;
      files++;
    }
  }
  const big = join(root, 'usr/lib');
  await mkdir(big, { recursive: true });
  const dupDir = join(root, 'opt/vendor/lib');
  await mkdir(dupDir, { recursive: true });
  for (let i = 0; bytes < targetBytes; i++) {
    const size = (8 + (i % 5) * 4) * 1024 * 1024;
    const path = join(big, `lib${i}.so`);
    await writeFile(path, binaryOf(size));
    bytes += size;
    files++;
    if (i % 4 === 0 && bytes < targetBytes) {
      await copyFile(path, join(dupDir, `lib${i}.so`));
      bytes += size;
      files++;
    }
  }
  return { root, bytes, files };
}

function textOf(size: number, seed: number): string {
  let s = '';
  let n = seed;
  while (s.length < size) {
    n = (n * 1103515245 + 12345) >>> 0;
    s += `${WORDS[n % WORDS.length]}${n % 11 === 0 ? '\n' : ' '}`;
  }
  return s.slice(0, size);
}

/** Half random, half repetitive, in 64 KiB stripes: compresses to roughly 55-60%, like machine code. */
function binaryOf(size: number): Buffer {
  const buf = Buffer.alloc(size);
  const stripe = 64 * 1024;
  const pattern = Buffer.from(textOf(stripe, size));
  for (let off = 0; off < size; off += stripe) {
    const len = Math.min(stripe, size - off);
    if ((off / stripe) % 2 === 0) randomBytes(len).copy(buf, off);
    else pattern.copy(buf, off, 0, len);
  }
  return buf;
}
