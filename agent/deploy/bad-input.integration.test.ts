import { jest } from '@jest/globals';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { argvRecorder, type ArgvRecorder } from '../../test-support/reliability/argv-recorder.js';
import { IMAGE_FAULTS, REFUSAL_FAULTS, runFault, SHARE_FAULTS, type FaultCase, type FaultContext } from '../../test-support/reliability/faults.js';
import { makeWorld, type World } from '../../test-support/reliability/world.js';

// Bad images, disks that must be refused and shares that cannot be reached, each deployed for
// real (wimlib, losetup, sfdisk, mount) into a sparse disk image file from a file:// share. The
// judge (runFault) compares the disk's sha256 before and after, reads the failed event, and
// searches events, the share log, the error and the argv of every command run for the plan's
// secrets; each case's expectation is written next to it in faults.ts.

jest.setTimeout(120_000);
let world: World;
let recorder: ArgvRecorder;
let ctx: FaultContext;

beforeAll(async () => {
  world = await makeWorld(await mkdtemp(join(tmpdir(), 'imagepe-reliability-')));
  recorder = await argvRecorder(join(world.dir, 'argv'));
  ctx = { world, recorder };
}, 60_000);

afterAll(async () => {
  if (world) await rm(world.dir, { recursive: true, force: true });
});

async function expectHandled(c: FaultCase) {
  const o = await runFault(ctx, c);
  const want = c.expect(ctx, o.disk);
  expect(o.problems).toEqual([]);
  expect(o.secretLeaks).toEqual([]);
  // The same facts, spelled out: failed at the step, no deployed, the disk as it must be.
  expect(o.events[o.events.length - 1]).toMatchObject({ type: 'failed', step: want.step, diskTouched: want.diskTouched });
  expect(o.reportedDeployed).toBe(false);
  if (!want.diskTouched) expect(o.bytesChanged).toBe(false);
  return o;
}

describe('bad images fail at check (or, undetectable before apply, at apply) and never deploy', () => {
  it.each(IMAGE_FAULTS.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const o = await expectHandled(c);
    // The recorder saw the deploy's commands, so "no secret in any command line" means something.
    expect(o.calls.some((argv) => argv[0] === 'losetup' && argv.includes(o.disk))).toBe(true);
    if (c.expect(ctx, o.disk).step === 'check') {
      expect(o.events.some((e) => e.type === 'step' && e.step === 'partition')).toBe(false);
      // The failure was logged to the share, and the log is clean of secrets (checked by the judge).
      expect(o.logs.length).toBe(1);
      expect(o.logs[0]).toContain('"type":"failed"');
    }
  });
});

describe('disks that must not be deployed to are refused before any write', () => {
  it.each(REFUSAL_FAULTS.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const o = await expectHandled(c);
    expect(o.events.some((e) => e.type === 'step' && (e.step === 'share' || e.step === 'partition'))).toBe(false);
    // The boot medium is refused before it is even attached.
    if (c.name.startsWith('boot-medium')) expect(o.calls).toEqual([]);
  });
});

describe('shares that cannot be mapped', () => {
  it.each(SHARE_FAULTS.map((c) => [c.name, c] as const))('%s fails at share with the disk untouched', async (_, c) => {
    const o = await expectHandled(c);
    if (!c.name.startsWith('smb-')) return;
    // The password went to mount.cifs only through a credentials file, which is gone now.
    const mounts = o.calls.filter((argv) => argv[0] === 'mount' && argv.includes('cifs'));
    expect(mounts).toHaveLength(1);
    const opts = mounts[0]![mounts[0]!.indexOf('-o') + 1]!;
    const credFile = /(?:^|,)credentials=([^,]+)/.exec(opts)?.[1];
    expect(credFile).toMatch(/imagepe-cred-[^/]+\/credentials$/);
    expect(opts).not.toMatch(/(?:^|,)(pass|password|user|username)=/);
    await expect(stat(credFile!)).rejects.toThrow(/ENOENT/);
    await expect(stat(dirname(credFile!))).rejects.toThrow(/ENOENT/);
    // mount's own complaint is passed on, so the user learns why.
    const failed = o.events[o.events.length - 1]!;
    expect(failed.type === 'failed' && failed.stderrTail).toMatch(/could not resolve address|not supported|No such device|Connection refused/);
  });
});

describe('the judge', () => {
  it('reports a run that does not match its expectation, so the cases above can fail', async () => {
    const wrong: FaultCase = { ...IMAGE_FAULTS.find((c) => c.name === 'wrong-sha256')!, name: 'judge-control', expect: () => ({ step: 'disk', codes: ['REFUSED'], diskTouched: true, mentions: ['not in the message'] }) };
    const o = await runFault(ctx, wrong);
    expect(o.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^failed at check, expected disk/), expect.stringMatching(/^code WIM_CORRUPT, expected REFUSED/), 'diskTouched is false, expected true', expect.stringMatching(/does not name not in the message/)]),
    );
  });
});
