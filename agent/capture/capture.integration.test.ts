import { jest } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/index.js';
import * as imaging from '../../imaging/index.js';
import * as partition from '../../partition/index.js';
import { makeReferenceTree } from '../../test-support/reference-tree.js';
import { removeDir, sparseFile, tempDir } from '../../test-support/tree.js';
import { sha256File } from '../deploy/index.js';
import { deploy } from '../deploy/index.js';
import { CaptureEventSchema, type CaptureEvent, type DeployEvent } from '../events/index.js';
import { AgentEventSchema } from '../events/index.js';
import { parseCapturePlan, parsePlan, type CapturePlanInput } from '../plan/index.js';
import { capture } from './capture.js';
import { LAYOUT_PROPERTY, parseRecordedLayout } from './record-layout.js';

// A reference machine's disk is built in a sparse image file with partition/ (ESP, bios-boot,
// ext4 root holding a small Linux system), captured through a loop device into a file:// share,
// appended to, and deployed again with layout: from-image. Everything is read back with tools
// that did not write it.

jest.setTimeout(90_000);
const MiB = 1024 ** 2;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
let dir: string;
let share: string;
let reference: string;
const attached: string[] = [];

async function attach(image: string, readOnly = false): Promise<string> {
  const loop = await partition.attachImageFile(image, { readOnly });
  attached.push(loop);
  await run('partx', ['--update', loop], { okExitCodes: [0, 1] });
  return loop;
}

async function detach(loop: string): Promise<void> {
  await partition.detachLoop(loop);
  attached.splice(attached.indexOf(loop), 1);
}

async function withMounted<T>(image: string, part: number, fn: (root: string) => Promise<T>, fsType?: string): Promise<T> {
  const loop = await attach(image);
  const mnt = await tempDir('capture-mnt');
  try {
    await run('mount', [...(fsType ? ['-t', fsType] : []), `${loop}p${part}`, mnt]);
    try {
      return await fn(mnt);
    } finally {
      await run('umount', [mnt]);
    }
  } finally {
    await removeDir(mnt);
    await detach(loop);
  }
}

async function makeDisk(image: string, sizeBytes: number, layout: partition.LayoutInput): Promise<void> {
  await sparseFile(image, sizeBytes);
  await partition.apply(partition.resolveLayout(partition.parseLayout(layout), await partition.describeDisk(image)));
}

async function tableOf(image: string): Promise<partition.SfdiskTable> {
  const loop = await attach(image, true);
  try {
    const t = (JSON.parse((await run('sfdisk', ['--json', loop])).stdout) as partition.SfdiskJson).partitiontable;
    // The device name changes from one attach to the next; the table itself must not.
    return { ...t, device: '', partitions: (t.partitions ?? []).map((p) => ({ ...p, node: p.node.replace(loop, '') })) };
  } finally {
    await detach(loop);
  }
}

// A Linux root the capture recognises by its os-release, with a user's private file whose owner
// the image must keep.
async function makeLinuxSystem(root: string): Promise<void> {
  await makeReferenceTree(root, {
    machineId: MACHINE_ID,
    osRelease: 'PRETTY_NAME="imagepe test system"\nID=imagepe-test\n',
    home: { name: 'user', notes: 'mine\n', owner: { uid: 1000, gid: 1000 } },
  });
}

function plan(change: (p: CapturePlanInput & { destination: Record<string, unknown> }) => void = () => {}) {
  const p: CapturePlanInput & { destination: Record<string, unknown> } = {
    kind: 'capture',
    destination: { url: `file://${share}`, file: 'images/reference.wim', name: 'reference', description: 'the reference', compression: 'xpress' },
  };
  change(p);
  return parseCapturePlan(p);
}

function stepsDone(events: { type: string; step?: string; status?: string }[]): string[] {
  return events.filter((e) => e.type === 'step' && e.status !== 'started').map((e) => `${e.step}${e.status === 'skipped' ? ' (skipped)' : ''}`);
}

