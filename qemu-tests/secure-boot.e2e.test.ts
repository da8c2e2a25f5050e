import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildResult } from '../builder/index.js';
import { SIGNED_CHAIN_FILES } from '../core/index.js';
import { sharedTestBuild } from './shared-build.js';
import { startVm, withVm, type StartVmOptions, type Vm } from './vm.js';

// OVMF's Secure Boot build on a q35 with SMM boots slower under TCG than the plain one (30-40 s).
const BOOT_TIMEOUT_MS = 120_000;
const REFUSAL_TIMEOUT_MS = 60_000;
const TARGET_SIZE = 4 * 1024 ** 3;

/**
 * Changes one byte of `file`'s copy inside `image` (found by a 64-byte window from the file's
 * middle, which must occur exactly once), so the copy's signature no longer matches.
 */
async function corruptCopyOf(image: string, file: string): Promise<number> {
  const bytes = await readFile(image);
  const original = await readFile(file);
  const at = Math.floor(original.length / 2);
  const needle = original.subarray(at, at + 64);
  const found = bytes.indexOf(needle);
  if (found < 0 || bytes.lastIndexOf(needle) !== found) throw new Error(`${file} is not in ${image} exactly once`);
  bytes[found + 32]! ^= 0xff;
  await writeFile(image, bytes);
  return found + 32;
}

/** withVm in a new work folder, removed when the body succeeds (kept with its serial log otherwise). */
async function withWorkVm<T>(name: string, options: StartVmOptions, body: (vm: Vm) => Promise<T>): Promise<T> {
  const workDir = await mkdtemp(join(tmpdir(), 'imagepe-sb-'));
  const r = await withVm(name, startVm({ ...options, workDir, lifetimeMs: BOOT_TIMEOUT_MS + 30_000 }), body);
  await rm(workDir, { recursive: true, force: true });
  return r;
}

describe('Secure Boot enforced, Microsoft keys enrolled (OVMF_CODE_4M.ms.fd)', () => {
  let build: BuildResult;
  beforeAll(async () => {
    build = await sharedTestBuild();
  }, 180_000);

  for (const bootFrom of ['cd', 'usb'] as const) {
    it(`the ISO as a ${bootFrom === 'cd' ? 'CD' : 'USB disk'} starts through shim and the signed GRUB, and the PE runs locked down`, async () => {
      const ready = await withWorkVm(`secure boot ${bootFrom}`, { iso: build.iso, bootFrom, secureBoot: true, disks: [{ path: join(tmpdir(), `imagepe-sb-target-${process.pid}-${bootFrom}.qcow2`), size: TARGET_SIZE }] }, async (vm) => {
        const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
        process.stdout.write(`Secure Boot, ${bootFrom}: ready after ${vm.elapsedSeconds().toFixed(1)} s wall (guest uptime ${ready.uptimeSeconds.toFixed(1)} s)\n`);
        return ready;
      });
      await rm(join(tmpdir(), `imagepe-sb-target-${process.pid}-${bootFrom}.qcow2`), { force: true });
      expect(ready.firmware).toEqual({ type: 'uefi', secureBoot: true, lockdown: 'integrity' });
      expect(ready.kernel).toBe(build.kernel.version);
      // The target disk was found: the PE's storage drivers loaded under lockdown.
      expect(ready.disks.map((d) => d.path)).toEqual(['/dev/vda']);
      expect(ready.bootMedium).toMatch(bootFrom === 'cd' ? /^\/dev\/sr0$/ : /^\/dev\/sd[a-z]$/);
    }, BOOT_TIMEOUT_MS + 60_000);
  }

  it('from the network: shim and the signed network GRUB over TFTP load the PE', async () => {
    const ready = await withWorkVm('secure boot pxe', { netBoot: { tftpDir: build.pxe.dir, bootfile: 'bootx64.efi' }, secureBoot: true }, (vm) => vm.waitForEvent('ready', BOOT_TIMEOUT_MS));
    expect(build.pxe.secureBoot).toBeDefined();
    expect(ready.firmware).toEqual({ type: 'uefi', secureBoot: true, lockdown: 'integrity' });
    expect(ready.bootMedium).toBeNull();
  }, BOOT_TIMEOUT_MS + 60_000);

  const refusals = [
    // GRUB checks the kernel through shim's protocol and says so on the console.
    { what: 'kernel', file: () => build.kernel.image, refusal: /bad shim signature/ },
    // shim checks GRUB against Debian's key built into it.
    { what: 'GRUB', file: () => `/${SIGNED_CHAIN_FILES.grubCd}`, refusal: /Verification failed|Security Violation/ },
  ];
  for (const r of refusals) {
    it(`refuses an ISO whose ${r.what} was changed by one byte, and says so`, async () => {
      const work = await mkdtemp(join(tmpdir(), 'imagepe-sb-bad-'));
      try {
        const iso = join(work, 'altered.iso');
        await copyFile(build.iso, iso);
        await corruptCopyOf(iso, r.file());
        await withWorkVm(`altered ${r.what}`, { iso, secureBoot: true }, async (vm) => {
          // shim draws its refusal in a box and waits for a key: the text ends no line.
          const { match } = await vm.expect(r.refusal, REFUSAL_TIMEOUT_MS);
          process.stdout.write(`altered ${r.what}: "${match[0]}" after ${vm.elapsedSeconds().toFixed(1)} s\n`);
          // Nothing of the PE may have started.
          expect(vm.events.filter((e) => e.type === 'ready')).toEqual([]);
        });
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    }, REFUSAL_TIMEOUT_MS + 60_000);
  }
});
