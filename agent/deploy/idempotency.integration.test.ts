import { jest } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy, sha256File } from './index.js';
import type { DeployEvent } from '../events/index.js';
import { parsePlan } from '../plan/index.js';
import { argvRecorder, type ArgvRecorder } from '../../test-support/reliability/argv-recorder.js';
import { readDiskState, type DiskState } from '../../test-support/reliability/disk-state.js';
import { findSecrets } from '../../test-support/reliability/faults.js';
import { basePlan, blankDisk, FACTS, loopsOf, makeWorld, type World } from '../../test-support/reliability/world.js';

// The same plan deployed twice to the same disk image file gives the same disk: the table,
// the filesystems (less their random UUIDs), every file of the root with its content, owner
// and mode, and the ESP's files. machineId: empty keeps /etc/machine-id identical on purpose
// (a new one per deploy is the default, and differs by design). Both runs are also searched for
// the plan's secrets: events, the share log, and the argv of every command.

jest.setTimeout(120_000);
let world: World;
let recorder: ArgvRecorder;
let disk: string;
const states: DiskState[] = [];

beforeAll(async () => {
  world = await makeWorld(await mkdtemp(join(tmpdir(), 'imagepe-idempotent-')));
  recorder = await argvRecorder(join(world.dir, 'argv'));
  disk = await blankDisk(join(world.dir, 'disk.img'));
}, 60_000);

afterAll(async () => {
  if (world) await rm(world.dir, { recursive: true, force: true });
});

async function deployOnce(run: number): Promise<DeployEvent[]> {
  const events: DeployEvent[] = [];
  await recorder.clear();
  const logsBefore = new Set(await readdir(join(world.share, 'logs')).catch(() => [] as string[]));
  const result = await recorder.around(() => deploy(parsePlan(basePlan(world, { wipe: true })), { disk, yes: true, facts: FACTS, events: (e) => events.push(e) }));
  expect(result.disk).toBe(disk);
  expect(events[events.length - 1]).toMatchObject({ type: 'deployed', disk, hostname: 'node-525400aabbcc' });
  expect(await loopsOf(disk)).toBe('');

  const newLogs = (await readdir(join(world.share, 'logs'))).filter((f) => !logsBefore.has(f));
  expect(newLogs).toHaveLength(1);
  const calls = await recorder.calls();
  expect(calls.some((argv) => argv[0] === 'wimlib-imagex' && argv[1] === 'apply')).toBe(true);
  expect(
    findSecrets(world, {
      events: events.map((e) => JSON.stringify(e)).join('\n'),
      'share log': await readFile(join(world.share, 'logs', newLogs[0]!), 'utf8'),
      'command lines': calls.map((a) => a.join(' ')).join('\n'),
    }),
  ).toEqual([]);
  // The second deploy found the first one's data and wiped it; the first found a blank disk.
  const diskDone = events.find((e) => e.type === 'step' && e.step === 'disk' && e.status === 'done');
  expect(diskDone?.type === 'step' && diskDone.detail).toMatch(run === 1 ? /blank$/ : /wiping: .*ext4/);
  states.push(await readDiskState(disk));
  return events;
}

describe('deploying the same plan twice', () => {
  it('succeeds both times', async () => {
    await deployOnce(1);
    await deployOnce(2);
  });

  it('reads back the same partition table and filesystems', () => {
    expect(states).toHaveLength(2);
    expect(states[1]!.table).toEqual(states[0]!.table);
    expect(states[1]!.filesystems).toEqual(states[0]!.filesystems);
    expect(states[0]!.filesystems).toMatchObject({ p1: { TYPE: 'vfat', LABEL: 'ESP', PART_ENTRY_NAME: 'ESP' }, p3: { TYPE: 'ext4', LABEL: 'root', PART_ENTRY_NAME: 'root' } });
  });

  it('leaves the same files with the same content, owners and modes on the root and the ESP', () => {
    const [a, b] = states as [DiskState, DiskState];
    expect(Object.keys(b.root)).toEqual(Object.keys(a.root));
    expect(b.root).toEqual(a.root);
    expect(b.marker).toEqual(a.marker);
    expect(b.esp).toEqual(a.esp);
    // What is compared is the deployed system, not an empty disk read twice.
    expect(a.root['bin/busybox']?.size).toBeGreaterThan(100_000);
    expect(a.root['usr/share/imagepe/blob.bin']?.size).toBe(1024 * 1024);
    expect(a.root['etc/imagepe-token']).toMatchObject({ type: 'file', mode: 0o600 });
    expect(a.marker).toMatchObject({ hostname: 'node-525400aabbcc', sha256: world.wimSha });
    expect(Object.keys(a.esp).map((k) => k.toLowerCase())).toContain('::/efi/vendor/hello.txt');
  });

  it('without wipe, a third run is refused and the disk keeps every byte', async () => {
    const before = await sha256File(disk);
    const events: DeployEvent[] = [];
    await expect(deploy(parsePlan(basePlan(world, { wipe: false })), { disk, yes: true, facts: FACTS, events: (e) => events.push(e) })).rejects.toMatchObject({ code: 'REFUSED' });
    const failed = events[events.length - 1];
    expect(failed).toMatchObject({ type: 'failed', step: 'disk', code: 'REFUSED', diskTouched: false });
    expect(failed?.type === 'failed' && failed.message).toContain(disk);
    expect(failed?.type === 'failed' && failed.message).toMatch(/a GPT partition table.*vfat on \/dev\/loop\d+p1.*ext4 on \/dev\/loop\d+p3/);
    expect(await sha256File(disk)).toBe(before);
  });
});
