import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { BuildResult } from '../builder/index.js';
import { ensureQemuImage, VM_CONTAINER_LABEL, VM_OWNER_LABEL, type QemuImage } from './container/image.js';
import { ownerLabel, removeLeftoverVmContainers } from './container/runtime.js';
import { sharedTestBuild } from './shared-build.js';
import { startVm } from './vm.js';

// QEMU in the container runtime: the image imagepe builds (never pulled), a VM whose serial
// console, QMP, SMB share and forwards work as natively, and no container left behind on any
// exit path. Needs a Docker engine: runs when IMAGEPE_TEST_CONTAINER=1 (scripts/test sets it
// after scripts/dockerd-ensure) and then fails, not skips, without one.

const exec = promisify(execFile);
const CONTAINER_TESTS = process.env.IMAGEPE_TEST_CONTAINER === '1';
const BOOT_TIMEOUT_MS = 90_000;
const SHELL_APPEND = 'console=ttyS0,115200n8 imagepe.mode=shell quiet loglevel=3 panic=10';
if (!CONTAINER_TESTS) process.stderr.write('container e2e: skipped: set IMAGEPE_TEST_CONTAINER=1 with a Docker engine running (scripts/test does)\n');

/** VM containers a process started that still exist, running or not. */
async function vmContainers(pid = process.pid): Promise<string[]> {
  const { stdout } = await exec('docker', ['ps', '--all', '--quiet', '--filter', `label=${VM_CONTAINER_LABEL}=1`, '--filter', `label=${VM_OWNER_LABEL}=${await ownerLabel(pid)}`]);
  return stdout.split('\n').filter(Boolean);
}