beforeAll(async () => {
  dir = await tempDir('capture');
  share = join(dir, 'share');
  await mkdir(share, { recursive: true });
  reference = join(dir, 'reference.img');
  await makeDisk(reference, 600 * MiB, {
    table: 'gpt',
    partitions: [
      { name: 'ESP', size: '64MiB', type: 'esp', format: 'vfat', label: 'ESP' },
      { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
      { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root' },
    ],
  });
  await withMounted(reference, 3, makeLinuxSystem);
}, 60_000);

afterAll(async () => {
  for (const loop of [...attached]) await partition.detachLoop(loop).catch(() => undefined);
  await removeDir(dir);
});

/**
 * Nothing of the disk this capture attached is mounted any more. Only its own loop device is
 * looked at: a test file running beside this one may have references of its own mounted.
 */
async function expectNothingMountedFrom(events: readonly CaptureEvent[]): Promise<void> {
  const disk = events.find((e) => e.type === 'step' && e.step === 'disk' && e.status === 'done');
  const loop = /\((\/dev\/loop\d+)\)/.exec(disk?.type === 'step' ? (disk.detail ?? '') : '')?.[1];
  expect(loop).toBeDefined();
  expect(await readFile('/proc/self/mounts', 'utf8')).not.toMatch(new RegExp(`^${loop}p?\\d* `, 'm'));
}

describe('capture a Linux reference disk', () => {
  const wim = () => join(share, 'images/reference.wim');

  it('generalizes and captures the root, records the layout in the image, and leaves no temporary file', async () => {
    const tableBefore = await tableOf(reference);
    const events: CaptureEvent[] = [];
    let finalDuringCapture = false;
    const result = await capture(plan(), {
      disk: reference,
      events: (e) => {
        events.push(e);
        if (e.type === 'progress' && e.step === 'capture' && existsSync(wim())) finalDuringCapture = true;
      },
    });

    for (const e of events) {
      const line = JSON.parse(JSON.stringify(e)) as unknown;
      expect(CaptureEventSchema.safeParse(line).success).toBe(true);
      expect(AgentEventSchema.safeParse(line).success).toBe(true);
    }
    expect(stepsDone(events)).toEqual(['plan', 'disk', 'source', 'share', 'generalize', 'capture', 'verify']);
    expect(events.find((e) => e.type === 'step' && e.step === 'source' && e.status === 'done')).toMatchObject({ detail: expect.stringMatching(/p3 \(partition 3 "root"\): ext4 "root", 5\d\d MiB$/) });
    expect(events.some((e) => e.type === 'progress' && e.step === 'capture' && e.total !== undefined && e.done === e.total)).toBe(true);
    expect(events[events.length - 1]).toMatchObject({ type: 'captured', wim: 'images/reference.wim', index: 1, name: 'reference', after: 'poweroff' });
    expect(finalDuringCapture).toBe(false);

    // Only the WIM and the log folder: the temporary name is gone.
    expect((await readdir(join(share, 'images'))).sort()).toEqual(['logs', 'reference.wim']);
    expect(result).toMatchObject({ wim: 'images/reference.wim', index: 1, name: 'reference', sizeBytes: (await stat(wim())).size });
    expect(result.imageBytes).toBeGreaterThan(0);
    expect(result.logFile).toMatch(/images\/logs\/capture-reference-.*\.log$/);
    const logLines = (await readFile(result.logFile!, 'utf8')).trim().split('\n');
    expect(JSON.parse(logLines[logLines.length - 1]!)).toMatchObject({ type: 'captured' });

    const info = await imaging.info(wim());
    expect(info.images.map((i) => [i.index, i.name, i.description])).toEqual([[1, 'reference', 'the reference']]);
    expect(info.hasIntegrityTable).toBe(true);
    expect(info.compression).toBe('xpress');

    // The layout is in the image's own XML, and it is the reference disk's.
    const recorded = parseRecordedLayout((await imaging.imageProperty(wim(), 1, LAYOUT_PROPERTY))!, 'image 1');
    expect(recorded.imagePartition).toBe('root');
    expect(recorded.layout.partitions.map((p) => [p.name, p.type, p.size, p.format, p.label, p.mount])).toEqual([
      ['ESP', 'esp', '64MiB', 'vfat', 'ESP', '/boot/efi'],
      ['bios-boot', 'bios-boot', '1MiB', 'none', undefined, undefined],
      ['root', 'linux', 'rest', 'ext4', 'root', '/'],
    ]);
    expect(result.layout).toEqual(JSON.parse((await imaging.imageProperty(wim(), 1, LAYOUT_PROPERTY))!));

    // Generalized in the image: machine-id empty, host keys and log content gone; UNIX owners kept.
    const listing = (await imaging.dir(wim(), 1, { detailed: true })) as imaging.WimDirEntry[];
    const entry = (p: string) => listing.find((e) => e.path === p);
    expect(entry('/etc/machine-id')?.size).toBe(0);
    expect(entry('/var/log/messages')?.size).toBe(0);
    expect(entry('/etc/ssh/ssh_host_ed25519_key')).toBeUndefined();
    expect(entry('/etc/ssh/sshd_config')).toBeDefined();
    expect(entry('/home/user/notes.txt')?.unix).toMatchObject({ uid: 1000, gid: 1000 });
    expect((entry('/home/user/notes.txt')?.unix?.mode ?? 0) & 0o7777).toBe(0o600);

    // The reference itself was generalized, its partition table untouched, and nothing is left attached or mounted.
    expect(await withMounted(reference, 3, (root) => readFile(join(root, 'etc/machine-id'), 'utf8'))).toBe('');
    expect(await tableOf(reference)).toEqual(tableBefore);
    expect((await run('losetup', ['--associated', reference, '--noheadings'])).stdout.trim()).toBe('');
    await expectNothingMountedFrom(events);
  });

  it('refuses a destination that exists when the plan does not append, before the reference is touched', async () => {
    const before = await sha256File(reference);
    const events: CaptureEvent[] = [];
    await expect(capture(plan(), { disk: reference, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('images/reference.wim already exists') });
    expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'share', code: 'REFUSED', diskTouched: false });
    expect(events.some((e) => e.type === 'step' && e.step === 'generalize')).toBe(false);
    expect(await sha256File(reference)).toBe(before);
  });

  it('fails at share on a read-only destination, with the reference disk byte for byte as it was', async () => {
    const ro = join(dir, 'ro-share');
    await mkdir(ro);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', ro]);
    try {
      await run('mount', ['-o', 'remount,ro', ro]);
      const before = await sha256File(reference);
      const events: CaptureEvent[] = [];
      const p = plan((x) => (x.destination.url = `file://${ro}`));
      await expect(capture(p, { disk: reference, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('is read-only') });
      expect(events.find((e) => e.type === 'failed')).toMatchObject({ step: 'share', diskTouched: false });
      // The log cannot go to a read-only share either; that is said, after the failure.
      expect(events[events.length - 1]).toMatchObject({ type: 'log', level: 'warning', text: expect.stringContaining('the log could not be written') });
      expect(await sha256File(reference)).toBe(before);
      expect((await run('losetup', ['--associated', reference, '--noheadings'])).stdout.trim()).toBe('');
    } finally {
      await run('umount', [ro]);
    }
  });

  it('cancels at the running step and cleans up: no WIM, no temporary file, nothing mounted or attached', async () => {
    const controller = new AbortController();
    const events: CaptureEvent[] = [];
    const p = plan((x) => Object.assign(x.destination, { file: 'cancelled/c.wim', name: 'c' }));
    const sink = (e: CaptureEvent) => {
      events.push(e);
      if (e.type === 'step' && e.step === 'capture' && e.status === 'started') controller.abort();
    };
    await expect(capture(p, { disk: reference, signal: controller.signal, events: sink })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(events.find((e) => e.type === 'failed')).toMatchObject({ step: 'capture', code: 'CANCELLED', diskTouched: true });
    expect(await readdir(join(share, 'cancelled'))).toEqual(['logs']);
    expect((await run('losetup', ['--associated', reference, '--noheadings'])).stdout.trim()).toBe('');
    await expectNothingMountedFrom(events);
  });

  it('refuses the boot medium even when it is named', async () => {
    const loop = await attach(reference, true);
    try {
      const events: CaptureEvent[] = [];
      await expect(capture(plan(), { disk: loop, bootMedium: loop, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'REFUSED', message: `${loop} is the boot medium the PE started from; it is never captured from` });
      expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'disk', diskTouched: false });
    } finally {
      await detach(loop);
    }
  });

  it('refuses a reference whose root is mounted (a running system), naming it', async () => {
    const loop = await attach(reference);
    const mnt = await tempDir('capture-running');
    await run('mount', ['-o', 'ro', `${loop}p3`, mnt]);
    try {
      const events: CaptureEvent[] = [];
      await expect(capture(plan(), { disk: loop, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'DISK_IN_USE', message: expect.stringContaining(`${loop}p3 (partition 3 "root"): ext4 "root"`) });
      expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'source', diskTouched: false });
    } finally {
      await run('umount', [mnt]);
      await removeDir(mnt);
      await detach(loop);
    }
  });

  it('appends a customized reference as a new image, verified, with its own name', async () => {
    await withMounted(reference, 3, async (root) => {
      await writeFile(join(root, 'etc/customization.txt'), 'customized\n');
      await writeFile(join(root, 'etc/machine-id'), `${MACHINE_ID}\n`);
    });
    const events: CaptureEvent[] = [];
    const result = await capture(plan((x) => Object.assign(x.destination, { name: 'custom', append: true })), { disk: reference, events: (e) => events.push(e) });
    expect(result).toMatchObject({ index: 2, name: 'custom' });
    expect(events.find((e) => e.type === 'step' && e.step === 'share' && e.status === 'done')).toMatchObject({ detail: expect.stringContaining('appending to images/reference.wim (1 image, xpress)') });
    const info = await imaging.info(join(share, 'images/reference.wim'));
    expect(info.images.map((i) => i.name)).toEqual(['reference', 'custom']);
    const listing = (await imaging.dir(join(share, 'images/reference.wim'), 2)) as string[];
    expect(listing).toContain('/etc/customization.txt');
    expect(((await imaging.dir(join(share, 'images/reference.wim'), 1)) as string[])).not.toContain('/etc/customization.txt');
    expect(parseRecordedLayout((await imaging.imageProperty(join(share, 'images/reference.wim'), 2, LAYOUT_PROPERTY))!, 'image 2').imagePartition).toBe('root');
    (await readdir(join(share, 'images'))).forEach((n) => expect(n).not.toMatch(/\.partial$/));
    // An image name is unique within the WIM; refused before anything is written.
    await expect(capture(plan((x) => Object.assign(x.destination, { name: 'custom', append: true })), { disk: reference })).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringContaining('already holds an image named "custom"') });
  });

  it('deploys the appended image with layout: from-image to a blank disk', async () => {
    const target = await sparseFile(join(dir, 'target.img'), 700 * MiB);
    const events: DeployEvent[] = [];
    const deployPlan = parsePlan({
      source: { url: `file://${share}`, image: 'images/reference.wim', index: 'custom' },
      target: { layout: 'from-image' },
      bootloader: { type: 'none' },
      logs: false,
    });
    await deploy(deployPlan, { disk: target, yes: true, events: (e) => events.push(e) });
    expect(stepsDone(events)).toEqual(['plan', 'disk', 'share', 'check', 'partition', 'format', 'apply', 'remap', 'specialize', 'initramfs (skipped)', 'bootloader (skipped)', 'verify']);
    expect(events.find((e) => e.type === 'step' && e.step === 'apply' && e.status === 'done')).toMatchObject({ detail: '2 "custom" -> root' });

    const ref = await tableOf(reference);
    const got = await tableOf(target);
    expect(got.label).toBe('gpt');
    expect(got.partitions!.map((p) => [p.name, p.type])).toEqual(ref.partitions!.map((p) => [p.name, p.type]));
    expect(got.partitions!.slice(0, 2).map((p) => p.size)).toEqual(ref.partitions!.slice(0, 2).map((p) => p.size));
    // A larger disk: the root takes the rest of it.
    expect(got.partitions![2]!.size).toBeGreaterThan(ref.partitions![2]!.size);
    expect(await withMounted(target, 3, (root) => readFile(join(root, 'etc/customization.txt'), 'utf8'))).toBe('customized\n');
  });

  it('refuses layout: from-image for an image that records no layout, before the disk is touched', async () => {
    const tree = join(dir, 'plain');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc/os-release'), 'ID=plain\n');
    await imaging.capture(tree, join(share, 'plain.wim'), { name: 'plain', compression: 'xpress' });
    const target = await sparseFile(join(dir, 'plain-target.img'), 700 * MiB);
    const before = await sha256File(target);
    const events: DeployEvent[] = [];
    const p = parsePlan({ source: { url: `file://${share}`, image: 'plain.wim' }, target: { layout: 'from-image' }, bootloader: { type: 'none' } });
    await expect(deploy(p, { disk: target, yes: true, events: (e) => events.push(e) })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('captured without imagepe capture mode; give target.layout'),
    });
    expect(events[events.length - 1]).toMatchObject({ type: 'failed', step: 'check', diskTouched: false });
    expect(await sha256File(target)).toBe(before);
  });
});

