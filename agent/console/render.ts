import { formatBytes } from '../../core/units.js';

/**
 * Text for an 80x25 console and a dumb serial terminal. Lines stay within 79 columns: several
 * terminals wrap as soon as the 80th column is written, which would leave blank lines behind.
 */
export const WIDTH = 79;

/** Printable ASCII only: names from WIMs and disk models may hold anything, a dumb terminal shows ASCII. */
export function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** Cuts text to `width` columns, marking the cut with "~". */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return `${text.slice(0, width - 1)}~`;
}

/** "2026-11-25T21:13:37.000Z" -> "2026-11-25 21:13" (UTC, as WIMs record times); "" when unknown. */
export function formatWhen(iso: string | undefined): string {
  if (!iso) return '';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  if (m) return `${m[1]} ${m[2]}`;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? truncate(ascii(iso), 16) : d.toISOString().slice(0, 16).replace('T', ' ');
}

/**
 * Breaks text into lines of at most `width` columns, at spaces where it can; continuation lines
 * get `indent`. Existing line breaks are kept.
 */
export function wrap(text: string, width = WIDTH, indent = ''): string[] {
  const out: string[] = [];
  for (const raw of text.replace(/\r\n?/g, '\n').split('\n')) {
    let line = ascii(raw).trimEnd();
    let first = true;
    while (true) {
      const room = first ? width : width - indent.length;
      const prefix = first ? '' : indent;
      if (line.length <= room) {
        out.push(prefix + line);
        break;
      }
      let cut = line.lastIndexOf(' ', room);
      if (cut <= 0) cut = room;
      out.push(prefix + line.slice(0, cut).trimEnd());
      line = line.slice(cut).trimStart();
      first = false;
    }
  }
  return out;
}

export interface Column {
  title: string;
  align?: 'left' | 'right';
  /** Flexible columns give up width (their cells get cut with "~") when the row is too wide. */
  flex?: boolean;
  /** The narrowest a flexible column gets. */
  min?: number;
}

const GAP = '  ';

/**
 * A table with a header line, fitted into `width` columns: when the natural widths are too
 * wide, the widest flexible column gives up one column at a time.
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], width = WIDTH): string[] {
  const cells = rows.map((r) => columns.map((_, i) => ascii(r[i] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i]!.length)));
  const total = () => widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1);
  while (total() > width) {
    let widest = -1;
    columns.forEach((c, i) => {
      if (c.flex && widths[i]! > (c.min ?? 4) && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    });
    if (widest < 0) break;
    widths[widest]!--;
  }
  const line = (values: readonly string[]) =>
    truncate(
      values
        .map((v, i) => {
          const w = widths[i]!;
          const cut = truncate(v, w);
          return columns[i]!.align === 'right' ? cut.padStart(w) : cut.padEnd(w);
        })
        .join(GAP)
        .trimEnd(),
      width,
    );
  return [line(columns.map((c) => c.title)), ...cells.map(line)];
}

/** A table whose first column numbers the rows from 1, so the technician answers with a number. */
export function renderNumbered(columns: readonly Column[], rows: readonly (readonly string[])[], width = WIDTH): string[] {
  return renderTable([{ title: ' #', align: 'right' }, ...columns], rows.map((r, i) => [String(i + 1), ...r]), width);
}

/** Lines that belong to the row above, indented under it and cut to the width. */
export function detailLines(lines: readonly string[], indent = '      ', width = WIDTH): string[] {
  return lines.flatMap((l) => wrap(l, width - indent.length, '  ').map((w) => indent + w));
}

export function size(bytes: number | undefined): string {
  return bytes === undefined ? '' : formatBytes(bytes);
}
