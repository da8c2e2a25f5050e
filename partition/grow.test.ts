import { planGrow, type GrowPlanInput } from './grow.js';
import type { SfdiskTable } from './verify.js';

const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F';
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const MiB = 2048; // sectors of 512 bytes

function gpt(parts: [start: number, size: number, type: string][]): SfdiskTable {
  return { label: 'gpt', sectorsize: 512, partitions: parts.map(([start, size, type], i) => ({ node: `/dev/sdx${i + 1}`, start, size, type })) };
}

function input(table: SfdiskTable, lastUsable: number, fs: (string | undefined)[], partition?: number): GrowPlanInput {
  return { table, lastUsable, sectorSize: 512, fsTypes: new Map(fs.map((t, i) => [i + 1, t])), ...(partition !== undefined ? { partition } : {}) };
}

// A 2 GiB Debian-installer-like image (ESP, root, swap last) written to a 16 GiB disk.
const debian = gpt([
  [MiB, 512 * MiB, ESP],
  [513 * MiB, 1400 * MiB, LINUX],
  [1913 * MiB, 134 * MiB, SWAP],
]);
const disk16 = 16 * 1024 * MiB - 34; // last usable LBA of a 16 GiB GPT disk

describe('planGrow', () => {
  it('grows root to the disk minus swap and moves the swap to the last aligned MiB', () => {
    const plan = planGrow(input(debian, disk16, ['vfat', 'ext4', 'swap']));
    expect(plan.partition).toBe(2);
    const swapStart = 16 * 1024 * MiB - MiB - 134 * MiB;
    expect(plan.moves).toEqual([{ number: 3, size: 134 * MiB, fromStart: 1913 * MiB, toStart: swapStart }]);
    expect(plan.toSize).toBe(swapStart - 513 * MiB);
    expect((plan.start + plan.toSize) % MiB).toBe(0);
    expect(plan.nothingToDo).toBe(false);
  });

  it('packs several swap partitions at the end in their order', () => {
    const t = gpt([
      [MiB, 100 * MiB, LINUX],
      [101 * MiB, 10 * MiB, SWAP],
      [111 * MiB, 20 * MiB, SWAP],
    ]);
    const plan = planGrow(input(t, 1024 * MiB - 34, ['ext4', 'swap', 'swap']));
    expect(plan.moves).toEqual([
      { number: 3, size: 20 * MiB, fromStart: 111 * MiB, toStart: 1003 * MiB },
      { number: 2, size: 10 * MiB, fromStart: 101 * MiB, toStart: 993 * MiB },
    ]);
    expect(plan.start + plan.toSize).toBe(993 * MiB);
  });

  it('grows the last partition when nothing follows it', () => {
    const t = gpt([
      [MiB, 32 * MiB, ESP],
      [33 * MiB, 200 * MiB, LINUX],
    ]);
    const plan = planGrow(input(t, 1024 * MiB - 34, ['vfat', 'xfs']));
    expect(plan).toMatchObject({ partition: 2, moves: [], toSize: 1023 * MiB - 33 * MiB });
  });

  it('has nothing to do on a disk of the same size, and never shrinks an unaligned end', () => {
    const sameSize = planGrow(input(debian, 2048 * MiB - 34, ['vfat', 'ext4', 'swap']));
    expect(sameSize.nothingToDo).toBe(true);
    const t = gpt([[MiB, 255 * MiB - 33, LINUX]]); // ends at the last usable LBA, not on a MiB
    const plan = planGrow(input(t, 256 * MiB - 34, ['ext4']));
    expect(plan).toMatchObject({ nothingToDo: true, toSize: 255 * MiB - 33 });
  });

  it('refuses a named partition with anything but swap after it, naming what is in the way', () => {
    const t = gpt([
      [MiB, 100 * MiB, LINUX],
      [101 * MiB, 100 * MiB, LINUX],
      [201 * MiB, 10 * MiB, SWAP],
    ]);
    expect(() => planGrow(input(t, 4096 * MiB, ['ext4', 'xfs', 'swap'], 1))).toThrow(expect.objectContaining({ code: 'REFUSED', message: expect.stringContaining('partition 2 (xfs') }));
    // The default skips the trailing swap and picks partition 2.
    expect(planGrow(input(t, 4096 * MiB, ['ext4', 'xfs', 'swap'])).partition).toBe(2);
  });

  it('refuses a partition number the disk does not have, and a disk smaller than the table', () => {
    expect(() => planGrow(input(debian, disk16, ['vfat', 'ext4', 'swap'], 7))).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => planGrow(input(debian, 1024 * MiB, ['vfat', 'ext4', 'swap']))).toThrow(expect.objectContaining({ code: 'REFUSED', message: expect.stringContaining('beyond') }));
  });

  it('grows an MBR primary, refuses a logical one, and refuses an extended partition in the way', () => {
    const primary: SfdiskTable = { label: 'dos', partitions: [{ node: '/dev/sdx1', start: MiB, size: 100 * MiB, type: '83' }, { node: '/dev/sdx2', start: 101 * MiB, size: 10 * MiB, type: '82' }] };
    const plan = planGrow(input(primary, 1024 * MiB - 1, ['ext4', 'swap']));
    expect(plan).toMatchObject({ partition: 1, moves: [{ number: 2, toStart: 1014 * MiB }], toSize: 1013 * MiB });

    const withLogical: SfdiskTable = {
      label: 'dos',
      partitions: [
        { node: '/dev/sdx1', start: MiB, size: 100 * MiB, type: '83' },
        { node: '/dev/sdx2', start: 102 * MiB - 2, size: 10 * MiB + 2, type: '5' },
        { node: '/dev/sdx5', start: 102 * MiB, size: 10 * MiB, type: '82' },
      ],
    };
    const fs = new Map<number, string | undefined>([[1, 'ext4'], [5, 'swap']]);
    expect(() => planGrow({ table: withLogical, lastUsable: 1024 * MiB - 1, sectorSize: 512, fsTypes: fs })).toThrow(expect.objectContaining({ code: 'REFUSED', message: expect.stringContaining('extended') }));
    expect(() => planGrow({ table: withLogical, lastUsable: 1024 * MiB - 1, sectorSize: 512, fsTypes: fs, partition: 5 })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
  });

  it('aligns to 1 MiB on a 4Kn disk', () => {
    const t: SfdiskTable = { label: 'gpt', sectorsize: 4096, partitions: [{ node: '/dev/sdx1', start: 256, size: 25600, type: LINUX }] };
    const plan = planGrow({ table: t, lastUsable: 262144 - 6, sectorSize: 4096, fsTypes: new Map([[1, 'ext4']]) });
    expect((plan.start + plan.toSize) % 256).toBe(0);
    expect(plan.start + plan.toSize).toBe(262144 - 256);
  });
});
