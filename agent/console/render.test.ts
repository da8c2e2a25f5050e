import { makeDeployEvent } from '../events/index.js';
import type { DiskRow, PartitionRow, ShareImage } from './inventory.js';
import { eventPrinter, fitEventText } from './progress.js';
import { formatWhen, renderNumbered, renderTable, truncate, WIDTH, wrap } from './render.js';
import { diskTable, groupByFile, imageTable, partitionTable, wimFileTable } from './tables.js';
import { ScriptedTerminal } from '../../test-support/scripted-terminal.js';

const GiB = 1024 ** 3;
const long = (n: number, c = 'x') => c.repeat(n);

function widest(lines: readonly string[]): number {
  return Math.max(...lines.map((l) => l.length));
}

const image = (over: Partial<ShareImage> = {}): ShareImage => ({
  file: 'images/base.wim',
  index: 1,
  name: 'Debian 12 base',
  description: '',
  imageBytes: 1.5 * GiB,
  wimBytes: 600 * 1024 ** 2,
  created: '2026-01-02T10:11:12.000Z',
  layoutRecorded: false,
  ...over,
});

describe('text helpers', () => {
  it('cuts with "~" and keeps what fits', () => {
    expect(truncate('abcdef', 4)).toBe('abc~');
    expect(truncate('abcd', 4)).toBe('abcd');
    expect(truncate('abc', 0)).toBe('');
  });

  it('writes dates short, in UTC', () => {
    expect(formatWhen('2026-11-25T21:13:37.000Z')).toBe('2026-11-25 21:13');
    expect(formatWhen(undefined)).toBe('');
  });

  it('wraps at spaces, hard-cuts words longer than the width, and indents continuations', () => {
    const lines = wrap(`${long(50, 'a')} ${long(50, 'b')} ${long(120, 'c')}`, 60, '  ');
    expect(widest(lines)).toBeLessThanOrEqual(60);
    expect(lines[0]).toBe(long(50, 'a'));
    expect(lines[1]).toBe(`  ${long(50, 'b')}`);
    expect(lines.slice(2).join('').replace(/ /g, '')).toBe(long(120, 'c'));
  });

  it('shows only printable ASCII', () => {
    expect(wrap('Größe\x07')).toEqual(['Gr??e?']);
    expect(wrap('\nline\r\nbreaks\n')).toEqual(['', 'line', 'breaks', '']);
  });
});

