import { stat, truncate, writeFile } from 'node:fs/promises';
import { run } from '../core/index.js';

export interface EspOptions {
  output: string;
  /** The GRUB x86_64-efi image, installed as the removable-media path EFI/BOOT/BOOTX64.EFI. */
  bootx64: string;
  sourceDateEpoch: number;
  signal?: AbortSignal;
}

/** FAT sizes are rounded to whole MiB with room for the FAT and root directory. */
export function espSizeFor(payloadBytes: number): number {
  const mib = 1024 * 1024;
  return Math.max(2, Math.ceil((payloadBytes * 1.1 + 256 * 1024) / mib)) * mib;
}

/**
 * The EFI system partition image the ISO carries (El Torito EFI entry and GPT partition 2).
 * mtools honours SOURCE_DATE_EPOCH for every directory entry it writes, and the volume serial
 * is fixed, so the image is reproducible.
 */
export async function makeEspImage(options: EspOptions): Promise<void> {
  const size = espSizeFor((await stat(options.bootx64)).size);
  await writeFile(options.output, '');
  await truncate(options.output, size);
  const env = { SOURCE_DATE_EPOCH: String(options.sourceDateEpoch), MTOOLS_SKIP_CHECK: '1' };
  const serial = (options.sourceDateEpoch >>> 0).toString(16).padStart(8, '0');
  const common = { env, timeoutMs: 30_000, signal: options.signal, what: 'building the EFI system partition image' };
  await run('mformat', ['-i', options.output, '-N', serial, '-v', 'IMAGEPE_EFI', '::'], common);
  await run('mmd', ['-i', options.output, '::/EFI', '::/EFI/BOOT'], common);
  await run('mcopy', ['-i', options.output, options.bootx64, '::/EFI/BOOT/BOOTX64.EFI'], common);
}
