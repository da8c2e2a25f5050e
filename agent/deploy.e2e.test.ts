import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { BuildResult } from '../builder/index.js';
import { planTestBuild, TEST_PLAN_URL } from '../qemu-tests/shared-build.js';
import { sha256File } from './deploy/index.js';
import { generalize } from '../imaging/index.js';
import { startVm, withVm, type QemuRuntimeName } from '../qemu-tests/index.js';
import { makeReferenceSystem, referencePlan, type ReferenceSystem } from '../test-support/reference-system.js';

// The proof that the product works: the PE ISO boots in QEMU against a blank 2 GiB disk and
// QEMU's smb= share, the agent deploys from the plan on the share, and then the deployed disk
// boots alone and prints what it is. Software emulation: every wait is bounded, one VM at a time.
// Both QEMU runtimes: the host's QEMU, and QEMU in the container imagepe builds (the same
// Debian packages, pinned by the image). The container scenarios need a Docker engine: they run
// when IMAGEPE_TEST_CONTAINER=1 (scripts/test sets it, after scripts/dockerd-ensure) and then
// fail, not skip, without one.

const exec = promisify(execFile);
const DEPLOY_TIMEOUT_MS = 240_000;
const BOOT_TIMEOUT_MS = 120_000;
const DISK_SIZE = 2 * 1024 ** 3;
// QEMU gives the first NIC this address unless told otherwise.
const GUEST_MAC = '525400123456';

let build: BuildResult;
let work: string;
let share: string;
let reference: ReferenceSystem;
let wimSha256: string;
const machineIds: string[] = [];
const CONTAINER_TESTS = process.env.IMAGEPE_TEST_CONTAINER === '1';
if (!CONTAINER_TESTS) process.stderr.write('deploy e2e: the container runtime scenarios are skipped: set IMAGEPE_TEST_CONTAINER=1 with a Docker engine running (scripts/test does)\n');

function plan(name: string, sha: string): string {
  return referencePlan({ hostname: `${name}-{mac}`, sha256: sha });
}