describe('tables', () => {
  it('fit the width by cutting the widest flexible column', () => {
    const lines = renderTable(
      [{ title: 'A', flex: true }, { title: 'B', align: 'right' }, { title: 'C', flex: true }],
      [[long(70), '12345', long(40, 'y')]],
      60,
    );
    expect(widest(lines)).toBeLessThanOrEqual(60);
    expect(lines[1]).toContain('~');
    expect(lines[1]).toContain('12345');
  });

  it('number rows from 1', () => {
    const lines = renderNumbered([{ title: 'Name' }], [['a'], ['b']]);
    expect(lines).toEqual([' #  Name', ' 1  a', ' 2  b']);
  });

  it('list images with index, size and date, and mark a recorded layout', () => {
    const lines = imageTable([image(), image({ index: 2, name: 'with layout', layoutRecorded: true })]);
    expect(lines[0]).toMatch(/#\s+File\s+Idx\s+Name\s+Size\s+Created\s+L/);
    expect(lines[1]).toMatch(/^ 1  images\/base\.wim\s+1  Debian 12 base\s+1\.50 GiB  2026-01-02 10:11$/);
    expect(lines[2]).toMatch(/\*$/);
    expect(lines.at(-1)).toContain('records its disk layout');
  });

  it('keep every screen within 80 columns, however long the names', () => {
    const images = [image({ file: `images/${long(90, 'f')}.wim`, name: long(120, 'n'), layoutRecorded: true }), image({ index: 12345 })];
    const disks: DiskRow[] = [
      { path: '/dev/nvme0n1', model: long(100, 'M'), sizeBytes: 2e12, readOnly: true, removable: true, holds: ['GPT: 9 partitions', `nvme0n1p1: ext4 '${long(100, 'l')}' 1.00 GiB (12.0 MiB used)`], contents: undefined },
      { path: '/dev/vdb', model: null, sizeBytes: 8 * GiB, readOnly: false, removable: false, holds: [], contents: undefined },
    ];
    const parts: PartitionRow[] = [{ path: '/dev/nvme0n1p1', name: 'nvme0n1p1', number: 1, sizeBytes: GiB, fsType: 'ext4', label: long(80, 'L'), partLabel: undefined, usedBytes: 3 * GiB }];
    const screens = [imageTable(images), diskTable(disks, '/dev/sr0'), partitionTable(parts), wimFileTable(groupByFile(images))];
    for (const s of screens) expect(widest(s)).toBeLessThanOrEqual(WIDTH);
    expect(diskTable(disks, null).join('\n')).toContain('blank');
    expect(diskTable(disks, '/dev/sr0').at(-1)).toContain('/dev/sr0');
  });

  it('group images by WIM file for the capture destination', () => {
    const files = groupByFile([image(), image({ index: 2, created: '2026-03-04T05:06:00Z' }), image({ file: 'other.wim' })]);
    expect(files.map((f) => [f.file, f.images.length])).toEqual([
      ['images/base.wim', 2],
      ['other.wim', 1],
    ]);
    expect(wimFileTable(files)[1]).toMatch(/images\/base\.wim\s+2\s+600 MiB\s+2026-03-04 05:06/);
  });
});

describe('event lines on a console', () => {
  const progress = (done: number) => makeDeployEvent({ type: 'progress', step: 'apply', phase: `Extracting file data ${long(60, 'p')}`, unit: 'bytes', done, total: 100 });

  it('redraw progress in place on a screen, and print it as a plain line on a serial line', () => {
    const text = '  Extracting 50%  1 MiB / 2 MiB\x1b[K\r';
    expect(fitEventText(text, 'redraw')).toBe('  Extracting 50%  1 MiB / 2 MiB\x1b[K\r');
    expect(fitEventText(text, 'lines')).toBe('  Extracting 50%  1 MiB / 2 MiB\n');
    expect(fitEventText('\x1b[K+ apply done\n', 'lines')).toBe('+ apply done\n');
  });

  it('keep long event lines within the width', () => {
    const out = fitEventText(`\x1b[KFAILED at apply: ${long(200, 'm')}\n  | ${long(100, 's')}\nThe disk was not touched.\n`, 'lines');
    expect(widest(out.split('\n'))).toBeLessThanOrEqual(WIDTH);
  });

  it('throttle progress to one line every 2 s on a serial line, always showing the last', () => {
    let now = 0;
    const term = new ScriptedTerminal([], '/dev/ttyS0', 'lines');
    const print = eventPrinter(term, () => now);
    for (let i = 0; i < 10; i++) {
      now = i * 500;
      print(progress(i));
    }
    print(progress(100));
    const lines = term.transcript.split('\n').filter(Boolean);
    // t = 0, 2000, 4000 and the final one.
    expect(lines).toHaveLength(4);
    expect(widest(lines)).toBeLessThanOrEqual(WIDTH);
    expect(term.transcript).not.toContain('\r');
    expect(term.transcript).not.toContain('\x1b');
  });

  it('redraw progress up to four times a second on a screen', () => {
    let now = 0;
    const term = new ScriptedTerminal([], '/dev/tty1', 'redraw');
    const print = eventPrinter(term, () => now);
    for (let i = 0; i < 10; i++) {
      now = i * 100;
      print(progress(i));
    }
    expect(term.transcript.split('\r').filter(Boolean)).toHaveLength(4);
  });
});
