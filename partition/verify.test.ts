import { GiB } from '../core/index.js';
import { compareWithLayout, parseLayout, resolveLayout, renderSfdiskScript, type ResolvedLayout, type SfdiskTable } from './index.js';

const planned: ResolvedLayout = resolveLayout(
  parseLayout({
    table: 'gpt',
    id: '5A0C3B8E-2D6F-4E43-9D1B-7A3C11D0E001',
    partitions: [
      { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat', label: 'ESP', uuid: '1234-abcd' },
      { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root', partuuid: '6E1B7C1C-6F1E-4E4B-8F3C-0A1B2C3D4E5F', flags: ['bootable'] },
    ],
  }),
  { path: '/dev/loop9', sizeBytes: 4 * GiB, sectorSize: 512 },
);

/** The table and filesystems exactly as sfdisk and blkid report a disk written from `planned`. */
function asWritten(): { table: SfdiskTable; fs: Map<number, Record<string, string>> } {
  const [esp, root] = planned.partitions;
  return {
    table: {
      label: 'gpt',
      id: '5A0C3B8E-2D6F-4E43-9D1B-7A3C11D0E001',
      sectorsize: 512,
      partitions: [
        { node: '/dev/loop9p1', start: esp!.start, size: esp!.size, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: 'AAAAAAAA-0000-4000-8000-000000000001', name: 'ESP' },
        { node: '/dev/loop9p2', start: root!.start, size: root!.size, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', uuid: '6E1B7C1C-6F1E-4E4B-8F3C-0A1B2C3D4E5F', name: 'root', attrs: 'LegacyBIOSBootable' },
      ],
    },
    fs: new Map([
      [1, { TYPE: 'vfat', LABEL: 'ESP', UUID: '1234-ABCD' }],
      [2, { TYPE: 'ext4', LABEL: 'root', UUID: 'f00f0000-0000-4000-8000-000000000000' }],
    ]),
  };
}

describe('compareWithLayout', () => {
  it('finds no difference in a disk written as planned, and reports what is on it', () => {
    const { table, fs } = asWritten();
    const { differences, partitions } = compareWithLayout(planned, table, fs);
    expect(differences).toEqual([]);
    expect(partitions.map((p) => [p.node, p.fsType, p.label, p.uuid])).toEqual([
      ['/dev/loop9p1', 'vfat', 'ESP', '1234-ABCD'],
      ['/dev/loop9p2', 'ext4', 'root', 'f00f0000-0000-4000-8000-000000000000'],
    ]);
  });

  it.each<[string, (w: ReturnType<typeof asWritten>) => void, RegExp]>([
    ['another table type', (w) => (w.table.label = 'dos'), /the table is dos, not gpt/],
    ['another disk id', (w) => (w.table.id = '00000000-0000-4000-8000-000000000000'), /the disk id is/],
    ['a moved partition', (w) => (w.table.partitions![1]!.start += 2048), /partition 2 \(root\) starts at sector/],
    ['a shorter partition', (w) => (w.table.partitions![1]!.size -= 1), /partition 2 \(root\) has \d+ sectors, not \d+/],
    ['another type', (w) => (w.table.partitions![0]!.type = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7'), /partition 1 \(ESP\) has type EBD0A0A2/],
    ['a lost bootable attribute', (w) => delete w.table.partitions![1]!.attrs, /partition 2 \(root\) is not flagged bootable/],
    ['another PARTUUID', (w) => (w.table.partitions![1]!.uuid = '00000000-0000-4000-8000-000000000000'), /has PARTUUID 0000/],
    ['another name', (w) => (w.table.partitions![0]!.name = 'EFI'), /partition 1 \(ESP\) is named "EFI"/],
    ['a missing partition', (w) => w.table.partitions!.pop(), /partition 2 \(root\) is missing/],
    ['an extra partition', (w) => w.table.partitions!.push({ node: '/dev/loop9p3', start: 1, size: 1, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' }), /partition 3 is on the disk but not in the plan/],
    ['another filesystem', (w) => (w.fs.get(2)!.TYPE = 'xfs'), /partition 2 \(root\) holds xfs, not ext4/],
    ['no filesystem', (w) => w.fs.delete(1), /partition 1 \(ESP\) holds no filesystem, not vfat/],
    ['another label', (w) => (w.fs.get(2)!.LABEL = 'ROOT'), /has label ROOT, not root/],
    ['another filesystem UUID', (w) => (w.fs.get(1)!.UUID = '9999-9999'), /has UUID 9999-9999, not 1234-ABCD/],
  ])('reports %s', (_what, change, message) => {
    const written = asWritten();
    change(written);
    expect(compareWithLayout(planned, written.table, written.fs).differences).toEqual([expect.stringMatching(message)]);
  });

  it('checks the extended partition of an MBR disk and the type bytes of its logicals', () => {
    const mbr = resolveLayout(
      parseLayout({ table: 'mbr', partitions: ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, size: '100MiB', type: 'linux' })) }),
      { path: '/dev/loop9', sizeBytes: GiB, sectorSize: 512 },
    );
    const lines = renderSfdiskScript(mbr).split('\n').filter((l) => l.startsWith('start='));
    const table: SfdiskTable = {
      label: 'dos',
      sectorsize: 512,
      partitions: lines.map((l, i) => {
        const [, start, size, type] = /start=(\d+), size=(\d+), type=(\w+)/.exec(l)!;
        return { node: `/dev/loop9p${i + 1}`, start: Number(start), size: Number(size), type: type! };
      }),
    };
    expect(compareWithLayout(mbr, table, new Map()).differences).toEqual([]);
    table.partitions![3]!.size += 2048;
    expect(compareWithLayout(mbr, table, new Map()).differences).toEqual([expect.stringMatching(/the extended partition is at/)]);
  });
});