describe('capture an NTFS reference disk', () => {
  it('finds the Windows partition and captures the volume in NTFS mode, without generalizing it', async () => {
    const win = join(dir, 'windows.img');
    await makeDisk(win, 100 * MiB, {
      table: 'gpt',
      partitions: [
        { name: 'MSR', size: '16MiB', type: 'msr' },
        { name: 'Windows', size: 'rest', type: 'windows-basic', format: 'ntfs', label: 'Windows' },
      ],
    });
    await withMounted(
      win,
      2,
      async (root) => {
        await mkdir(join(root, 'Windows/System32'), { recursive: true });
        await writeFile(join(root, 'Windows/System32/kernel32.dll'), Buffer.alloc(50_000, 7));
      },
      'ntfs-3g',
    );
    const before = await sha256File(win);
    const events: CaptureEvent[] = [];
    const result = await capture(plan((x) => Object.assign(x.destination, { file: 'windows.wim', name: 'windows' })), { disk: win, events: (e) => events.push(e) });
    expect(stepsDone(events)).toEqual(['plan', 'disk', 'source', 'share', 'generalize (skipped)', 'capture', 'verify']);
    expect(events.find((e) => e.type === 'step' && e.step === 'generalize')).toMatchObject({ detail: expect.stringContaining('NTFS') });
    expect(events.find((e) => e.type === 'step' && e.step === 'capture' && e.status === 'started')).toMatchObject({ detail: expect.stringContaining('NTFS volume') });
    expect(result.layout).toEqual({
      version: 1,
      imagePartition: 'Windows',
      layout: {
        table: 'gpt',
        partitions: [
          { name: 'MSR', size: '16MiB', type: 'msr', format: 'none' },
          { name: 'Windows', size: 'rest', type: 'windows-basic', format: 'ntfs', label: 'Windows' },
        ],
      },
      volumes: [
        { partition: 'MSR', number: 1, sizeBytes: 16 * MiB, partlabel: 'MSR', partuuid: expect.any(String) },
        { partition: 'Windows', number: 2, sizeBytes: expect.any(Number), partlabel: 'Windows', partuuid: expect.any(String), fsType: 'ntfs', label: 'Windows', uuid: expect.any(String) },
      ],
    });
    const listing = (await imaging.dir(join(share, 'windows.wim'), 1, { detailed: true })) as imaging.WimDirEntry[];
    expect(listing.find((e) => e.path === '/Windows/System32/kernel32.dll')?.size).toBe(50_000);
    // NTFS mode stores Windows security data, not UNIX owners.
    expect(listing.every((e) => e.unix === undefined)).toBe(true);
    // Not generalized and read through libntfs read-only: the disk is as it was.
    expect(await sha256File(win)).toBe(before);
  });
});