/** The guest clusters QEMU allocated in a qcow2: none for a disk nothing ever wrote to. */
async function writtenBytes(qcow2: string): Promise<number> {
  const { stdout } = await exec('qemu-img', ['map', '--output=json', qcow2]);
  return (JSON.parse(stdout) as { length: number; data: boolean }[]).filter((m) => m.data).reduce((n, m) => n + m.length, 0);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-deploy-e2e-'));
  share = join(work, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  build = await planTestBuild();
  reference = await makeReferenceSystem(join(work, 'reference'));
  await generalize(reference.root);
  // Captured the way a user would: with the imagepe command.
  const wim = join(share, 'images/reference.wim');
  await exec('node', [resolve('dist/cli/main.js'), 'capture', reference.root, wim, 'reference', 'e2e reference system', '--compress', 'xpress', '--check']);
  wimSha256 = await sha256File(wim);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

// UEFI with Secure Boot enforced: the PE starts through shim in lockdown, mounts the share with
// CIFS's signed modules, and the disk it writes (the fixture has no shim of its own, so the PE's
// signed chain) must pass the same firmware.
const scenarios: [QemuRuntimeName, string, boolean][] = [
  ['native', 'UEFI', true],
  ['native', 'BIOS', false],
  ['container', 'UEFI', true],
  ['container', 'BIOS', false],
];
describe.each(scenarios)('%s QEMU: deploy from the PE ISO to a blank GPT disk, booted by %s', (runtime, firmware, uefi) => {
  const secureBoot = uefi;
  const name = `${runtime}-${firmware.toLowerCase()}`;
  const disk = () => join(work, `${name}.qcow2`);
  const test = runtime === 'container' && !CONTAINER_TESTS ? it.skip : it;

  test('deploys from the plan on the SMB share, and the deployed disk boots with the plan hostname and a new machine-id', async () => {
    await writeFile(join(share, 'plan.yaml'), plan(name, wimSha256));
    const deployed = await withVm(`${name} deploy`, startVm({ runtime, iso: build.iso, uefi, secureBoot, disks: [{ path: disk(), size: DISK_SIZE }], share, workDir: join(work, `${name}-pe`), lifetimeMs: DEPLOY_TIMEOUT_MS + 30_000 }), async (vm) => {
      const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
      expect(ready.plan).toBe(TEST_PLAN_URL);
      expect(ready.firmware).toEqual(secureBoot ? { type: 'uefi', secureBoot: true, lockdown: 'integrity' } : { type: 'bios', secureBoot: false, lockdown: 'none' });
      const done = await vm.waitForEvent('deployed', DEPLOY_TIMEOUT_MS);
      // The plan says poweroff: the PE turns the machine off by itself.
      await vm.waitForExit(60_000);
      const steps = vm.events.filter((e) => e.type === 'step' && e.status === 'done').map((e) => (e.type === 'step' ? e.step : ''));
      expect(steps).toEqual(['plan', 'disk', 'share', 'check', 'partition', 'format', 'apply', 'remap', 'specialize', 'bootloader', 'verify']);
      const bootloader = vm.events.find((e) => e.type === 'step' && e.step === 'bootloader' && e.status === 'done');
      if (secureBoot) expect(bootloader?.type === 'step' && bootloader.detail).toContain('UEFI /EFI/BOOT/BOOTX64.EFI (shim and signed GRUB from the PE)');
      process.stdout.write(`${name}: PE start to deployed ${vm.elapsedSeconds().toFixed(1)} s wall (${vm.accel.accel}; ${vm.runtime})\n`);
      return done;
    });
    expect(deployed.type === 'deployed' && deployed.hostname).toBe(`${name}-${GUEST_MAC}`);
    // The agent's whole log reached the share, beside the image.
    const logs = (await readdir(join(share, 'images/logs'))).filter((f) => f.startsWith(`${name}-`));
    expect(logs).toHaveLength(1);
    expect(await readFile(join(share, 'images/logs', logs[0]!), 'utf8')).toContain('"step":"verify","status":"done"');

    const marker = await withVm(`${name} deployed boot`, startVm({ runtime, uefi, secureBoot, disks: [{ path: disk() }], workDir: join(work, `${name}-boot`), lifetimeMs: BOOT_TIMEOUT_MS + 30_000 }), async (vm) => {
      const line = await vm.waitForLine(/DEPLOYED hostname=\S+ machine-id=\S* marker=\w+/, BOOT_TIMEOUT_MS);
      process.stdout.write(`${name}: deployed disk booted to its init in ${vm.elapsedSeconds().toFixed(1)} s wall\n`);
      return line;
    });
    const m = /DEPLOYED hostname=(\S+) machine-id=(\S*) marker=(\w+)/.exec(marker)!;
    expect(m[1]).toBe(`${name}-${GUEST_MAC}`);
    expect(m[2]).toMatch(/^[0-9a-f]{32}$/);
    expect(m[2]).not.toBe(reference.machineId);
    expect(m[3]).toBe('yes');
    machineIds.push(m[2]!);
  }, DEPLOY_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS + 60_000);
});

it('gives each deployed machine its own machine-id', () => {
  expect(machineIds).toHaveLength(CONTAINER_TESTS ? 4 : 2);
  expect(new Set(machineIds).size).toBe(machineIds.length);
});

it('fails at the check step on a wrong sha256 and leaves the target disk blank', async () => {
  const disk = join(work, 'wrong-sha.qcow2');
  await writeFile(join(share, 'plan.yaml'), plan('bad', '0'.repeat(64)));
  await withVm('wrong sha256', startVm({ iso: build.iso, uefi: false, disks: [{ path: disk, size: DISK_SIZE }], share, workDir: join(work, 'bad-pe'), lifetimeMs: DEPLOY_TIMEOUT_MS }), async (vm) => {
    const failed = await vm.waitForEvent('failed', DEPLOY_TIMEOUT_MS);
    expect(failed).toMatchObject({ step: 'check', diskTouched: false });
    expect(failed.type === 'failed' && failed.message).toMatch(/SHA-256 .* but the plan expects 0{64}/);
    expect(vm.events.some((e) => e.type === 'deployed')).toBe(false);
  });
  expect(await writtenBytes(disk)).toBe(0);
}, DEPLOY_TIMEOUT_MS + 60_000);
