import { ImagepeError } from './errors.js';

const BINARY: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const DECIMAL: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

/**
 * Parses a byte size as people write it: "4096", "512MiB", "2 GiB", "1.5G", "100MB", "4k".
 * A bare suffix (K, M, G) and the IEC forms (KiB, MiB) are powers of 1024, as in sfdisk and
 * wimlib; the SI forms with a B (KB, MB, GB) are powers of 1000, as disk vendors write them.
 */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) throw invalidSize(String(text));
    return text;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$/i.exec(text);
  if (!m) throw invalidSize(text);
  const [, num, prefixRaw, iec, b] = m as unknown as [string, string, string, string, string];
  const prefix = prefixRaw.toLowerCase();
  let factor: number;
  if (prefix === '') factor = 1;
  else if (iec || !b) factor = BINARY[prefix]!;
  else factor = DECIMAL[prefix]!;
  if (iec && !b) throw invalidSize(text);
  const value = Number(num) * factor;
  if (!Number.isSafeInteger(Math.round(value))) throw invalidSize(text);
  if (!Number.isInteger(value)) {
    throw new ImagepeError('INVALID_INPUT', `size "${text}" is not a whole number of bytes`, {
      hint: 'Use a smaller unit, for example 1536MiB instead of 1.5001GiB',
    });
  }
  return value;
}

function invalidSize(text: string): ImagepeError {
  return new ImagepeError('INVALID_INPUT', `"${text}" is not a size`, {
    hint: 'Write a size as a number of bytes or with a unit: 512MiB, 2GiB, 1.5G, 100MB',
  });
}

const IEC_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Formats bytes with IEC units and three significant digits: 1.50 GiB, 512 MiB, 12.0 KiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '?';
  let v = Math.abs(bytes);
  let i = 0;
  while (v >= 1024 && i < IEC_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const sign = bytes < 0 ? '-' : '';
  if (i === 0) return `${sign}${v} B`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${sign}${v.toFixed(digits)} ${IEC_UNITS[i]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** 75 -> "1m15s", 3.2 -> "3s", 4000 -> "1h06m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
