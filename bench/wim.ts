import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/index.js';
import * as imaging from '../imaging/index.js';
import type { Compression } from '../imaging/index.js';
import type { Dataset } from './dataset.js';
import { median, timed } from './stats.js';

export interface WimFigures {
  datasetBytes: number;
  datasetFiles: number;
  compression: Compression;
  runs: number;
  capture: { imagepeSeconds: number; wimlibSeconds: number; overhead: number; wimBytes: number; samples: { imagepe: number[]; wimlib: number[] } };
  apply: { imagepeSeconds: number; wimlibSeconds: number; overhead: number; imagepeMiBps: number; samples: { imagepe: number[]; wimlib: number[] } };
  tarZstd: { createSeconds: number; extractSeconds: number; archiveBytes: number; samples: { create: number[]; extract: number[] } };
}

const LONG = { timeoutMs: 3_600_000 };

// Dirty pages a sample leaves behind would be written back during the next one, whichever side
// that is; a sync before each sample (not timed) starts every sample from the same state.
const settle = () => run('sync', [], LONG);

/**
 * imagepe's verbs against wimlib-imagex with the same arguments, on the same data, alternating
 * so that cache and thermal drift hit both sides alike. Overhead = imagepe / wimlib - 1.
 */
export async function benchWim(data: Dataset, work: string, compression: Compression, runs: number): Promise<WimFigures> {
  const viaImagepe = join(work, 'imagepe.wim');
  const direct = join(work, 'direct.wim');
  const clean = async () => {
    await rm(viaImagepe, { force: true });
    await rm(direct, { force: true });
  };
  const capI: number[] = [];
  const capW: number[] = [];
  for (let i = 0; i < runs; i++) {
    await clean();
    await settle();
    capI.push(await timed(() => imaging.capture(data.root, viaImagepe, { name: 'bench', compression, events: () => {} })));
    await settle();
    capW.push(await timed(() => run('wimlib-imagex', ['capture', data.root, direct, 'bench', `--compress=${compression.toUpperCase()}`, '--unix-data'], LONG)));
  }
  const wimBytes = (await stat(viaImagepe)).size;

  const outI = join(work, 'apply-imagepe');
  const outW = join(work, 'apply-direct');
  const appI: number[] = [];
  const appW: number[] = [];
  for (let i = 0; i < runs; i++) {
    await rm(outI, { recursive: true, force: true });
    await settle();
    appI.push(await timed(() => imaging.apply(viaImagepe, 1, outI, { events: () => {} })));
    await rm(outW, { recursive: true, force: true });
    await settle();
    appW.push(await timed(() => run('wimlib-imagex', ['apply', viaImagepe, '1', outW, '--unix-data'], LONG)));
  }
  await rm(outI, { recursive: true, force: true });
  await rm(outW, { recursive: true, force: true });

  const tarFile = join(work, 'tree.tar.zst');
  const tarOut = join(work, 'tar-out');
  const tarCreate: number[] = [];
  const tarExtract: number[] = [];
  let archiveBytes = 0;
  for (let i = 0; i < runs; i++) {
    await rm(tarFile, { force: true });
    await settle();
    tarCreate.push(await timed(() => run('tar', ['--zstd', '-cf', tarFile, '-C', data.root, '.'], LONG)));
    archiveBytes = (await stat(tarFile)).size;
    await rm(tarOut, { recursive: true, force: true });
    await mkdir(tarOut, { recursive: true });
    await settle();
    tarExtract.push(await timed(() => run('tar', ['--zstd', '-xf', tarFile, '-C', tarOut], LONG)));
  }
  await rm(tarOut, { recursive: true, force: true });
  await clean();
  await rm(tarFile, { force: true });

  const ci = median(capI);
  const cw = median(capW);
  const ai = median(appI);
  const aw = median(appW);
  return {
    datasetBytes: data.bytes,
    datasetFiles: data.files,
    compression,
    runs,
    capture: { imagepeSeconds: ci, wimlibSeconds: cw, overhead: ci / cw - 1, wimBytes, samples: { imagepe: capI, wimlib: capW } },
    apply: { imagepeSeconds: ai, wimlibSeconds: aw, overhead: ai / aw - 1, imagepeMiBps: data.bytes / 1024 / 1024 / ai, samples: { imagepe: appI, wimlib: appW } },
    tarZstd: { createSeconds: median(tarCreate), extractSeconds: median(tarExtract), archiveBytes, samples: { create: tarCreate, extract: tarExtract } },
  };
}
