import type { Argv, CommandModule } from 'yargs';
import { ImagepeError, formatBytes } from '../../core/index.js';
import { captureRaw, type CaptureRawResult } from '../../imaging/raw/index.js';
import { printJson } from '../output.js';
import { withProgress } from '../progress.js';

interface CaptureRawArgs {
  json: boolean;
  disk: string;
  output: string;
  level: number;
  'scratch-dir': string | undefined;
}

export const captureRawCommand: CommandModule<{ json: boolean }, CaptureRawArgs> = {
  command: 'capture-raw <disk> <output>',
  describe: 'Capture a disk as a raw image of its used blocks only: zstd-compressed, with its block map (bmap) and sha256',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', demandOption: true, describe: 'The whole disk (/dev/sdX) or a disk image file; no filesystem on it may be mounted' })
      .positional('output', { type: 'string', demandOption: true, describe: 'The image to write, ending in .zst; OUTPUT without .zst plus .bmap and OUTPUT.sha256 go beside it' })
      .option('level', { type: 'number', default: 3, describe: 'zstd compression level, 1 (fastest) to 22 (smallest; 20 and up need much memory)' })
      .option('scratch-dir', { type: 'string', describe: "Where the sparse intermediate image is made (needs the disk's used bytes free); default: OUTPUT's directory" })
      .example('$0 capture-raw /dev/sdb out/debian.img.zst', 'writes out/debian.img.zst, out/debian.img.bmap and out/debian.img.zst.sha256')
      .example('$0 capture-raw ref.img out/ref.img.zst --level 19 --json', 'smaller, slower; progress and the result as JSON lines') as Argv<CaptureRawArgs>,
  handler: async (a) => {
    if (!Number.isInteger(a.level)) throw new ImagepeError('INVALID_INPUT', `--level ${a.level} is not a whole number`, { hint: 'Give a zstd level from 1 to 22; 3 is the default.' });
    // Ctrl-C stops the tool that runs and removes the intermediate image, instead of leaving it behind.
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const result = await withProgress(`Capturing ${a.disk} to ${a.output}`, a.json, (events) =>
      captureRaw({ disk: a.disk, output: a.output, level: a.level, events, signal: controller.signal, ...(a['scratch-dir'] ? { scratchDir: a['scratch-dir'] } : {}) }),
    ).finally(() => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    });
    if (a.json) printJson({ type: 'result', operation: 'capture-raw', result });
    else process.stdout.write(renderCaptureRaw(result));
  },
};

/** The summary printed after a capture: sizes, how each partition was copied, the paths and the sha256. */
export function renderCaptureRaw(r: CaptureRawResult): string {
  const pct = (x: number, of: number) => (of > 0 ? `${((100 * x) / of).toFixed(1)}%` : '-');
  const lines = [
    `Captured the used blocks of the disk in ${(r.durationMs / 1000).toFixed(1)} s.`,
    `  disk      ${formatBytes(r.imageBytes)}`,
    `  used      ${formatBytes(r.usedBytes)} (${pct(r.usedBytes, r.imageBytes)} of the disk, mapped in the bmap)`,
    `  output    ${formatBytes(r.outputBytes)} (${pct(r.outputBytes, r.usedBytes)} of the used bytes; ${r.outputBytes > 0 ? (r.imageBytes / r.outputBytes).toFixed(1) : '-'}:1 against the disk)`,
  ];
  for (const p of r.partitions) lines.push(`  partition ${String(p.number).padEnd(3)} ${(p.fsType ?? 'no filesystem').padEnd(13)} ${p.method.padEnd(15)} ${formatBytes(p.usedBytes)}`);
  lines.push(`  image     ${r.output}`, `  bmap      ${r.bmap}`, `  sha256    ${r.sha256}  (${r.sha256File})`);
  return `${lines.join('\n')}\n`;
}
