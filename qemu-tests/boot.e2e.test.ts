import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildResult } from '../builder/index.js';
import { sharedTestBuild } from './shared-build.js';
import { startVm, type StartVmOptions } from './vm.js';

// One boot at a time (the machine is shared); each has a hard limit well under TCG's worst case.
const BOOT_TIMEOUT_MS = 90_000;
const TARGET_SIZE = 4 * 1024 ** 3;

describe('the built ISO boots to the agent', () => {
  let build: BuildResult;
  beforeAll(async () => {
    build = await sharedTestBuild();
  }, 180_000);

  const cases: { name: string; options: Pick<StartVmOptions, 'uefi' | 'bootFrom'>; medium: RegExp }[] = [
    { name: 'BIOS, as a CD', options: { uefi: false, bootFrom: 'cd' }, medium: /^\/dev\/sr0$/ },
    { name: 'UEFI, as a CD', options: { uefi: true, bootFrom: 'cd' }, medium: /^\/dev\/sr0$/ },
    { name: 'UEFI, as a USB disk', options: { uefi: true, bootFrom: 'usb' }, medium: /^\/dev\/sd[a-z]$/ },
  ];

  for (const c of cases) {
    it(`${c.name}: ready with node's version and the blank target disk`, async () => {
      const workDir = await mkdtemp(join(tmpdir(), 'imagepe-e2e-'));
      const vm = await startVm({ ...c.options, iso: build.iso, disks: [{ path: join(workDir, 'target.qcow2'), size: TARGET_SIZE }], workDir, lifetimeMs: BOOT_TIMEOUT_MS + 30_000 });
      let ok = false;
      try {
        const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
        const seconds = vm.elapsedSeconds();
        expect(ready.node).toBe(process.version);
        expect(ready.kernel).toBe(build.kernel.version);
        expect(ready.mode).toBe('deploy');
        expect(ready.disks).toEqual([{ path: '/dev/vda', size: TARGET_SIZE, model: null, removable: false, readOnly: false }]);
        expect(ready.bootMedium).toMatch(c.medium);
        // The PE's (stripped) Node.js took the code cache the build made with the host's.
        expect(ready.codeCache).toBe('accepted');
        process.stdout.write(`${c.name}: ready after ${seconds.toFixed(1)} s wall (guest uptime ${ready.uptimeSeconds.toFixed(1)} s, ${vm.accel.accel})\n`);
        ok = true;
      } finally {
        await vm.stop();
        if (ok) await rm(workDir, { recursive: true, force: true });
        else process.stderr.write(`${c.name}: serial log kept at ${vm.logPath}\n`);
      }
    }, BOOT_TIMEOUT_MS + 60_000);
  }
});

describe('the PXE kernel and initrd, booted directly', () => {
  it('boots to a shell that mounts the SMB share over SMB3 (the CIFS crypto is in the PE)', async () => {
    const build = await sharedTestBuild();
    const workDir = await mkdtemp(join(tmpdir(), 'imagepe-e2e-'));
    const share = join(workDir, 'share');
    const token = `smb-ok-${Math.random().toString(36).slice(2)}`;
    await mkdir(share);
    await writeFile(join(share, 'token.txt'), `${token}\n`);
    const vm = await startVm({
      kernel: { image: build.pxe.kernel, initrd: build.pxe.initrd, append: 'console=ttyS0,115200n8 imagepe.mode=shell quiet loglevel=3 panic=10' },
      share,
      workDir,
      lifetimeMs: BOOT_TIMEOUT_MS + 30_000,
    });
    let ok = false;
    try {
      const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
      expect(ready.mode).toBe('shell');
      expect(ready.bootMedium).toBeNull();
      await vm.waitForLine(/imagepe shell: the boot log/, 30_000);
      // DHCP runs in the background; the loop waits for the address before mounting.
      vm.sendSerial('for i in $(seq 50); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; mkdir -p /mnt/share && mount -t cifs //10.0.2.4/qemu /mnt/share -o username=guest,password=,vers=3.0 && cat /mnt/share/token.txt\n');
      await vm.waitForLine(new RegExp(token), 45_000);
      ok = true;
    } finally {
      await vm.stop();
      if (ok) await rm(workDir, { recursive: true, force: true });
      else process.stderr.write(`PXE boot: serial log kept at ${vm.logPath}\n`);
    }
  }, BOOT_TIMEOUT_MS + 90_000);
});
