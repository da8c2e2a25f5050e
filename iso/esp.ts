import { stat, truncate, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { MTOOLS_ENV, run } from '../core/index.js';

/** One file of the ESP: a host file or generated text, at a path on the FAT volume ("EFI/BOOT/BOOTX64.EFI"). */
export type EspFile = { target: string; source: string } | { target: string; data: string };

export interface EspOptions {
  output: string;
  /**
   * What the ESP holds. The unsigned chain is one GRUB image at the removable-media path
   * EFI/BOOT/BOOTX64.EFI; the signed chain is shim there, the signed GRUB beside it and that
   * GRUB's config where its built-in prefix points.
   */
  files: readonly EspFile[];
  sourceDateEpoch: number;
  signal?: AbortSignal;
}

/** FAT sizes are rounded to whole MiB with room for the FAT and root directory. */
export function espSizeFor(payloadBytes: number): number {
  const mib = 1024 * 1024;
  return Math.max(2, Math.ceil((payloadBytes * 1.1 + 256 * 1024) / mib)) * mib;
}

/** Every folder the files need, parents first ("EFI", "EFI/BOOT"). */
export function espFolders(files: readonly EspFile[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = posix.dirname(f.target.replace(/^\/+/, '')).split('/').filter((p) => p && p !== '.');
    parts.forEach((_, i) => dirs.add(parts.slice(0, i + 1).join('/')));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The EFI system partition image the ISO carries (El Torito EFI entry and GPT partition 2).
 * mtools honours SOURCE_DATE_EPOCH for every directory entry it writes, and the volume serial
 * is fixed, so the image is reproducible.
 */
export async function makeEspImage(options: EspOptions): Promise<void> {
  let bytes = 0;
  for (const f of options.files) bytes += 'source' in f ? (await stat(f.source)).size : Buffer.byteLength(f.data);
  const size = espSizeFor(bytes);
  await writeFile(options.output, '');
  await truncate(options.output, size);
  const env = { ...MTOOLS_ENV, SOURCE_DATE_EPOCH: String(options.sourceDateEpoch) };
  const serial = (options.sourceDateEpoch >>> 0).toString(16).padStart(8, '0');
  const common = { env, timeoutMs: 30_000, signal: options.signal, what: 'building the EFI system partition image' };
  await run('mformat', ['-i', options.output, '-N', serial, '-v', 'IMAGEPE_EFI', '::'], common);
  const folders = espFolders(options.files);
  if (folders.length > 0) await run('mmd', ['-i', options.output, ...folders.map((d) => `::/${d}`)], common);
  for (const f of options.files) {
    const target = `::/${f.target.replace(/^\/+/, '')}`;
    if ('source' in f) await run('mcopy', ['-i', options.output, f.source, target], common);
    else await run('mcopy', ['-i', options.output, '-', target], { ...common, input: f.data });
  }
}