(CONTAINER_TESTS ? describe : describe.skip)('QEMU in the container runtime', () => {
  let image: QemuImage;
  let build: BuildResult;
  let work: string;

  beforeAll(async () => {
    const started = Date.now();
    image = await ensureQemuImage();
    process.stdout.write(`container e2e: image ${image.tag} ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${image.summary})\n`);
    build = await sharedTestBuild();
    work = await mkdtemp(join(tmpdir(), 'imagepe-container-e2e-'));
  }, 40 * 60_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is built locally, tagged by its recipe, and reports the QEMU, OVMF and Samba it pins', async () => {
    expect(image.tag).toMatch(/^imagepe-qemu:[0-9a-f]{16}$/);
    expect(image.versions['qemu-system-x86']).toMatch(/^1:7\.2\+dfsg/);
    expect(image.versions.ovmf).toMatch(/^2022\.11/);
    expect(image.versions.samba).toMatch(/^2:4\.17\./);
    const { stdout } = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', image.tag]);
    expect(stdout.trim()).toMatch(/^sha256:/);
    // Ensured again, it is the same image and nothing is rebuilt.
    expect((await ensureQemuImage()).tag).toBe(image.tag);
  }, 60_000);

  it('boots the PE with its serial console both ways, the SMB share, a per-connection guest forward, and quits over QMP', async () => {
    const workDir = join(work, 'shell');
    const share = join(workDir, 'share');
    await mkdir(share, { recursive: true });
    const token = `smb-${Math.random().toString(36).slice(2)}`;
    await writeFile(join(share, 'token.txt'), `${token}\n`);
    const httpToken = `http-${Math.random().toString(36).slice(2)}`;
    const server: Server = createServer((_req, res) => res.end(`${httpToken}\n`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const hostPort = (server.address() as AddressInfo).port;
    try {
      const started = Date.now();
      const vm = await startVm({
        runtime: 'container',
        kernel: { image: build.pxe.kernel, initrd: build.pxe.initrd, append: SHELL_APPEND },
        share,
        guestForwards: [{ guestIp: '10.0.2.100', guestPort: 80, hostPort, perConnection: true }],
        workDir,
        lifetimeMs: BOOT_TIMEOUT_MS + 60_000,
      });
      process.stdout.write(`container e2e: startVm returned after ${((Date.now() - started) / 1000).toFixed(2)} s\n`);
      let exit;
      try {
        expect(vm.runtime).toBe(`container ${image.tag} (${image.summary})`);
        const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
        expect(ready.mode).toBe('shell');
        process.stdout.write(`container e2e: PE ready after ${vm.elapsedSeconds().toFixed(1)} s wall\n`);
        await vm.waitForLine(/imagepe shell: the boot log/, 30_000);
        // DHCP runs in the background; the loop waits for the address first.
        vm.sendSerial('for i in $(seq 50); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; mkdir -p /mnt/share && mount -t cifs //10.0.2.4/qemu /mnt/share -o username=guest,password=,vers=3.0 && cat /mnt/share/token.txt\n');
        await vm.waitForLine(new RegExp(token), 45_000);
        vm.sendSerial('wget -q -O - http://10.0.2.100/\n');
        await vm.waitForLine(new RegExp(httpToken), 30_000);
        await vm.stop();
        exit = vm.exited;
      } finally {
        await vm.stop();
      }
      // QMP's quit ends QEMU with status 0; a kill would show a signal.
      expect(exit).toEqual({ exitCode: 0, signal: undefined });
      const log = await readFile(vm.logPath, 'utf8');
      expect(log).toContain(`# runtime: container ${image.tag} (QEMU ${image.versions['qemu-system-x86']}`);
      expect(log).toContain(token);
      expect(await vmContainers()).toEqual([]);
    } finally {
      server.close();
    }
  }, BOOT_TIMEOUT_MS + 150_000);

  it('removes the container when the VM is aborted, and when its lifetime ends', async () => {
    // No boot medium: QEMU runs, the firmware finds nothing to boot and waits.
    const abort = new AbortController();
    const aborted = await startVm({ runtime: 'container', workDir: join(work, 'abort'), signal: abort.signal, lifetimeMs: 120_000 });
    expect(await vmContainers()).toHaveLength(1);
    abort.abort();
    const abortExit = await aborted.waitForExit(30_000);
    expect(abortExit.exitCode === 0 || abortExit.signal !== undefined).toBe(true);
    expect(await vmContainers()).toEqual([]);

    const started = Date.now();
    const expiring = await startVm({ runtime: 'container', workDir: join(work, 'lifetime'), lifetimeMs: 3_000 });
    await expiring.waitForExit(30_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(await vmContainers()).toEqual([]);
  }, 90_000);

  it('refuses a VM on a tap, which needs the host network namespace', async () => {
    await expect(startVm({ runtime: 'container', tap: { name: 'tap0', netns: 'imagepe-none' }, workDir: join(work, 'tap') })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  }, 30_000);

  it('removes the container of `imagepe vm` stopped by SIGTERM or killed outright, and sweeps what a dead process left', async () => {
    const cli = resolve('dist/cli/main.js');
    const gone = async (owner: string, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { stdout } = await exec('docker', ['ps', '--all', '--quiet', '--filter', `label=${VM_OWNER_LABEL}=${owner}`]);
        if (stdout.trim() === '') return true;
        if (Date.now() > deadline) return false;
        await sleep(250);
      }
    };
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const child = spawn('node', [cli, 'vm', '--runtime', 'container', '--iso', build.iso, '--disk', join(work, `${signal}.qcow2`), '--disk-size', '1GiB', '--timeout', '120'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // The command names the serial log once its VM runs.
      const deadline = Date.now() + 60_000;
      while (!/serial log/.test(stderr)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`imagepe vm did not start its VM:\n${stderr}`);
        await sleep(100);
      }
      const owner = await ownerLabel(child.pid!);
      expect(await vmContainers(child.pid)).toHaveLength(1);
      child.kill(signal);
      await once(child, 'exit');
      // SIGTERM: the command stops its VM. SIGKILL: nothing in the process runs; the engine closes
      // the container's standard input, QEMU's watchdog stops it, and the engine removes it.
      expect(await gone(owner, 20_000)).toBe(true);
    }

    // A container created by a process that died before starting it has no watchdog running.
    const { stdout: id } = await exec('docker', ['create', '--label', `${VM_CONTAINER_LABEL}=1`, '--label', `${VM_OWNER_LABEL}=999999999:1`, image.tag, 'true']);
    expect(await removeLeftoverVmContainers()).toContain(id.trim().slice(0, 12));
    const { stdout: left } = await exec('docker', ['ps', '--all', '--quiet', '--filter', `label=${VM_OWNER_LABEL}=999999999:1`]);
    expect(left.trim()).toBe('');
  }, 180_000);
});
