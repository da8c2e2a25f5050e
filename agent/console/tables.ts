import type { DiskRow, PartitionRow, ShareImage } from './inventory.js';
import { detailLines, formatWhen, renderNumbered, size, WIDTH } from './render.js';

/** The images on the share, numbered; L marks an image that records its disk layout. */
export function imageTable(images: readonly ShareImage[], width = WIDTH): string[] {
  const lines = renderNumbered(
    [
      { title: 'File', flex: true, min: 10 },
      { title: 'Idx', align: 'right' },
      { title: 'Name', flex: true, min: 8 },
      { title: 'Size', align: 'right' },
      { title: 'Created' },
      { title: 'L' },
    ],
    images.map((i) => [i.file, String(i.index), i.name, size(i.imageBytes), formatWhen(i.created), i.layoutRecorded ? '*' : '']),
    width,
  );
  if (images.some((i) => i.layoutRecorded)) lines.push('L: * = the image records its disk layout, which a deploy recreates');
  return lines;
}

/** The disks, numbered, each followed by what it holds. */
export function diskTable(disks: readonly DiskRow[], bootMedium: string | null, width = WIDTH): string[] {
  const head = renderNumbered(
    [
      { title: 'Disk', flex: true, min: 12 },
      { title: 'Size', align: 'right' },
      { title: 'Model', flex: true, min: 8 },
    ],
    disks.map((d) => [d.path, size(d.sizeBytes), [d.model ?? '', d.readOnly ? '(read-only)' : '', d.removable ? '(removable)' : ''].filter(Boolean).join(' ')]),
    width,
  );
  const out = [head[0]!];
  disks.forEach((d, i) => {
    out.push(head[i + 1]!);
    out.push(...detailLines(d.holds.length ? d.holds : ['blank: no partition table, no filesystem'], '      ', width));
  });
  if (bootMedium) out.push(`(${bootMedium}, the medium this environment booted from, is not listed)`);
  return out;
}

/** The partitions of the reference disk, numbered in disk order. */
export function partitionTable(parts: readonly PartitionRow[], width = WIDTH): string[] {
  return renderNumbered(
    [
      { title: 'Partition', flex: true, min: 10 },
      { title: 'Size', align: 'right' },
      { title: 'Filesystem' },
      { title: 'Label', flex: true, min: 6 },
      { title: 'Used', align: 'right' },
    ],
    parts.map((p) => [p.path, size(p.sizeBytes), p.fsType ?? '-', p.label ?? p.partLabel ?? '', size(p.usedBytes)]),
    width,
  );
}

/** A WIM file on the share and the images it holds, for choosing where a capture goes. */
export interface WimFile {
  file: string;
  wimBytes: number;
  images: ShareImage[];
}

export function groupByFile(images: readonly ShareImage[]): WimFile[] {
  const files = new Map<string, WimFile>();
  for (const i of images) {
    const f = files.get(i.file) ?? { file: i.file, wimBytes: i.wimBytes, images: [] };
    f.images.push(i);
    files.set(i.file, f);
  }
  return [...files.values()];
}

export function wimFileTable(files: readonly WimFile[], width = WIDTH): string[] {
  return renderNumbered(
    [
      { title: 'File', flex: true, min: 12 },
      { title: 'Images', align: 'right' },
      { title: 'Size', align: 'right' },
      { title: 'Newest image' },
    ],
    files.map((f) => {
      const newest = f.images.map((i) => i.created ?? '').sort().pop();
      return [f.file, String(f.images.length), size(f.wimBytes), formatWhen(newest)];
    }),
    width,
  );
}
