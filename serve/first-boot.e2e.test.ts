import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture } from '../agent/capture/index.js';
import { parseCapturePlan } from '../agent/plan/index.js';
import { sharedTestBuild } from '../qemu-tests/shared-build.js';
import { startVm, withVm } from '../qemu-tests/index.js';
import { makeDebianReferenceDisk, type DebianReference } from '../test-support/debian-reference.js';
import { bootReport, runAgent } from '../test-support/pe-flow.js';
import { startServer, type RunningServer } from './index.js';

// Deployed means it came up: a real Debian 12 (debootstrap, systemd, openssh-server, GRUB, fstab
// by UUID, swap), captured pipable by imagepe's capture mode, deployed over the network from
// imagepe serve to a blank machine, which then boots from its disk; the first-boot unit the
// specialize step installed reports hostname, machine-id and systemd's state to the server,
// and the server marks the machine up. The unit removes itself after reporting.

const DEPLOY_TIMEOUT_MS = 900_000;
const BOOT_TIMEOUT_MS = 300_000;
const SERVER_IP = '10.0.2.100';
const MAC = '52:54:00:00:0f:01';
const DISK_SIZE = 3 * 1024 ** 3;

let work: string;
let served: string;
let ref: DebianReference;
let server: RunningServer;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagepe-first-boot-e2e-'));
  served = join(work, 'served');
  await mkdir(join(served, 'plans'), { recursive: true });
  const [build] = await Promise.all([sharedTestBuild(), (async () => (ref = await makeDebianReferenceDisk(join(work, 'reference.raw'))))()]);
  await capture(parseCapturePlan({ kind: 'capture', destination: { url: `file://${served}`, file: 'images/debian.wim', name: 'debian-12', compression: 'xpress', integrity: false, pipable: true } }), { disk: ref.image });
  // The reference's identities kept and its initramfs as it is: the initramfs rebuild takes ten
  // minutes under software emulation (debian.e2e covers it); streaming covers a recorded layout.
  await writeFile(
    join(served, 'plans/default.yaml'),
    `source: { url: "server:/images", image: debian.wim }\ntarget: { disk: { pick: smallest, minSize: 2GiB }, layout: from-image, identities: keep }\nspecialize: { hostname: "deb-net-{mac}" }\nbootloader: { firmware: both, initramfs: keep }\nafter: poweroff\n`,
  );
  server = await startServer({ dir: served, pxeDir: build.pxe.dir, dhcp: { mode: 'off' }, listen: '127.0.0.1', port: 0, publicUrl: `http://${SERVER_IP}/` });
}, 900_000);

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

it('deploys a real Debian 12 from the network, and the server marks it up once the deployed system reports its first boot', async () => {
  const forward = [{ guestIp: SERVER_IP, guestPort: 80, hostPort: server.http.port, perConnection: true }];
  const disk = join(work, 'machine.qcow2');
  const run = await withVm('debian netboot', startVm({ netBoot: { bootfile: `http://${SERVER_IP}/boot.ipxe` }, guestForwards: forward, mac: MAC, disks: [{ path: disk, size: DISK_SIZE }], workDir: join(work, 'pe'), lifetimeMs: DEPLOY_TIMEOUT_MS + 120_000 }), (vm) => runAgent(vm, 'deployed', DEPLOY_TIMEOUT_MS));
  process.stdout.write(`debian over the network: PE start to deployed ${run.seconds.toFixed(1)} s wall\n`);
  expect(run.steps).toEqual(expect.arrayContaining([expect.stringMatching(/^check: streamed into apply \(pipable WIM/), expect.stringMatching(/^specialize: .*first-boot report to http:\/\/10\.0\.2\.100/)]));
  expect(server.machines().find((m) => m.mac === MAC)).toMatchObject({ state: 'deployed' });

  const report = await bootReport('debian netboot', disk, { format: 'qcow2', uefi: false, workDir: join(work, 'boot'), timeoutMs: BOOT_TIMEOUT_MS, mac: MAC, guestForwards: forward });
  process.stdout.write(`debian over the network: deployed disk to its report ${report.seconds} s wall\n`);
  expect(report).toMatchObject({ state: 'running', ssh: 'active', hostname: 'deb-net-525400000f01' });
  const machine = server.machines().find((m) => m.mac === MAC);
  expect(machine).toMatchObject({ state: 'up', hostname: 'deb-net-525400000f01' });
  expect(machine?.detail).toContain('running');
}, DEPLOY_TIMEOUT_MS + BOOT_TIMEOUT_MS + 300_000);
