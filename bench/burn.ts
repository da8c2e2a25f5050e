import { randomFillSync } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GiB, MiB, run } from '../core/index.js';
import { burn, planBurn, type BurnResult } from '../burn/index.js';
import { attachImageFile, detachLoop } from '../partition/index.js';
import { median, timed } from './stats.js';

/** One image burnt three ways; seconds are medians, MiB/s are image bytes (holes included) per second. */
export interface BurnCaseFigures {
  /** Image bytes that are data; the rest are holes. */
  dataBytes: number;
  /** `dd if=IMG of=LOOP bs=4M conv=fsync`. */
  ddSeconds: number;
  /** The same dd, `blockdev --flushbufs`, then `cmp -n SIZE IMG LOOP`: a copy checked the usual way. */
  ddCmpSeconds: number;
  /** planBurn + burn: describe, refusals, holes found, write, sync, read back every block. */
  burnSeconds: number;
  /** burn's own split of its time (medians of each): the write phase (fdatasync included) and the read-back. */
  burnWriteSeconds: number;
  burnVerifySeconds: number;
  ddMiBps: number;
  ddCmpMiBps: number;
  burnMiBps: number;
  /** Throughput of burn over dd's (ddSeconds / burnSeconds): above 1, burn is faster. */
  burnVsDd: number;
  /** The same against dd + cmp, which like burn ends with the copy checked. */
  burnVsDdCmp: number;
  samples: { dd: number[]; ddCmp: number[]; burn: number[] };
}

export interface BurnFigures {
  runs: number;
  imageBytes: number;
  /** The loop device burnt to: its backing file lives in the bench's work dir. */
  deviceBytes: number;
  blockSize: number;
  /** Whether burn used O_DIRECT on the loop device. */
  directIo: boolean;
  dense: BurnCaseFigures;
  /** 8 MiB of data, 8 MiB of hole, alternating: half the image is holes. */
  halfHoles: BurnCaseFigures;
}

const IMAGE_BYTES = GiB;
const LONG = { timeoutMs: 600_000 };
const CHUNK = 8 * MiB;

/** Writes `size` bytes of random data at every `every` bytes of a file of `total` bytes (every = size: dense). */
export async function makeImage(path: string, total: number, size: number, every: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(total);
    const buf = Buffer.alloc(CHUNK);
    for (let at = 0; at < total; at += every) {
      for (let done = 0; done < size; done += CHUNK) await fh.write(randomFillSync(buf), 0, Math.min(CHUNK, size - done), at + done);
    }
  } finally {
    await fh.close();
  }
}

/**
 * imagepe burn against dd and against dd + cmp, writing a 1 GiB image file to a loop device
 * whose backing file is in `work`: a dense image and one half made of holes. Before every
 * sample, untimed, the image is dd'd once to the device and the device's page cache dropped:
 * on this VM the first buffered write after a pause is up to 4 times slower (the kernel gets
 * the page cache's pages back from the hypervisor, which took them when they were freed), which
 * burn's O_DIRECT never pays; warming dd first keeps the comparison on its side. The backing
 * file is written in full first, so no sample pays for allocating it.
 */
export async function benchBurn(work: string, runs: number): Promise<BurnFigures> {
  const dense = join(work, 'burn-dense.img');
  const holes = join(work, 'burn-holes.img');
  const backing = join(work, 'burn-stick.dev');
  const deviceBytes = IMAGE_BYTES + 64 * MiB;
  await makeImage(dense, IMAGE_BYTES, IMAGE_BYTES, IMAGE_BYTES);
  await makeImage(holes, IMAGE_BYTES, CHUNK, 2 * CHUNK);
  await makeImage(backing, deviceBytes, deviceBytes, deviceBytes);
  const loop = await attachImageFile(backing);
  let directIo = true;
  try {
    const flush = () => run('blockdev', ['--flushbufs', loop], LONG);
    const dd = (image: string) => run('dd', [`if=${image}`, `of=${loop}`, 'bs=4M', 'conv=fsync', 'status=none'], LONG);
    const measure = async (image: string, dataBytes: number): Promise<BurnCaseFigures> => {
      const s = { dd: [] as number[], ddCmp: [] as number[], burn: [] as number[] };
      const phases = { write: [] as number[], verify: [] as number[] };
      const samples: [keyof typeof s, () => Promise<unknown>][] = [
        ['dd', () => dd(image)],
        ['ddCmp', async () => {
          await dd(image);
          await flush();
          await run('cmp', ['-n', String(IMAGE_BYTES), image, loop], LONG);
        }],
        ['burn', async () => {
          const r: BurnResult = await burn(await planBurn(image, loop, { treatAsRemovable: [loop] }));
          phases.write.push(r.writeSeconds);
          phases.verify.push(r.verifySeconds);
          directIo &&= r.directIo;
        }],
      ];
      for (let i = 0; i < runs; i++) {
        // A different order each run, so that drift over the run hits every tool alike.
        for (const [name, sample] of [...samples.slice(i % 3), ...samples.slice(0, i % 3)]) {
          await dd(image);
          await flush();
          s[name].push(await timed(sample));
        }
      }
      const [ddS, cmpS, burnS] = [median(s.dd), median(s.ddCmp), median(s.burn)];
      const mibps = (sec: number) => IMAGE_BYTES / MiB / sec;
      return {
        dataBytes,
        ddSeconds: ddS,
        ddCmpSeconds: cmpS,
        burnSeconds: burnS,
        burnWriteSeconds: median(phases.write),
        burnVerifySeconds: median(phases.verify),
        ddMiBps: mibps(ddS),
        ddCmpMiBps: mibps(cmpS),
        burnMiBps: mibps(burnS),
        burnVsDd: ddS / burnS,
        burnVsDdCmp: cmpS / burnS,
        samples: s,
      };
    };
    const denseFigures = await measure(dense, IMAGE_BYTES);
    const holesFigures = await measure(holes, IMAGE_BYTES / 2);
    return { runs, imageBytes: IMAGE_BYTES, deviceBytes, blockSize: 4 * MiB, directIo, dense: denseFigures, halfHoles: holesFigures };
  } finally {
    await detachLoop(loop);
    for (const f of [dense, holes, backing]) await rm(f, { force: true });
  }
}
