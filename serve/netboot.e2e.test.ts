import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { BuildResult } from '../builder/index.js';
import { sha256File } from '../agent/deploy/index.js';
import { generalize } from '../imaging/index.js';
import { sharedTestBuild } from '../qemu-tests/shared-build.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { makeReferenceSystem, referencePlan, type ReferenceSystem } from '../test-support/reference-system.js';
import { startServer, type RunningServer } from './index.js';

// Network boot, the simplest path: QEMU's user network hands the NIC's iPXE the boot script's
// URL on `imagepe serve` (HTTP only, reached through a guest forward), the PE comes over HTTP
// with imagepe.server= on its command line, asks the server for its plan by MAC (the first
// machine has a plan of its own, the second gets default.yaml), streams the pipable image from
// the server into apply, and the deployed disk boots. The server's table follows each machine.

const exec = promisify(execFile);
const DEPLOY_TIMEOUT_MS = 300_000;
const BOOT_TIMEOUT_MS = 120_000;
const DISK_SIZE = 2 * 1024 ** 3;
// The address the guests reach the server at; QEMU carries it to the server on 127.0.0.1.
const SERVER_IP = '10.0.2.100';

let build: BuildResult;
let work: string;
let served: string;
let reference: ReferenceSystem;
let server: RunningServer;
let wimSha256: string;

const MACHINES = [
  { firmware: 'BIOS', uefi: false, mac: '52:54:00:00:0e:01', plan: '52-54-00-00-0e-01.yaml', hostname: 'rack1-bios' },
  { firmware: 'UEFI', uefi: true, mac: '52:54:00:00:0e:02', plan: 'default.yaml', hostname: 'net-525400000e02' },
] as const;

/** The reference plan with its image on the server the PE booted from. */
function servedPlan(hostname: string): string {
  return referencePlan({ hostname, sha256: wimSha256, url: 'server:/images' });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-netboot-e2e-'));
  served = join(work, 'served');
  await mkdir(join(served, 'images'), { recursive: true });
  await mkdir(join(served, 'plans'), { recursive: true });
  build = await sharedTestBuild();
  reference = await makeReferenceSystem(join(work, 'reference'));
  await generalize(reference.root);
  // Pipable, so the PE applies it as it downloads.
  const wim = join(served, 'images/reference.wim');
  await exec('node', [resolve('dist/cli/main.js'), 'capture', reference.root, wim, 'reference', 'netboot reference', '--compress', 'xpress', '--pipable']);
  wimSha256 = await sha256File(wim);
  await writeFile(join(served, 'plans', MACHINES[0].plan), servedPlan(MACHINES[0].hostname));
  await writeFile(join(served, 'plans/default.yaml'), servedPlan('net-{mac}'));
  server = await startServer({ dir: served, pxeDir: build.pxe.dir, dhcp: { mode: 'off' }, listen: '127.0.0.1', port: 0, publicUrl: `http://${SERVER_IP}/` });
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.each(MACHINES.map((m) => [m.firmware, m] as const))('a %s machine booted from imagepe serve over QEMU user networking', (firmware, m) => {
  const disk = () => join(work, `${firmware}.qcow2`);

  it('gets the PE over HTTP, its plan by MAC, streams the image into apply, and the disk boots', async () => {
    const net = { netBoot: { bootfile: `http://${SERVER_IP}/boot.ipxe` }, guestForwards: [{ guestIp: SERVER_IP, guestPort: 80, hostPort: server.http.port, perConnection: true }], mac: m.mac };
    await withVm(`${firmware} netboot`, startVm({ ...net, uefi: m.uefi, disks: [{ path: disk(), size: DISK_SIZE }], workDir: join(work, `${firmware}-pe`), lifetimeMs: DEPLOY_TIMEOUT_MS + 60_000 }), async (vm) => {
      const ready = await vm.waitForEvent('ready', BOOT_TIMEOUT_MS);
      process.stdout.write(`${firmware}: network boot to ready ${vm.elapsedSeconds().toFixed(1)} s wall (${vm.accel.accel})\n`);
      expect(ready.plan).toBe(`http://${SERVER_IP}/plans/`);
      expect(ready.firmware?.type).toBe(m.uefi ? 'uefi' : 'bios');
      await vm.waitForEvent('deployed', DEPLOY_TIMEOUT_MS);
      await vm.waitForExit(60_000);
      const detail = (step: string) => {
        const e = vm.events.find((x) => x.type === 'step' && x.step === step && x.status === 'done');
        return e?.type === 'step' ? (e.detail ?? '') : '';
      };
      expect(detail('check')).toMatch(/^streamed into apply \(pipable WIM/);
      expect(vm.events.some((e) => e.type === 'log' && e.text === `plan http://${SERVER_IP}/plans/${m.plan} from the deployment server`)).toBe(true);
      process.stdout.write(`${firmware}: network boot to deployed ${vm.elapsedSeconds().toFixed(1)} s wall\n`);
    });
    const machine = server.machines().find((x) => x.mac === m.mac);
    expect(machine).toMatchObject({ state: 'deployed', hostname: m.hostname, plan: { file: m.plan, status: 200 } });
    // Every event the PE sent is in the machine's log on the server.
    const log = await readFile(join(served, 'logs', `${m.mac.replace(/:/g, '-')}.ndjson`), 'utf8');
    expect(log).toContain('"step":"verify","status":"done"');

    const line = await withVm(`${firmware} deployed boot`, startVm({ uefi: m.uefi, disks: [{ path: disk() }], mac: m.mac, workDir: join(work, `${firmware}-boot`), lifetimeMs: BOOT_TIMEOUT_MS + 30_000 }), (vm) => vm.waitForLine(/DEPLOYED hostname=\S+ machine-id=\S* marker=\w+/, BOOT_TIMEOUT_MS));
    expect(line).toContain(`DEPLOYED hostname=${m.hostname} `);
    expect(line).toContain('marker=yes');
  }, DEPLOY_TIMEOUT_MS + 2 * BOOT_TIMEOUT_MS + 120_000);
});
