import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GiB, MiB, run } from '../core/index.js';
import { writeRawImage, type WriteRawResult } from '../imaging/raw/index.js';
import { attachImageFile, detachLoop } from '../partition/index.js';
import { makeImage } from './burn.js';
import { median, timed } from './stats.js';

/** One image written six ways; seconds are medians. */
export interface RawCaseFigures {
  /** Image bytes that are data; the rest are holes (unmapped in its bmap). */
  dataBytes: number;
  seconds: {
    /** writeRawImage, the bmap beside the image found (auto): write, fdatasync, O_DIRECT read-back of every window. */
    imagepe: number;
    /** The same with `sha256` given (the source's hash is computed either way; this adds only the comparison). */
    imagepeSha256: number;
    /** `dd if=IMG of=LOOP bs=4M conv=fsync`: every byte, no check. */
    dd: number;
    /** `sha256sum IMG`, then the dd: what a script that checks its download first does. */
    ddSha256: number;
    /** `bmaptool copy IMG LOOP` (Debian's bmap-tools 3.6): mapped ranges only, each range's sha256 checked while reading the image. */
    bmaptool: number;
    /** `bmaptool copy --no-verify`: mapped ranges only, no checksums. */
    bmaptoolNoVerify: number;
  };
  /** Throughput ratios, others' seconds / imagepe's: above 1, imagepe is faster. */
  ratios: { imagepeVsDd: number; imagepeVsDdSha256: number; imagepeVsBmaptool: number; imagepeVsBmaptoolNoVerify: number; imagepeSha256VsBmaptool: number };
  /** What writeRawImage reported on its last run. */
  imagepe: Pick<WriteRawResult, 'writtenBytes' | 'skippedBytes' | 'zeroedBytes'>;
  samples: Record<keyof RawCaseFigures['seconds'], number[]>;
}

export interface RawFigures {
  runs: number;
  imageBytes: number;
  deviceBytes: number;
  yardstick: string;
  dense: RawCaseFigures;
  /** 8 MiB of data, 8 MiB of hole, alternating. */
  halfHoles: RawCaseFigures;
}

const IMAGE_BYTES = GiB;
const LONG = { timeoutMs: 600_000 };


async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * writeRawImage against dd and bmaptool copy (bmap-tools 3.6, the usual yardstick for bmap'd
 * raw images), a 1 GiB image to a loop device whose backing file is in `work`: a dense image
 * and one half made of holes, each with the bmap `bmaptool create` makes of it beside it.
 * Before every sample, untimed, the image is dd'd to the device and its page cache dropped, as
 * bench/burn.ts does (the first buffered write after a pause is slow on this VM), so every
 * sample starts from a device that holds the image.
 */
export async function benchRaw(work: string, runs: number): Promise<RawFigures> {
  const dense = join(work, 'raw-dense.img');
  const holes = join(work, 'raw-holes.img');
  const backing = join(work, 'raw-disk.dev');
  const deviceBytes = IMAGE_BYTES + 64 * MiB;
  await makeImage(dense, IMAGE_BYTES, IMAGE_BYTES, IMAGE_BYTES);
  await makeImage(holes, IMAGE_BYTES, 8 * MiB, 16 * MiB);
  await makeImage(backing, deviceBytes, deviceBytes, deviceBytes);
  for (const img of [dense, holes]) await writeFile(`${img}.bmap`, (await run('bmaptool', ['create', img], LONG)).stdout);
  const loop = await attachImageFile(backing);
  try {
    const flush = () => run('blockdev', ['--flushbufs', loop], LONG);
    const dd = (image: string) => run('dd', [`if=${image}`, `of=${loop}`, 'bs=4M', 'conv=fsync', 'status=none'], LONG);
    const measure = async (image: string, dataBytes: number): Promise<RawCaseFigures> => {
      const sum = await sha256Of(image);
      let last: WriteRawResult | undefined;
      const s: RawCaseFigures['samples'] = { imagepe: [], imagepeSha256: [], dd: [], ddSha256: [], bmaptool: [], bmaptoolNoVerify: [] };
      const samples: [keyof RawCaseFigures['samples'], () => Promise<unknown>][] = [
        ['imagepe', async () => (last = await writeRawImage({ source: { kind: 'file', path: image }, device: loop }))],
        ['imagepeSha256', () => writeRawImage({ source: { kind: 'file', path: image }, device: loop, sha256: sum })],
        ['dd', () => dd(image)],
        ['ddSha256', async () => {
          await run('sha256sum', [image], LONG);
          await dd(image);
        }],
        ['bmaptool', () => run('bmaptool', ['-q', 'copy', image, loop], LONG)],
        ['bmaptoolNoVerify', () => run('bmaptool', ['-q', 'copy', '--no-verify', image, loop], LONG)],
      ];
      for (let i = 0; i < runs; i++) {
        // A different order each run, so that drift over the run hits every tool alike.
        for (const [name, sample] of [...samples.slice(i % samples.length), ...samples.slice(0, i % samples.length)]) {
          await dd(image);
          await flush();
          s[name].push(await timed(sample));
        }
      }
      const m = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)])) as RawCaseFigures['seconds'];
      return {
        dataBytes,
        seconds: m,
        ratios: { imagepeVsDd: m.dd / m.imagepe, imagepeVsDdSha256: m.ddSha256 / m.imagepeSha256, imagepeVsBmaptool: m.bmaptool / m.imagepe, imagepeVsBmaptoolNoVerify: m.bmaptoolNoVerify / m.imagepe, imagepeSha256VsBmaptool: m.bmaptool / m.imagepeSha256 },
        imagepe: { writtenBytes: last!.writtenBytes, skippedBytes: last!.skippedBytes, zeroedBytes: last!.zeroedBytes },
        samples: s,
      };
    };
    const denseFigures = await measure(dense, IMAGE_BYTES);
    const holesFigures = await measure(holes, IMAGE_BYTES / 2);
    return { runs, imageBytes: IMAGE_BYTES, deviceBytes, yardstick: 'bmaptool copy, Debian 12 bmap-tools 3.6', dense: denseFigures, halfHoles: holesFigures };
  } finally {
    await detachLoop(loop);
    for (const f of [dense, holes, `${dense}.bmap`, `${holes}.bmap`, backing]) await rm(f, { force: true });
  }
}
